//! Who the client is. Behind a reverse proxy the TCP peer is the proxy, so every contractor
//! would share one address (and one rate-limit bucket). A proxy says whom it spoke for in
//! `X-Forwarded-For`, appending the address it saw; a client can put anything before that.
//! So the header is believed only when the peer is a trusted proxy (`TRUSTED_PROXIES`), and
//! read from the right: the first address that is not itself a trusted proxy is the client.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
pub use services::client::ClientAddr;

/// A network (`10.0.0.0/8`, `2001:db8::/32`) or one address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

impl Network {
    /// `addr/prefix` or a bare address; host bits below the prefix must be zero.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        let (addr, prefix) = match raw.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (raw, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("'{raw}' is not an IP address or network (CIDR)"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("'{raw}': the prefix length must be 0 to {max}"))?,
            None => max,
        };
        let network = Self { addr, prefix };
        if network.masked(addr) != addr {
            return Err(format!(
                "'{raw}' has bits set after its prefix (did you mean {}/{prefix}?)",
                network.masked(addr)
            ));
        }
        Ok(network)
    }

    fn masked(&self, ip: IpAddr) -> IpAddr {
        match ip {
            IpAddr::V4(v4) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                IpAddr::V4((u32::from(v4) & mask).into())
            }
            IpAddr::V6(v6) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                IpAddr::V6((u128::from(v6) & mask).into())
            }
        }
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.addr.is_ipv4() == ip.is_ipv4() && self.masked(ip) == self.addr
    }
}

impl std::fmt::Display for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// The proxies whose `X-Forwarded-For` is believed.
#[derive(Clone, Debug, Default)]
pub struct TrustedProxies(Arc<Vec<Network>>);

impl TrustedProxies {
    pub fn new(networks: Vec<Network>) -> Self {
        Self(Arc::new(networks))
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|n| n.contains(ip))
    }

    /// The client behind `peer`: `peer` itself unless it is a trusted proxy; then, reading
    /// `X-Forwarded-For` from the right, the first address that is not a trusted proxy. A
    /// value that is not an address ends the walk at the last trusted hop.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let mut client = peer.to_canonical();
        if !self.trusts(client) {
            return client;
        }
        let hops: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        for hop in hops.into_iter().rev() {
            let Some(ip) = parse_hop(hop) else {
                break;
            };
            client = ip;
            if !self.trusts(ip) {
                break;
            }
        }
        client
    }
}

/// One `X-Forwarded-For` entry: an address, perhaps with a port (`[v6]:port`, `v4:port`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    hop.parse::<SocketAddr>()
        .ok()
        .map(|s| s.ip().to_canonical())
}

/// Middleware: puts the [`ClientAddr`] into the request for everything after it.
pub async fn resolve(
    State(proxies): State<TrustedProxies>,
    mut request: Request,
    next: Next,
) -> Response {
    if let Some(ConnectInfo(peer)) = request.extensions().get::<ConnectInfo<SocketAddr>>() {
        let client = proxies.client(peer.ip(), request.headers());
        request.extensions_mut().insert(ClientAddr(client));
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in xff {
            headers.append("x-forwarded-for", value.parse().unwrap());
        }
        headers
    }

    #[test]
    fn the_right_most_untrusted_hop_is_the_client() {
        let proxies = TrustedProxies::new(vec![
            Network::parse("10.0.0.0/8").unwrap(),
            Network::parse("2001:db8:ffff::/48").unwrap(),
        ]);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let proxy = ip("10.1.2.3");
        assert_eq!(
            proxies.client(proxy, &headers(&["203.0.113.9"])),
            ip("203.0.113.9")
        );
        assert_eq!(
            proxies.client(proxy, &headers(&["198.51.100.1, 203.0.113.9"])),
            ip("203.0.113.9"),
            "a client-written hop on the left is ignored"
        );
        assert_eq!(
            proxies.client(proxy, &headers(&["203.0.113.9", "10.9.9.9"])),
            ip("203.0.113.9"),
            "several headers are one list; trusted hops are skipped"
        );
        assert_eq!(
            proxies.client(proxy, &headers(&["[2001:db8::7]:4711"])),
            ip("2001:db8::7")
        );
        assert_eq!(proxies.client(proxy, &headers(&["junk"])), proxy);
        assert_eq!(proxies.client(proxy, &headers(&[])), proxy);
        assert_eq!(
            proxies.client(ip("203.0.113.50"), &headers(&["198.51.100.1"])),
            ip("203.0.113.50"),
            "an untrusted peer's header is not read"
        );
        assert_eq!(
            proxies.client(ip("::ffff:10.0.0.1"), &headers(&["203.0.113.9"])),
            ip("203.0.113.9"),
            "an IPv4-mapped peer is its IPv4 address"
        );
    }

    #[test]
    fn networks_parse_strictly() {
        assert!(Network::parse("10.0.0.0/8").is_ok());
        assert!(Network::parse("192.0.2.1").is_ok());
        assert!(Network::parse("::1").is_ok());
        assert!(Network::parse("0.0.0.0/0").is_ok());
        for bad in [
            "10.0.0.0/33",
            "10.0.0.1/8",
            "proxy.internal",
            "",
            "2001:db8::/129",
        ] {
            assert!(Network::parse(bad).is_err(), "{bad}");
        }
        let n = Network::parse("2001:db8::/32").unwrap();
        assert!(n.contains("2001:db8:1::1".parse().unwrap()));
        assert!(!n.contains("2001:db9::1".parse().unwrap()));
        assert!(!n.contains("10.0.0.1".parse().unwrap()));
    }
}
