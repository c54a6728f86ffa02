//! The cap on connections open at once from one source address: without
//! it, one address could hold every one of `max_connections` with connections that
//! each look legitimate (a cheap request every few seconds), and everyone else would
//! wait in the kernel's backlog.
//!
//! The address is the TCP peer's. Trusted proxies (`trusted_proxies`) are exempt:
//! every client behind one arrives over the proxy's connections, so a cap sized for
//! one client would starve them all; those clients are told apart per request
//! instead (rate limits, login lockouts), and the proxy must bound its own clients'
//! connections. An IPv4 address in IPv6 clothing (`::ffff:192.0.2.1`, as a dual-stack
//! socket reports it) counts as the IPv4 address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::config::TrustedProxies;

/// Connections open per counted address; an address with none is not in the map.
type OpenCounts = Arc<Mutex<HashMap<IpAddr, usize>>>;

/// How many connections each address holds, and how many it may.
pub struct AddressSlots {
    /// 0: no cap.
    cap: usize,
    exempt: TrustedProxies,
    open: OpenCounts,
}

/// The address already holds its cap of connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverCap;

/// One connection's place among its address's; dropping it frees the place.
#[must_use = "the place is freed when this is dropped"]
pub struct AddressSlot {
    /// `None` for a connection that is not counted (no cap, or a trusted proxy).
    counted: Option<(OpenCounts, IpAddr)>,
}

impl AddressSlots {
    /// At most `cap` connections per address (0: no cap); `exempt` addresses are not
    /// counted.
    pub fn new(cap: usize, exempt: TrustedProxies) -> Self {
        Self {
            cap,
            exempt,
            open: Arc::default(),
        }
    }

    /// A place for one more connection from `address`, or `OverCap`.
    pub fn claim(&self, address: IpAddr) -> Result<AddressSlot, OverCap> {
        let address = address.to_canonical();
        if self.cap == 0 || self.exempt.trusts(address) {
            return Ok(AddressSlot { counted: None });
        }
        let mut open = lock(&self.open);
        let held = open.entry(address).or_insert(0);
        if *held >= self.cap {
            return Err(OverCap);
        }
        *held += 1;
        Ok(AddressSlot {
            counted: Some((self.open.clone(), address)),
        })
    }

    /// Addresses holding at least one counted connection.
    #[cfg(test)]
    fn addresses(&self) -> usize {
        lock(&self.open).len()
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let Some((open, address)) = self.counted.take() else {
            return;
        };
        let mut open = lock(&open);
        if let Some(held) = open.get_mut(&address) {
            *held -= 1;
            // Forget addresses with nothing open: the map holds only live ones.
            if *held == 0 {
                open.remove(&address);
            }
        }
    }
}

/// The counts stay right even if a holder panicked: each update is one statement.
fn lock(open: &Mutex<HashMap<IpAddr, usize>>) -> MutexGuard<'_, HashMap<IpAddr, usize>> {
    open.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("an address")
    }

    #[test]
    fn an_address_gets_at_most_the_cap() {
        let slots = AddressSlots::new(2, TrustedProxies::default());
        let first = slots.claim(ip("192.0.2.1")).expect("first");
        let _second = slots.claim(ip("192.0.2.1")).expect("second");
        assert_eq!(slots.claim(ip("192.0.2.1")).err(), Some(OverCap));
        // Another address has its own places.
        let _other = slots.claim(ip("192.0.2.2")).expect("another address");
        // A closed connection frees its place.
        drop(first);
        let _third = slots.claim(ip("192.0.2.1")).expect("a freed place");
        assert_eq!(slots.claim(ip("192.0.2.1")).err(), Some(OverCap));
    }

    #[test]
    fn mapped_ipv4_is_the_ipv4_address() {
        let slots = AddressSlots::new(1, TrustedProxies::default());
        let _v4 = slots.claim(ip("192.0.2.1")).expect("first");
        assert_eq!(slots.claim(ip("::ffff:192.0.2.1")).err(), Some(OverCap));
    }

    #[test]
    fn addresses_with_nothing_open_are_forgotten() {
        let slots = AddressSlots::new(3, TrustedProxies::default());
        let held: Vec<_> = (1..=50)
            .map(|i| slots.claim(ip(&format!("192.0.2.{i}"))).expect("a place"))
            .collect();
        assert_eq!(slots.addresses(), 50);
        drop(held);
        assert_eq!(slots.addresses(), 0);
    }

    #[test]
    fn zero_is_no_cap() {
        let slots = AddressSlots::new(0, TrustedProxies::default());
        let held: Vec<_> = (0..1000)
            .map(|_| slots.claim(ip("192.0.2.1")).expect("no cap"))
            .collect();
        assert_eq!(held.len(), 1000);
        assert_eq!(slots.addresses(), 0);
    }

    #[test]
    fn trusted_proxies_are_not_counted() {
        let proxies = TrustedProxies::parse("10.0.0.0/8").expect("valid");
        let slots = AddressSlots::new(1, proxies);
        let held: Vec<_> = (0..10)
            .map(|_| slots.claim(ip("10.1.2.3")).expect("a proxy"))
            .collect();
        assert_eq!(held.len(), 10);
        let _client = slots.claim(ip("192.0.2.1")).expect("first");
        assert_eq!(slots.claim(ip("192.0.2.1")).err(), Some(OverCap));
    }
}
