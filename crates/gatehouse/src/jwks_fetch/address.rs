//! Which addresses a `jwks_uri` may reach: public unicast only, so that registering a
//! client cannot make the server fetch from itself, its network or a cloud metadata
//! endpoint (server-side request forgery).
//!
//! The rule is applied where the connection is made: a DNS resolver that drops every
//! address that is not public, so reqwest can only connect to an address checked
//! here, and the name is not resolved a second time (no DNS rebinding between a
//! check and the connection). reqwest does not ask the resolver about IP-literal
//! hosts; [`literal_host_is_public`] checks those before the request.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

/// Why a host cannot be connected to.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AddressError {
    /// The name has addresses, none of them public.
    #[error("no public address")]
    NotPublic,
    /// The name could not be resolved.
    #[error("cannot resolve: {0}")]
    Lookup(std::io::Error),
}

/// Resolves with the system resolver and keeps the public addresses only.
#[derive(Debug, Default)]
pub(crate) struct PublicOnlyResolver;

impl Resolve for PublicOnlyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let resolved = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(AddressError::Lookup)?;
            let public: Vec<SocketAddr> = resolved.filter(|addr| is_public(addr.ip())).collect();
            if public.is_empty() {
                return Err(AddressError::NotPublic.into());
            }
            Ok(Box::new(public.into_iter()) as Addrs)
        })
    }
}

/// Whether `url`'s host, if it is an IP literal, is public (a name is checked when
/// it is resolved).
pub(crate) fn literal_host_is_public(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => is_public(IpAddr::V4(ip)),
        Some(Host::Ipv6(ip)) => is_public(IpAddr::V6(ip)),
        Some(Host::Domain(_)) | None => true,
    }
}

/// Whether `ip` is a public unicast address: not loopback, private, shared (CGNAT),
/// link-local, unique-local, multicast, unspecified, broadcast, documentation,
/// benchmarking or reserved, nor one of those inside an IPv6 address (IPv4-mapped,
/// IPv4-compatible, NAT64, 6to4).
pub(crate) fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    let special = ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || a == 0 // "this network" (RFC 791)
        || (a == 100 && (b & 0xC0) == 64) // shared address space 100.64/10 (RFC 6598)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments (RFC 6890)
        || (a == 198 && (b & 0xFE) == 18) // benchmarking 198.18/15 (RFC 2544)
        || a >= 240; // reserved (RFC 1112)
    !special
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let segments = ip.segments();
    if let Some(v4) = embedded_v4(ip) {
        return is_public_v4(v4);
    }
    let special = ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || ip.is_unique_local()
        || ip.is_unicast_link_local()
        || (segments[0] & 0xFFC0) == 0xFEC0 // site-local fec0::/10 (deprecated, RFC 3879)
        || (segments[0] == 0x2001 && segments[1] == 0x0DB8) // documentation 2001:db8::/32
        || (segments[0] == 0x2001 && segments[1] == 0) // Teredo 2001::/32: a tunnel to anywhere
        || (segments[0] == 0x0100 && segments[1..4] == [0, 0, 0]) // discard 100::/64 (RFC 6666)
        || segments[0] == 0; // ::/16 holds nothing public beyond the forms above
    !special
}

/// The IPv4 address an IPv6 address stands for: IPv4-mapped (`::ffff:a.b.c.d`),
/// IPv4-compatible (`::a.b.c.d`), NAT64 (`64:ff9b::a.b.c.d`) or 6to4 (`2002:ab:cd::`).
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let from = |high: u16, low: u16| {
        let [a, b] = high.to_be_bytes();
        let [c, d] = low.to_be_bytes();
        Ipv4Addr::new(a, b, c, d)
    };
    match s {
        [0, 0, 0, 0, 0, 0xFFFF, high, low] => Some(from(high, low)),
        // `::` and `::1` are not IPv4-compatible addresses; they are checked as IPv6.
        [0, 0, 0, 0, 0, 0, high, low] if high != 0 => Some(from(high, low)),
        [0x0064, 0xFF9B, 0, 0, 0, 0, high, low] => Some(from(high, low)),
        [0x2002, high, low, ..] => Some(from(high, low)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn public(text: &str) -> bool {
        is_public(text.parse().unwrap())
    }

    #[test]
    fn public_addresses() {
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "93.184.216.34",
            "100.128.0.1",
            "172.32.0.1",
            "2606:4700::1111",
            "2a00:1450::1",
        ] {
            assert!(public(ip), "{ip}");
        }
    }

    #[test]
    fn special_ipv4_addresses() {
        for ip in [
            "0.0.0.0",
            "0.1.2.3",
            "127.0.0.1",
            "127.255.0.1",
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "100.64.0.1",
            "100.127.255.255",
            "169.254.169.254",
            "224.0.0.1",
            "239.1.1.1",
            "255.255.255.255",
            "192.0.2.1",
            "198.51.100.1",
            "203.0.113.1",
            "192.0.0.8",
            "198.18.0.1",
            "198.19.255.255",
            "240.0.0.1",
        ] {
            assert!(!public(ip), "{ip}");
        }
    }

    #[test]
    fn special_ipv6_addresses() {
        for ip in [
            "::",
            "::1",
            "fe80::1",
            "fc00::1",
            "fd12:3456::1",
            "ff02::1",
            "fec0::1",
            "2001:db8::1",
            "2001::1",
            "100::1",
            "::2:3",
        ] {
            assert!(!public(ip), "{ip}");
        }
    }

    #[test]
    fn ipv4_inside_ipv6_is_judged_as_ipv4() {
        for ip in [
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:c0a8:0101::1",
            "::ffff:169.254.169.254",
        ] {
            assert!(!public(ip), "{ip}");
        }
        for ip in ["::ffff:8.8.8.8", "64:ff9b::808:808", "2002:0808:0808::1"] {
            assert!(public(ip), "{ip}");
        }
    }

    #[test]
    fn literal_hosts() {
        let url = |s: &str| Url::parse(s).unwrap();
        assert!(!literal_host_is_public(&url("https://127.0.0.1/jwks")));
        assert!(!literal_host_is_public(&url("https://[::1]:8443/jwks")));
        assert!(
            !literal_host_is_public(&url("https://0x7f000001/jwks")),
            "the URL parser reads hex IPv4"
        );
        assert!(literal_host_is_public(&url("https://8.8.8.8/jwks")));
        assert!(literal_host_is_public(&url("https://example.com/jwks")));
    }

    #[tokio::test]
    async fn the_resolver_drops_what_is_not_public() {
        let err = PublicOnlyResolver
            .resolve("localhost".parse().unwrap())
            .await
            .err()
            .unwrap();
        assert!(
            matches!(err.downcast_ref::<AddressError>(), Some(AddressError::NotPublic)),
            "{err}"
        );
        let err = PublicOnlyResolver
            .resolve("127.0.0.1".parse().unwrap())
            .await
            .err()
            .unwrap();
        assert!(
            matches!(err.downcast_ref::<AddressError>(), Some(AddressError::NotPublic)),
            "{err}"
        );
    }
}
