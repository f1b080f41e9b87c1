//! SSRF guard: deliveries go to the public internet only.
//!
//! A subscriber chooses the URL, so without a guard a webhook hub is a
//! request forger for anyone with an API key: it would POST to the cloud
//! metadata service, to the database, to the admin port on localhost. The
//! guard refuses every special-purpose range of the IANA IPv4 and IPv6
//! Special-Purpose Address Registries (RFC 6890 and updates), multicast,
//! and any IPv6 address outside global unicast (2000::/3). Addresses that
//! carry an IPv4 address (mapped, NAT64, 6to4) are judged by that address.
//!
//! It is applied twice. When a subscription is created or its URL changed,
//! [`check_endpoint`] refuses literal internal addresses and names that do
//! not resolve or resolve to any refused address. At delivery time the
//! dispatcher's `GuardedResolver` resolves names itself and hands only the
//! addresses [`refusal`] allows to the connector, so a DNS answer that
//! changes after the subscription was created (rebinding) cannot slip
//! through. The rule lives here, with the other rules about endpoint URLs,
//! so the API and the dispatcher apply one table.
use super::IpNetwork;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

/// How the guard treats an address in a range.
#[derive(Clone, Copy)]
enum Rule {
    /// Never reached, for this reason.
    Refuse(&'static str),
    /// The address stands for the IPv4 address it embeds (what the kernel,
    /// a NAT64 gateway or a 6to4 relay would connect to): judged by it.
    Embeds(fn(Ipv6Addr) -> Ipv4Addr),
}

const PRIVATE: &str = "private (RFC 1918)";
const DOCUMENTATION: &str = "documentation";
/// The globally reachable anycast ranges (AS112, AMT, 6to4 relays, PCP and
/// TURN anycast) are refused too. Anycast answers from the nearest
/// instance, which can be one inside the operator's own network, and none
/// of these services is ever a webhook receiver: refusing them costs no
/// legitimate subscription and closes a path into internal hosts.
const ANYCAST: &str = "special-purpose anycast";

/// IPv4 ranges refused, from the IANA IPv4 Special-Purpose Address Registry
/// plus multicast. First match names the reason.
const V4_REFUSED: &[(IpNetwork, &str)] = &[
    (IpNetwork::v4(Ipv4Addr::new(0, 0, 0, 0), 8), "unspecified (\"this network\")"),
    (IpNetwork::v4(Ipv4Addr::new(10, 0, 0, 0), 8), PRIVATE),
    (IpNetwork::v4(Ipv4Addr::new(100, 64, 0, 0), 10), "shared address space (RFC 6598)"),
    (IpNetwork::v4(Ipv4Addr::new(127, 0, 0, 0), 8), "loopback"),
    (IpNetwork::v4(Ipv4Addr::new(169, 254, 0, 0), 16), "link-local (cloud metadata lives here)"),
    (IpNetwork::v4(Ipv4Addr::new(172, 16, 0, 0), 12), PRIVATE),
    // Includes DS-Lite (192.0.0.0/29) and the PCP and TURN anycast addresses.
    (IpNetwork::v4(Ipv4Addr::new(192, 0, 0, 0), 24), "IETF protocol assignment"),
    (IpNetwork::v4(Ipv4Addr::new(192, 0, 2, 0), 24), DOCUMENTATION),
    (IpNetwork::v4(Ipv4Addr::new(192, 31, 196, 0), 24), ANYCAST),
    (IpNetwork::v4(Ipv4Addr::new(192, 52, 193, 0), 24), ANYCAST),
    (IpNetwork::v4(Ipv4Addr::new(192, 88, 99, 0), 24), ANYCAST),
    (IpNetwork::v4(Ipv4Addr::new(192, 168, 0, 0), 16), PRIVATE),
    (IpNetwork::v4(Ipv4Addr::new(192, 175, 48, 0), 24), ANYCAST),
    (IpNetwork::v4(Ipv4Addr::new(198, 18, 0, 0), 15), "benchmarking (RFC 2544)"),
    (IpNetwork::v4(Ipv4Addr::new(198, 51, 100, 0), 24), DOCUMENTATION),
    (IpNetwork::v4(Ipv4Addr::new(203, 0, 113, 0), 24), DOCUMENTATION),
    (IpNetwork::v4(Ipv4Addr::new(224, 0, 0, 0), 4), "multicast or broadcast"),
    // Includes the limited broadcast address 255.255.255.255.
    (IpNetwork::v4(Ipv4Addr::new(240, 0, 0, 0), 4), "reserved or broadcast"),
];

const fn v6(segments: [u16; 8], prefix: u8) -> IpNetwork {
    let [a, b, c, d, e, f, g, h] = segments;
    IpNetwork::v6(Ipv6Addr::new(a, b, c, d, e, f, g, h), prefix)
}

/// The last 32 bits (IPv4-mapped, NAT64 well-known prefix).
fn low_32(ip: Ipv6Addr) -> Ipv4Addr {
    let o = ip.octets();
    Ipv4Addr::new(o[12], o[13], o[14], o[15])
}

/// Bits 16 to 48 (6to4, RFC 3056).
fn six_to_four(ip: Ipv6Addr) -> Ipv4Addr {
    let o = ip.octets();
    Ipv4Addr::new(o[2], o[3], o[4], o[5])
}

/// IPv6 ranges, from the IANA IPv6 Special-Purpose Address Registry plus
/// the deprecated site-local range and multicast. First match decides, so
/// the sub-entries of 2001::/23 come before it to name their reason.
const V6_RULES: &[(IpNetwork, Rule)] = &[
    (v6([0, 0, 0, 0, 0, 0, 0, 1], 128), Rule::Refuse("loopback")),
    (v6([0, 0, 0, 0, 0, 0, 0, 0], 128), Rule::Refuse("unspecified")),
    // IPv4-compatible (::a.b.c.d), deprecated by RFC 4291: no stack should
    // send to one, and some map it onto IPv4.
    (v6([0, 0, 0, 0, 0, 0, 0, 0], 96), Rule::Refuse("IPv4-compatible (deprecated)")),
    (v6([0, 0, 0, 0, 0, 0xffff, 0, 0], 96), Rule::Embeds(low_32)),
    // IPv4-translated (SIIT, ::ffff:0:a.b.c.d): only a translator uses it.
    (v6([0, 0, 0, 0, 0xffff, 0, 0, 0], 96), Rule::Refuse("IPv4-translated")),
    // A DNS64 resolver on an IPv6-only network answers public IPv4 hosts
    // with this prefix, so those stay reachable; the embedded address is
    // what the NAT64 gateway connects to.
    (v6([0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96), Rule::Embeds(low_32)),
    // Local-use NAT64 (RFC 8215): where the IPv4 sits depends on the operator.
    (v6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48), Rule::Refuse("local-use NAT64")),
    (v6([0x100, 0, 0, 0, 0, 0, 0, 0], 64), Rule::Refuse("discard-only")),
    (v6([0x100, 0, 0, 1, 0, 0, 0, 0], 64), Rule::Refuse("dummy prefix")),
    // Teredo: the client's IPv4 is obfuscated and the relay is whoever is
    // nearest; refused rather than decoded.
    (v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 32), Rule::Refuse("Teredo")),
    (v6([0x2001, 2, 0, 0, 0, 0, 0, 0], 48), Rule::Refuse("benchmarking")),
    (v6([0x2001, 0x10, 0, 0, 0, 0, 0, 0], 28), Rule::Refuse("ORCHID (deprecated)")),
    (v6([0x2001, 0x20, 0, 0, 0, 0, 0, 0], 28), Rule::Refuse("ORCHIDv2 identifier")),
    (v6([0x2001, 0x30, 0, 0, 0, 0, 0, 0], 28), Rule::Refuse("drone remote ID identifier")),
    // The rest of the block: PCP and TURN anycast, AMT, AS112 (see ANYCAST).
    (v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 23), Rule::Refuse("IETF protocol assignment")),
    (v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32), Rule::Refuse(DOCUMENTATION)),
    (v6([0x2002, 0, 0, 0, 0, 0, 0, 0], 16), Rule::Embeds(six_to_four)),
    (v6([0x2620, 0x4f, 0x8000, 0, 0, 0, 0, 0], 48), Rule::Refuse(ANYCAST)),
    (v6([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20), Rule::Refuse(DOCUMENTATION)),
    (v6([0x5f00, 0, 0, 0, 0, 0, 0, 0], 16), Rule::Refuse("SRv6 segment identifier")),
    (v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7), Rule::Refuse("unique local")),
    (v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10), Rule::Refuse("link-local")),
    (v6([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10), Rule::Refuse("site-local (deprecated)")),
    (v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8), Rule::Refuse("multicast")),
];

