//! The address a request comes from, through the reverse proxies the operator trusts
//! (`CLEARHIRE_TRUSTED_PROXIES`).
use std::net::{IpAddr, SocketAddr};

use poem::http::HeaderMap;

/// The reverse proxies whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpAddr>);

impl TrustedProxies {
    /// Comma-separated IP addresses (as `CLEARHIRE_TRUSTED_PROXIES` gives them).
    pub fn parse(s: &str) -> anyhow::Result<Self> {
        let ips = worker::ssrf::Allowlist::parse(s)
            .map_err(|e| anyhow::anyhow!("CLEARHIRE_TRUSTED_PROXIES: {e}"))?
            .0;
        Ok(Self(ips.into_iter().map(|ip| ip.to_canonical()).collect()))
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.contains(&ip)
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
    fn a_bad_list_is_refused() {
        assert!(TrustedProxies::parse("10.0.0.0/8").is_err());
    }
}
