//! Who a request came from, as the HTTP layer decided it (behind a trusted reverse proxy,
//! the client the proxy spoke for, not the proxy), and the bucket it counts in for rate
//! limits: one per IPv4 address, one per IPv6 /64 (a household or a host is given a whole
//! /64 and can pick any address in it).

use std::net::{IpAddr, Ipv6Addr};

/// The client's address, placed in a request's extensions by the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

/// The rate-limit bucket of an address: the address itself for IPv4 (IPv4-mapped IPv6
/// included), its /64 network for IPv6.
pub fn bucket_of(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let network = u128::from(v6) & !((1u128 << 64) - 1);
            format!("{}/64", Ipv6Addr::from(network))
        }
    }
}

/// The bucket key for `action` by the client at `ip` (as recorded in an audit actor); text
/// that is not an address is its own bucket.
pub fn client_bucket(action: &str, ip: &str) -> String {
    match ip.parse::<IpAddr>() {
        Ok(ip) => format!("{action}:{}", bucket_of(ip)),
        Err(_) => format!("{action}:{ip}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_counts_per_64_and_ipv4_per_address() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            bucket_of(ip("2001:db8:1:2::1")),
            bucket_of(ip("2001:db8:1:2:ffff:ffff:ffff:fffe"))
        );
        assert_ne!(
            bucket_of(ip("2001:db8:1:2::1")),
            bucket_of(ip("2001:db8:1:3::1"))
        );
        assert_eq!(bucket_of(ip("2001:db8:1:2::1")), "2001:db8:1:2::/64");
        assert_ne!(bucket_of(ip("203.0.113.1")), bucket_of(ip("203.0.113.2")));
        assert_eq!(bucket_of(ip("::ffff:203.0.113.1")), "203.0.113.1");
        assert_eq!(
            client_bucket("submit", "2001:db8::5"),
            "submit:2001:db8::/64"
        );
        assert_eq!(client_bucket("submit", ""), "submit:");
    }
}
