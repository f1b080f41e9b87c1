//! Who the client is, for the audit log: the peer address, or behind
//! configured proxies the address they report in `X-Forwarded-For`.
//!
//! Forwarding headers are whatever the sender wrote, so they are believed
//! only from the proxies named in `HOOKHUB_TRUSTED_PROXIES`, and only as
//! far as those proxies vouch: the list is read from the right (the entry
//! the nearest proxy appended), skipping trusted proxies, and the first
//! address that is not one of them is the client. Entries a client put in
//! front of the list itself are never reached. `Forwarded` (RFC 7239) is
//! not read: a proxy that only appends `X-Forwarded-For` passes a
//! client's `Forwarded` header through untouched.
use actix_web::http::header::HeaderMap;
use hookhub_store::domain::{InvalidNetwork, IpNetwork};
use std::net::IpAddr;
use std::str::FromStr;

/// The proxies whose `X-Forwarded-For` is believed; empty by default, so
/// the peer address is the client.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNetwork>);

impl FromStr for TrustedProxies {
    type Err = InvalidNetwork;

    /// Comma-separated addresses or networks, like `10.0.0.0/8, 192.0.2.7`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.split(',').map(str::trim).filter(|p| !p.is_empty()).map(str::parse).collect::<Result<_, _>>().map(Self)
    }
}

impl TrustedProxies {
    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(ip))
    }

    /// The client's address: `peer` unless it is a trusted proxy, in which
    /// case the nearest untrusted entry of `X-Forwarded-For`.
    pub fn client_ip(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> Option<IpAddr> {
        let mut client = peer?.to_canonical();
        if !self.trusts(client) {
            return Some(client);
        }
        let hops: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        for hop in hops.into_iter().rev() {
            // Garbage from a trusted proxy's upstream: the proxy is as far as we can see.
            let Some(ip) = parse_hop(hop) else { break };
            client = ip;
            if !self.trusts(ip) {
                break;
            }
        }
        Some(client)
    }
}

/// One `X-Forwarded-For` entry: an address, possibly `[v6]:port` or `v4:port`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    hop.parse::<std::net::SocketAddr>().ok().map(|a| a.ip().to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for v in xff {
            map.append(HeaderName::from_static("x-forwarded-for"), HeaderValue::from_str(v).unwrap());
        }
        map
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn forwarding_headers_count_only_from_trusted_proxies() {
        let none = TrustedProxies::default();
        assert_eq!(none.client_ip(ip("203.0.113.5"), &headers(&["198.51.100.1"])), ip("203.0.113.5"));

        let proxies: TrustedProxies = "10.0.0.0/8, 192.0.2.7".parse().unwrap();
        assert_eq!(proxies.client_ip(ip("203.0.113.5"), &headers(&["198.51.100.1"])), ip("203.0.113.5"));
        assert_eq!(proxies.client_ip(ip("10.1.1.1"), &headers(&["198.51.100.1"])), ip("198.51.100.1"));
        // A client's own entry in front is never reached.
        let spoofed = headers(&["1.2.3.4, 198.51.100.1, 192.0.2.7"]);
        assert_eq!(proxies.client_ip(ip("10.1.1.1"), &spoofed), ip("198.51.100.1"));
        let split = headers(&["1.2.3.4", "198.51.100.1:5555"]);
        assert_eq!(proxies.client_ip(ip("::ffff:10.1.1.1"), &split), ip("198.51.100.1"));
        assert_eq!(proxies.client_ip(ip("10.1.1.1"), &headers(&["nonsense"])), ip("10.1.1.1"));
        assert_eq!(proxies.client_ip(ip("10.1.1.1"), &headers(&[])), ip("10.1.1.1"));
        assert_eq!(proxies.client_ip(ip("10.1.1.1"), &headers(&["10.2.2.2"])), ip("10.2.2.2"));
        assert!("10.0.0.0/8, not-an-ip".parse::<TrustedProxies>().is_err());
        assert_eq!("".parse::<TrustedProxies>().unwrap(), TrustedProxies::default());
    }
}
