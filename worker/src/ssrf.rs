//! The SSRF guard: webhooks go only to public addresses, checked on the addresses DNS returns
//! (inside the HTTP client's resolver, so a name can't resolve differently between check and
//! connect), unless an address is allowlisted.
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Addresses allowed despite being non-public (e.g. `127.0.0.1` in tests).
#[derive(Debug, Clone, Default)]
pub struct Allowlist(pub Vec<IpAddr>);

impl Allowlist {
    pub fn parse(s: &str) -> anyhow::Result<Self> {
        Ok(Self(
            s.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::parse)
                .collect::<Result<_, _>>()?,
        ))
    }

    pub fn permits(&self, ip: IpAddr) -> bool {
        is_public(ip) || self.0.contains(&ip)
    }
}

/// Whether an address is globally routable (not loopback, private, link-local, shared,
/// documentation, multicast, unspecified, or their IPv6 counterparts).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (64..128).contains(&o[1]))
                || (o[0] == 192 && o[1] == 0 && o[2] == 0)
                || (o[0] == 198 && (18..20).contains(&o[1]))
                || o[0] >= 240)
        }
        IpAddr::V6(v6) => {
            let seg = v6.segments();
            // Forms that carry an IPv4 address reach that address: IPv4-mapped
            // (`::ffff:a.b.c.d`) and the well-known NAT64 prefix (`64:ff9b::/96`, RFC 6052),
            // which a DNS64/NAT64 network translates to the embedded address.
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            if seg[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                let [a, b] = seg[6].to_be_bytes();
                let [c, d] = seg[7].to_be_bytes();
                return is_public(IpAddr::V4(std::net::Ipv4Addr::new(a, b, c, d)));
            }
            // Otherwise only global unicast (`2000::/3`) is public, less its special-purpose
            // blocks (IANA's registry): IETF protocol assignments and Teredo (`2001::/23`),
            // documentation (`2001:db8::/32`, `3fff::/20`) and 6to4 (`2002::/16`, which reaches
            // the IPv4 address it embeds). Everything outside `2000::/3` is not: loopback,
            // unspecified, IPv4-compatible and SIIT forms, local-use NAT64 (`64:ff9b:1::/48`),
            // discard-only (`100::/64`), unique-local, link- and site-local, multicast.
            (seg[0] & 0xe000) == 0x2000
                && !(seg[0] == 0x2001 && seg[1] < 0x0200)
                && !(seg[0] == 0x2001 && seg[1] == 0x0db8)
                && seg[0] != 0x2002
                && (seg[0] & 0xfff0) != 0x3ff0
        }
    }
}

/// A resolver that drops every address the allowlist doesn't permit, and fails if none is left.
pub struct GuardedResolver {
    pub allow: Arc<Allowlist>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow = self.allow.clone();
        Box::pin(async move {
            let host = name.as_str().to_string();
            // One answer for a name that does not resolve and one that resolves only to
            // addresses the guard refuses: the attempt log, which the partner reads, must not
            // tell which names exist inside our network.
            let refused = || format!("{host} does not resolve to a public address").into();
            let addrs: Vec<SocketAddr> = match tokio::net::lookup_host((host.as_str(), 0)).await {
                Ok(addrs) => addrs.collect(),
                Err(e) => {
                    tracing::info!(host = %host, error = %e, "webhook host lookup failed");
                    return Err(refused());
                }
            };
            let permitted: Vec<SocketAddr> = addrs
                .into_iter()
                .filter(|a| allow.permits(a.ip()))
                .collect();
            if permitted.is_empty() {
                tracing::info!(host = %host, "webhook host resolves only to refused addresses");
                return Err(refused());
            }
            let out: Addrs = Box::new(permitted.into_iter());
            Ok(out)
        })
    }
}

/// Checks a URL whose host is an IP literal (the resolver is not consulted for those).
pub fn check_literal(url: &url::Url, allow: &Allowlist) -> Result<(), String> {
    match url.host() {
        Some(url::Host::Ipv4(ip)) if !allow.permits(IpAddr::V4(ip)) => {
            Err(format!("{ip} is not a public address"))
        }
        Some(url::Host::Ipv6(ip)) if !allow.permits(IpAddr::V6(ip)) => {
            Err(format!("{ip} is not a public address"))
        }
        None => Err("the URL has no host".into()),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_addresses() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            // NAT64 of private, loopback and metadata addresses.
            "64:ff9b::a00:1",
            "64:ff9b::7f00:1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b:1::a00:1",
            // IPv4-compatible, SIIT, 6to4, Teredo, documentation, site-local, discard-only.
            "::10.0.0.1",
            "::ffff:0:a00:1",
            "2002:a00:1::1",
            "2001:0:4136:e378::1",
            "2001:db8::1",
            "3fff::1",
            "fec0::1",
            "100::1",
            "ff02::1",
            "::",
        ] {
            assert!(!is_public(private.parse().expect("ip")), "{private}");
        }
        for public in [
            "93.184.216.34",
            "8.8.8.8",
            "2606:4700::1111",
            "2a00:1450:4001::200e",
            // NAT64 of a public address reaches that address.
            "64:ff9b::808:808",
            "::ffff:8.8.8.8",
        ] {
            assert!(is_public(public.parse().expect("ip")), "{public}");
        }
        let allow = Allowlist::parse("127.0.0.1").expect("parse");
        assert!(allow.permits("127.0.0.1".parse().expect("ip")));
        assert!(!allow.permits("127.0.0.2".parse().expect("ip")));
        let u = url::Url::parse("http://10.0.0.1/hook").expect("url");
        assert!(check_literal(&u, &allow).is_err());
    }
}
