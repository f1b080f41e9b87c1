//! SSRF guard: deliveries go to the public internet only.
//!
//! A subscriber chooses the URL, so without a guard a webhook hub is a
//! request forger for anyone with an API key: it would POST to the cloud
//! metadata service, to the database, to the admin port on localhost. The
//! guard refuses loopback, private, link-local, unique-local, shared and
//! multicast addresses. It resolves names itself and hands only the
//! addresses it checked to the connector, so a DNS answer that changes
//! between check and connect (rebinding) cannot slip through.
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Why an address is refused, or `None` if it is a public unicast address.
pub fn refusal(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => refusal_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => refusal_v4(v4),
            None => refusal_v6(v6),
        },
    }
}

fn refusal_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_private() {
        Some("private (RFC 1918)")
    } else if ip.is_link_local() {
        Some("link-local (cloud metadata lives here)")
    } else if ip.is_multicast() || ip.is_broadcast() {
        Some("multicast or broadcast")
    } else if ip.is_unspecified() || a == 0 {
        Some("unspecified")
    } else if a == 100 && (64..128).contains(&b) {
        Some("shared address space (RFC 6598)")
    } else {
        None
    }
}

fn refusal_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let first = ip.segments()[0];
    if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_unspecified() {
        Some("unspecified")
    } else if ip.is_multicast() {
        Some("multicast")
    } else if first & 0xfe00 == 0xfc00 {
        Some("unique local")
    } else if first & 0xffc0 == 0xfe80 {
        Some("link-local")
    } else {
        None
    }
}

/// Refuses a URL whose host is a literal address the guard does not allow
/// (literals never reach the resolver).
pub fn check_literal(url: &str) -> Result<(), String> {
    let Ok(parsed) = reqwest::Url::parse(url) else { return Ok(()) };
    let ip = match parsed.host() {
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip),
        _ => return Ok(()),
    };
    match refusal(ip) {
        Some(why) => Err(format!("refused: {ip} is a {why} address")),
        None => Ok(()),
    }
}

/// A resolver that drops every address the guard refuses.
#[derive(Debug, Default, Clone, Copy)]
pub struct GuardedResolver;

#[derive(Debug, thiserror::Error)]
#[error("refused: {0} resolves only to non-public addresses")]
struct Refused(String);

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = found.into_iter().filter(|a| refusal(a.ip()).is_none()).collect();
            if allowed.is_empty() {
                return Err(Box::new(Refused(host)) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_internal_ranges_and_allows_public_ones() {
        for internal in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
        ] {
            assert!(refusal(internal.parse().unwrap()).is_some(), "{internal}");
        }
        for public in ["93.184.216.34", "1.1.1.1", "172.32.0.1", "100.128.0.1", "2606:4700::1111"] {
            assert_eq!(refusal(public.parse().unwrap()), None, "{public}");
        }
    }

    #[test]
    fn literal_hosts_are_checked_names_are_left_to_the_resolver() {
        assert!(check_literal("http://127.0.0.1:8080/x").unwrap_err().contains("loopback"));
        assert!(check_literal("http://[::1]/x").is_err());
        assert!(check_literal("https://169.254.169.254/latest/meta-data").unwrap_err().contains("link-local"));
        assert!(check_literal("https://1.1.1.1/").is_ok());
        assert!(check_literal("https://localhost/").is_ok());
    }

    #[tokio::test]
    async fn the_resolver_drops_private_answers() {
        let resolved = GuardedResolver.resolve("localhost".parse().unwrap()).await;
        assert!(resolved.is_err());
    }
}