/// Everything public in IPv6 is allocated from here; the rest is reserved.
const GLOBAL_UNICAST: IpNetwork = v6([0x2000, 0, 0, 0, 0, 0, 0, 0], 3);

/// Why an address is refused, or `None` if it is a public unicast address.
pub fn refusal(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => refusal_v4(v4),
        IpAddr::V6(v6) => refusal_v6(v6),
    }
}

fn refusal_v4(ip: Ipv4Addr) -> Option<&'static str> {
    V4_REFUSED.iter().find(|(net, _)| net.contains(IpAddr::V4(ip))).map(|(_, why)| *why)
}

fn refusal_v6(ip: Ipv6Addr) -> Option<&'static str> {
    match V6_RULES.iter().find(|(net, _)| net.contains(IpAddr::V6(ip))) {
        Some((_, Rule::Refuse(why))) => Some(why),
        Some((_, Rule::Embeds(embedded))) => refusal_v4(embedded(ip)),
        None if !GLOBAL_UNICAST.contains(IpAddr::V6(ip)) => Some("reserved (outside global unicast)"),
        None => None,
    }
}

/// The literal address a URL's host is, if it is one.
fn literal_host(url: &url::Url) -> Option<IpAddr> {
    match url.host()? {
        url::Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
        url::Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
        url::Host::Domain(_) => None,
    }
}

