//! The address a request comes from, seen through trusted reverse proxies.
//!
//! Behind a load balancer every connection comes from the balancer: the per-address
//! rate limit would throttle the whole service as one caller, and one attacker's
//! failed logins would lock every user behind it out. With `trusted_proxies` set, a
//! connection from a trusted proxy is attributed to the address its
//! `X-Forwarded-For` names: the list is read from the right (the hop nearest to
//! gatehouse), trusted proxies are skipped, and the first address that is not one is
//! the client. Entries further left were written by the client itself and are never
//! believed. A connection from anywhere else is its own address, whatever it claims.

use std::net::{IpAddr, SocketAddr};

use axum::http::{header::HeaderName, HeaderMap};

use crate::config::trusted_proxies::canonical;
use crate::config::TrustedProxies;

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

// The setting is the configuration's (`src/config/trusted_proxies.rs`); reading a
// request's headers through it is this layer's.
impl TrustedProxies {
    /// The client's address of a request that came over a connection from `peer`.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        // Several X-Forwarded-For fields form one list, in order (RFC 9110 §5.3).
        let mut nearest = peer;
        for field in headers.get_all(&X_FORWARDED_FOR).iter().rev() {
            let Ok(field) = std::str::from_utf8(field.as_bytes()) else {
                return nearest;
            };
            for entry in field.rsplit(',') {
                match forwarded_address(entry.trim()) {
                    Some(address) if self.trusts(address) => nearest = address,
                    Some(address) => return address,
                    // Garbage: nothing further left can be believed.
                    None => return nearest,
                }
            }
        }
        nearest
    }
}

/// One `X-Forwarded-For` entry: an address, with a port as some proxies add it.
fn forwarded_address(entry: &str) -> Option<IpAddr> {
    entry
        .parse::<IpAddr>()
        .or_else(|_| entry.parse::<SocketAddr>().map(|s| s.ip()))
        .ok()
        .map(canonical)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(fields: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for field in fields {
            headers.append(&X_FORWARDED_FOR, field.parse().expect("header value"));
        }
        headers
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("address")
    }

    #[test]
    fn nobody_is_trusted_by_default() {
        let none = TrustedProxies::default();
        assert_eq!(
            none.client(ip("127.0.0.1"), &headers(&["203.0.113.9"])),
            ip("127.0.0.1")
        );
    }

    #[test]
    fn an_untrusted_peer_is_its_own_address() {
        let trusted = TrustedProxies::parse("10.0.0.0/8").expect("valid");
        let forged = headers(&["10.0.0.5"]);
        assert_eq!(trusted.client(ip("203.0.113.9"), &forged), ip("203.0.113.9"));
    }

    #[test]
    fn the_rightmost_untrusted_entry_is_the_client() {
        let trusted = TrustedProxies::parse("10.0.0.0/8").expect("valid");
        let lb = ip("10.0.0.2");
        // The client wrote 198.51.100.1 itself; the edge proxy appended its peer.
        let chain = headers(&["198.51.100.1, 203.0.113.9, 10.0.0.7"]);
        assert_eq!(trusted.client(lb, &chain), ip("203.0.113.9"));
        // The same list over two fields.
        let split = headers(&["198.51.100.1", "203.0.113.9, 10.0.0.7"]);
        assert_eq!(trusted.client(lb, &split), ip("203.0.113.9"));
        // Ports and bracketed IPv6, as some proxies write them.
        assert_eq!(
            trusted.client(lb, &headers(&["203.0.113.9:5120"])),
            ip("203.0.113.9")
        );
        assert_eq!(
            trusted.client(lb, &headers(&["[2001:db8::1]:443"])),
            ip("2001:db8::1")
        );
    }

    #[test]
    fn garbage_stops_at_the_nearest_trusted_hop() {
        let trusted = TrustedProxies::parse("10.0.0.0/8").expect("valid");
        let lb = ip("10.0.0.2");
        assert_eq!(
            trusted.client(lb, &headers(&["203.0.113.9, unknown, 10.0.0.7"])),
            ip("10.0.0.7")
        );
        assert_eq!(trusted.client(lb, &headers(&[""])), lb);
        assert_eq!(trusted.client(lb, &HeaderMap::new()), lb);
        // Only trusted hops: the farthest of them.
        assert_eq!(
            trusted.client(lb, &headers(&["10.0.0.9, 10.0.0.7"])),
            ip("10.0.0.9")
        );
    }
}
