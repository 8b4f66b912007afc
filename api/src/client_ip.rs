//! The address a request comes from, through the reverse proxies the operator trusts
//! (`CLEARHIRE_TRUSTED_PROXIES`).
use std::net::{IpAddr, SocketAddr};

use poem::http::HeaderMap;

/// The reverse proxies whose `X-Forwarded-For` is believed: addresses and networks.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<Network>);

/// An address with the length of its network prefix (the whole address for a single one).
#[derive(Debug, Clone, Copy)]
struct Network {
    addr: IpAddr,
    prefix: u8,
}

impl Network {
    fn parse(s: &str) -> anyhow::Result<Self> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a.trim().parse::<IpAddr>()?, Some(p.trim().parse::<u8>()?)),
            None => (s.parse::<IpAddr>()?, None),
        };
        let addr = addr.to_canonical();
        let bits = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(bits);
        anyhow::ensure!(prefix <= bits, "{s}: a prefix of at most {bits} bits");
        Ok(Self { addr, prefix })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        fn within(a: u128, b: u128, prefix: u8, bits: u8) -> bool {
            let shift = u32::from(bits - prefix);
            shift >= 128 || (a >> shift) == (b >> shift)
        }
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(i)) => within(
                u128::from(u32::from(n)),
                u128::from(u32::from(i)),
                self.prefix,
                32,
            ),
            (IpAddr::V6(n), IpAddr::V6(i)) => {
                within(u128::from(n), u128::from(i), self.prefix, 128)
            }
            _ => false,
        }
    }
}

impl TrustedProxies {
    /// Comma-separated IP addresses and networks (`10.0.0.0/8`), as
    /// `CLEARHIRE_TRUSTED_PROXIES` gives them.
    pub fn parse(s: &str) -> anyhow::Result<Self> {
        s.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|n| {
                Network::parse(n)
                    .map_err(|e| anyhow::anyhow!("CLEARHIRE_TRUSTED_PROXIES: {n}: {e}"))
            })
            .collect::<anyhow::Result<_>>()
            .map(Self)
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|n| n.contains(ip))
    }

    /// The client's address: the peer's, unless the peer is a trusted proxy; then the nearest
    /// address in `X-Forwarded-For` (each proxy appends the address it was reached from, so the
    /// nearest is last) that is not itself a trusted proxy. An entry that is not an address ends
    /// the walk at the last address believed, as an untrusted peer could have written it.
    pub fn client_ip(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> Option<IpAddr> {
        let mut ip = peer?.to_canonical();
        if !self.trusts(ip) {
            return Some(ip);
        }
        let forwarded: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        for hop in forwarded.into_iter().rev() {
            let Some(hop) = parse_hop(hop) else {
                break;
            };
            ip = hop;
            if !self.trusts(ip) {
                break;
            }
        }
        Some(ip)
    }
}

/// One `X-Forwarded-For` entry: an address, possibly with a port (`203.0.113.9:4711`,
/// `[2001:db8::1]:4711`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .or_else(|_| hop.parse::<SocketAddr>().map(|s| s.ip()))
        .ok()
        .map(|ip| ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", v.parse().expect("header"));
        }
        h
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().expect("ip"))
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let none = TrustedProxies::parse("").expect("parse");
        let h = headers(&["203.0.113.9"]);
        assert_eq!(none.client_ip(ip("127.0.0.1"), &h), ip("127.0.0.1"));
        let some = TrustedProxies::parse("10.0.0.1").expect("parse");
        assert_eq!(some.client_ip(ip("10.0.0.2"), &h), ip("10.0.0.2"));
        assert_eq!(some.client_ip(None, &h), None);
    }

    #[test]
    fn a_trusted_proxy_names_the_nearest_address_it_does_not_trust() {
        let t = TrustedProxies::parse("10.0.0.1, 10.0.0.2").expect("parse");
        // The candidate wrote the first entry themselves; the proxies appended the rest.
        let h = headers(&["198.51.100.1, 203.0.113.9", "10.0.0.2"]);
        assert_eq!(t.client_ip(ip("10.0.0.1"), &h), ip("203.0.113.9"));
        // A port, IPv6 in brackets, and a peer given as IPv4-mapped IPv6.
        let h = headers(&["[2001:db8::7]:4711"]);
        assert_eq!(t.client_ip(ip("::ffff:10.0.0.1"), &h), ip("2001:db8::7"));
        let h = headers(&["203.0.113.9:4711"]);
        assert_eq!(t.client_ip(ip("10.0.0.1"), &h), ip("203.0.113.9"));
        // No header, or only proxies in it: the last proxy is what is known.
        assert_eq!(t.client_ip(ip("10.0.0.1"), &headers(&[])), ip("10.0.0.1"));
        let h = headers(&["10.0.0.2"]);
        assert_eq!(t.client_ip(ip("10.0.0.1"), &h), ip("10.0.0.2"));
        // Garbage nearer than any address is not believed past.
        let h = headers(&["203.0.113.9, unknown"]);
        assert_eq!(t.client_ip(ip("10.0.0.1"), &h), ip("10.0.0.1"));
    }

    #[test]
    fn networks_are_trusted_whole() {
        let t = TrustedProxies::parse("10.0.0.0/8, 2001:db8:1::/48").expect("parse");
        let h = headers(&["203.0.113.9"]);
        assert_eq!(t.client_ip(ip("10.200.3.4"), &h), ip("203.0.113.9"));
        assert_eq!(t.client_ip(ip("11.0.0.1"), &h), ip("11.0.0.1"));
        assert_eq!(t.client_ip(ip("2001:db8:1:ff::1"), &h), ip("203.0.113.9"));
        assert_eq!(t.client_ip(ip("2001:db8:2::1"), &h), ip("2001:db8:2::1"));
        // /0 trusts every peer.
        let all = TrustedProxies::parse("0.0.0.0/0").expect("parse");
        assert_eq!(all.client_ip(ip("198.51.100.1"), &h), ip("203.0.113.9"));
    }

    #[test]
    fn a_bad_list_is_refused() {
        assert!(TrustedProxies::parse("10.0.0.0/33").is_err());
        assert!(TrustedProxies::parse("10.0.0.0/x").is_err());
        assert!(TrustedProxies::parse("proxy.internal").is_err());
    }
}