fn refused(ip: IpAddr, why: &str) -> String {
    format!("refused: {ip} is a {why} address")
}

/// Refuses a URL whose host is a literal address the guard does not allow
/// (literals never reach the resolver).
pub fn check_literal(url: &str) -> Result<(), String> {
    let Some(ip) = url::Url::parse(url).ok().as_ref().and_then(literal_host) else { return Ok(()) };
    match refusal(ip) {
        Some(why) => Err(refused(ip, why)),
        None => Ok(()),
    }
}

/// How long [`check_endpoint`] waits for DNS before it gives up on a name.
pub const RESOLVE_TIMEOUT: Duration = Duration::from_secs(3);

/// Checks a new or changed subscription URL: a literal address must be
/// allowed; a name must resolve, within [`RESOLVE_TIMEOUT`], to allowed
/// addresses only (a name with one internal answer is refused, although at
/// delivery time the resolver would merely drop that answer).
pub async fn check_endpoint(url: &url::Url) -> Result<(), String> {
    if let Some(ip) = literal_host(url) {
        return refusal(ip).map_or(Ok(()), |why| Err(refused(ip, why)));
    }
    let host = url.host_str().unwrap_or_default().to_owned();
    let unresolvable = || format!("refused: {host} does not resolve");
    let found: Vec<SocketAddr> =
        match tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((host.as_str(), 0))).await {
            Ok(Ok(found)) => found.collect(),
            Ok(Err(_)) | Err(_) => return Err(unresolvable()),
        };
    if found.is_empty() {
        return Err(unresolvable());
    }
    for addr in found {
        if let Some(why) = refusal(addr.ip()) {
            // The address itself is not told: it would map internal names for the caller.
            return Err(format!("refused: {host} resolves to a {why} address"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every refused range: an address inside it, and the nearest address
    /// outside it where that one is public (`None` where the neighbour is
    /// itself refused, e.g. inside 2001::/23 or outside 2000::/3).
    const RANGES: &[(&str, &str, Option<&str>)] = &[
        ("0.0.0.0/8", "0.255.255.255", Some("1.0.0.0")),
        ("10.0.0.0/8", "10.255.255.255", Some("11.0.0.0")),
        ("100.64.0.0/10", "100.127.255.255", Some("100.128.0.0")),
        ("127.0.0.0/8", "127.0.0.1", Some("128.0.0.0")),
        ("169.254.0.0/16", "169.254.169.254", Some("169.255.0.0")),
        ("172.16.0.0/12", "172.31.255.255", Some("172.32.0.0")),
        ("192.0.0.0/24", "192.0.0.9", Some("192.0.1.0")),
        ("192.0.2.0/24", "192.0.2.1", Some("192.0.3.0")),
        ("192.31.196.0/24", "192.31.196.1", Some("192.31.197.0")),
        ("192.52.193.0/24", "192.52.193.1", Some("192.52.194.0")),
        ("192.88.99.0/24", "192.88.99.1", Some("192.88.100.0")),
        ("192.168.0.0/16", "192.168.1.1", Some("192.169.0.0")),
        ("192.175.48.0/24", "192.175.48.1", Some("192.175.49.0")),
        ("198.18.0.0/15", "198.19.255.255", Some("198.20.0.0")),
        ("198.51.100.0/24", "198.51.100.1", Some("198.51.101.0")),
        ("203.0.113.0/24", "203.0.113.1", Some("203.0.114.0")),
        ("224.0.0.0/4", "224.0.0.1", Some("223.255.255.255")),
        ("240.0.0.0/4", "240.0.0.1", None),
        ("255.255.255.255/32", "255.255.255.255", None),
        ("::1/128", "::1", None),
        ("::/128", "::", None),
        ("::/96 (IPv4-compatible)", "::8.8.8.8", None),
        ("::ffff:0:0/96 (mapped, private IPv4)", "::ffff:10.0.0.1", Some("::ffff:8.8.8.8")),
        ("::ffff:0:0:0/96 (translated)", "::ffff:0:8.8.8.8", None),
        ("64:ff9b::/96 (NAT64, private IPv4)", "64:ff9b::192.168.0.1", Some("64:ff9b::8.8.8.8")),
        ("64:ff9b:1::/48", "64:ff9b:1::8.8.8.8", None),
        ("100::/64", "100::1", None),
        ("100:0:0:1::/64", "100:0:0:1::1", None),
        ("2001::/23", "2001:1ff:ffff::1", Some("2001:200::1")),
        ("2001::/32 (Teredo)", "2001:0:4136:e378:8000:63bf:3fff:fdd2", None),
        ("2001:2::/48", "2001:2::1", None),
        ("2001:db8::/32", "2001:db8::1", Some("2001:db9::1")),
        ("2001:10::/28", "2001:10::1", None),
        ("2001:20::/28", "2001:20::1", None),
        ("2001:30::/28", "2001:30::1", None),
        ("2001:1::1/128 (PCP anycast)", "2001:1::1", None),
        ("2001:4:112::/48 (AS112)", "2001:4:112::1", None),
        ("2002::/16 (6to4, private IPv4)", "2002:a00:1::1", Some("2002:808:808::1")),
        ("2620:4f:8000::/48", "2620:4f:8000::1", Some("2620:4f:8001::1")),
        ("3fff::/20", "3fff:fff:ffff::1", Some("3fff:1000::1")),
        ("5f00::/16", "5f00::1", None),
        ("fc00::/7", "fd00::1", None),
        ("fe80::/10", "fe80::1", None),
        ("fec0::/10", "fec0::1", None),
        ("ff00::/8", "ff02::1", None),
        ("outside 2000::/3", "4000::1", Some("3fff:ffff::1")),
    ];

    #[test]
    fn refuses_every_special_purpose_range_and_not_its_neighbours() {
        for (range, inside, outside) in RANGES {
            assert!(refusal(inside.parse().unwrap()).is_some(), "{inside} is in {range}");
            if let Some(outside) = outside {
                assert_eq!(refusal(outside.parse().unwrap()), None, "{outside} is just outside {range}");
            }
        }
        for public in ["93.184.216.34", "1.1.1.1", "8.8.8.8", "2606:4700::1111", "2a00:1450:4001:80b::200e"] {
            assert_eq!(refusal(public.parse().unwrap()), None, "{public}");
        }
    }

    #[test]
    fn embedded_ipv4_addresses_are_judged_by_what_they_embed() {
        assert_eq!(refusal("::ffff:127.0.0.1".parse().unwrap()), Some("loopback"));
        assert_eq!(refusal("64:ff9b::a9fe:a9fe".parse().unwrap()), refusal("169.254.169.254".parse().unwrap()));
        assert_eq!(refusal("2002:7f00:1::".parse().unwrap()), Some("loopback"));
    }

    #[test]
    fn literal_hosts_are_checked_names_are_left_to_the_resolver() {
        assert!(check_literal("http://127.0.0.1:8080/x").unwrap_err().contains("loopback"));
        assert!(check_literal("http://[::1]/x").is_err());
        assert!(check_literal("http://[::ffff:7f00:1]/x").is_err());
        assert!(check_literal("http://[64:ff9b::10.0.0.1]/x").is_err());
        assert!(check_literal("http://0x7f.1/x").is_err(), "WHATWG parsing normalises IPv4 forms");
        assert!(check_literal("https://169.254.169.254/latest/meta-data").unwrap_err().contains("link-local"));
        assert!(check_literal("https://1.1.1.1/").is_ok());
        assert!(check_literal("https://localhost/").is_ok());
    }

    #[tokio::test]
    async fn endpoints_are_checked_at_creation_by_literal_and_by_name() {
        let check = |u: &str| {
            let url = url::Url::parse(u).unwrap();
            async move { check_endpoint(&url).await }
        };
        assert!(check("https://[fec0::1]/h").await.unwrap_err().contains("site-local"));
        assert!(check("https://localhost/h").await.unwrap_err().contains("resolves to"));
        assert!(check("https://no-such-host.invalid/h").await.unwrap_err().contains("does not resolve"));
        assert!(check("https://93.184.216.34/h").await.is_ok());
    }
}
