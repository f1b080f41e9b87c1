//! IP networks (`10.0.0.0/8`, `2001:db8::/32`, or one address): the unit
//! of the SSRF guard's table and of the list of trusted proxies.
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// An address prefix. The prefix length never exceeds the family's width,
/// so every value names a real network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpNetwork {
    addr: IpAddr,
    prefix: u8,
}

/// Why a network could not be parsed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("`{0}` is not an IP address or network like 10.0.0.0/8 or fd00::/8")]
pub struct InvalidNetwork(String);

impl IpNetwork {
    /// An IPv4 network; a prefix over 32 does not compile in a `const`.
    pub const fn v4(addr: Ipv4Addr, prefix: u8) -> Self {
        assert!(prefix <= 32, "an IPv4 prefix is at most 32 bits");
        Self { addr: IpAddr::V4(addr), prefix }
    }

    /// An IPv6 network; a prefix over 128 does not compile in a `const`.
    pub const fn v6(addr: Ipv6Addr, prefix: u8) -> Self {
        assert!(prefix <= 128, "an IPv6 prefix is at most 128 bits");
        Self { addr: IpAddr::V6(addr), prefix }
    }

    /// Whether `ip` is in the network (an address of the other family never is).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for IpNetwork {
    type Err = InvalidNetwork;

    /// `address/prefix`, or a bare address for a network of one.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidNetwork(s.to_owned());
        let (addr, prefix) = match s.trim().split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix.parse::<u8>().map_err(|_| invalid())?)),
            None => (s.trim(), None),
        };
        match addr.parse::<IpAddr>().map_err(|_| invalid())? {
            IpAddr::V4(v4) if prefix.unwrap_or(32) <= 32 => Ok(Self::v4(v4, prefix.unwrap_or(32))),
            IpAddr::V6(v6) if prefix.unwrap_or(128) <= 128 => Ok(Self::v6(v6, prefix.unwrap_or(128))),
            _ => Err(invalid()),
        }
    }
}

impl fmt::Display for IpNetwork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_networks_and_single_addresses() {
        let net: IpNetwork = "10.0.0.0/8".parse().unwrap();
        assert!(net.contains("10.255.0.1".parse().unwrap()));
        assert!(!net.contains("11.0.0.0".parse().unwrap()));
        assert!(!net.contains("::ffff:10.0.0.1".parse().unwrap()), "families never mix");
        let one: IpNetwork = "192.0.2.7".parse().unwrap();
        assert!(one.contains("192.0.2.7".parse().unwrap()) && !one.contains("192.0.2.8".parse().unwrap()));
        let all: IpNetwork = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("203.0.113.9".parse().unwrap()));
        let v6: IpNetwork = " fd00::/8 ".parse().unwrap();
        assert!(v6.contains("fdff::1".parse().unwrap()) && !v6.contains("fe00::1".parse().unwrap()));
        for bad in ["", "10.0.0.0/33", "::/129", "10.0.0/8", "proxy.internal", "10.0.0.0/x"] {
            assert!(bad.parse::<IpNetwork>().is_err(), "{bad}");
        }
    }
}
