//! `trusted_proxies`: the reverse proxies whose `X-Forwarded-For` is believed.
//!
//! This module holds the setting: which addresses are trusted. How a request's
//! client address is read through them is the HTTP layer's business
//! (`src/http/client_address.rs` adds [`TrustedProxies::client`]); the connection
//! limits use [`TrustedProxies::trusts`] to exempt the proxies from the per-address cap.

use std::net::IpAddr;

use ipnet::IpNet;

/// The proxies whose `X-Forwarded-For` is believed: addresses and CIDR ranges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Parses a list of addresses and CIDR ranges, separated by commas or spaces
    /// (`10.0.0.0/8, 192.0.2.7 ::1`); `Err` names the first entry that is neither.
    pub fn parse(text: &str) -> Result<Self, String> {
        text.split(|c: char| c == ',' || c.is_whitespace())
            .filter(|entry| !entry.is_empty())
            .map(|entry| {
                entry
                    .parse::<IpNet>()
                    .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| format!("{entry:?} is not an IP address or a CIDR range like 10.0.0.0/8"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }

    /// Whether `address` is one of the proxies (an IPv4-mapped IPv6 address counts as
    /// the IPv4 address).
    pub fn trusts(&self, address: IpAddr) -> bool {
        let address = canonical(address);
        self.0.iter().any(|net| net.contains(&address))
    }
}

/// An IPv4 address in IPv6 clothing (`::ffff:192.0.2.1`) is the IPv4 address.
pub fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("address")
    }

    #[test]
    fn parses_addresses_and_ranges() {
        let trusted = TrustedProxies::parse("10.0.0.0/8, 192.0.2.7 ::1").expect("valid");
        assert!(trusted.trusts(ip("10.1.2.3")));
        assert!(trusted.trusts(ip("192.0.2.7")));
        assert!(trusted.trusts(ip("::1")));
        assert!(trusted.trusts(ip("::ffff:10.9.9.9")));
        assert!(!trusted.trusts(ip("192.0.2.8")));
        assert_eq!(
            TrustedProxies::parse(" ,").expect("empty"),
            TrustedProxies::default()
        );
        let error = TrustedProxies::parse("10.0.0.0/8,lb.internal").expect_err("a name");
        assert!(error.contains("\"lb.internal\""), "{error}");
        assert!(TrustedProxies::parse("10.0.0.0/33").is_err());
    }
}
