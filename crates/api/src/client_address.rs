//! The client address a request came from, which logins and invitation acceptances are
//! throttled by (AC-5). `X-Forwarded-For` is believed only from the configured trusted proxies
//! (`trusted_proxies`): from anyone else it is the client's own claim and changes nothing.

use std::net::IpAddr;
use std::str::FromStr;

use actix_web::HttpRequest;

/// An address block, `10.0.0.0/8` or `2001:db8::/32` (the `ipnet` crate's); a bare address is
/// a block of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr(ipnet::IpNet);

impl FromStr for Cidr {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if let Ok(block) = text.parse::<ipnet::IpNet>() {
            return Ok(Self(block));
        }
        text.parse::<IpAddr>()
            .map(|address| Self(ipnet::IpNet::from(address.to_canonical())))
            .map_err(|_| format!("'{text}' is not an address or address block such as 10.0.0.0/8"))
    }
}

impl Cidr {
    pub fn contains(&self, address: IpAddr) -> bool {
        self.0.contains(&address.to_canonical())
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// The proxies whose `X-Forwarded-For` is believed; none by default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<Cidr>);

impl TrustedProxies {
    pub fn new(blocks: Vec<Cidr>) -> Self {
        Self(blocks)
    }

    /// A comma-separated list of blocks (`10.0.0.0/8, 192.168.1.10`); empty: none.
    pub fn parse_list(text: &str) -> Result<Self, String> {
        text.split(',')
            .map(str::trim)
            .filter(|block| !block.is_empty())
            .map(str::parse)
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }

    pub fn blocks(&self) -> &[Cidr] {
        &self.0
    }

    fn trusts(&self, address: IpAddr) -> bool {
        self.0.iter().any(|block| block.contains(address))
    }

    /// The client's address: the peer's, unless the peer is a trusted proxy; then, walking
    /// `X-Forwarded-For` from its right end (the hop the proxy itself added), the first address
    /// that is not a trusted proxy. Entries left of it are the client's own claims and ignored.
    pub fn client_address<'a>(
        &self,
        peer: Option<IpAddr>,
        forwarded_for: impl DoubleEndedIterator<Item = &'a str>,
    ) -> String {
        let Some(mut client) = peer.map(|p| p.to_canonical()) else {
            return "unknown".to_owned();
        };
        for entry in forwarded_for.rev() {
            if !self.trusts(client) {
                break;
            }
            match entry.trim().parse::<IpAddr>() {
                Ok(address) => client = address.to_canonical(),
                Err(_) => break,
            }
        }
        client.to_string()
    }

    /// [`TrustedProxies::client_address`] of a request.
    pub fn of_request(&self, req: &HttpRequest) -> String {
        let entries: Vec<&str> = req
            .headers()
            .get_all("x-forwarded-for")
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .collect();
        self.client_address(req.peer_addr().map(|a| a.ip()), entries.into_iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().unwrap())
    }

    #[test]
    fn ac_5_forwarded_for_is_believed_only_from_trusted_proxies() {
        let trusted = TrustedProxies::parse_list("10.0.0.0/8, 192.0.2.1").unwrap();
        let xff = |s: &'static str| s.split(',');
        assert_eq!(
            trusted.client_address(ip("198.51.100.7"), xff("203.0.113.9")),
            "198.51.100.7"
        );
        assert_eq!(
            trusted.client_address(ip("10.1.2.3"), xff("203.0.113.9")),
            "203.0.113.9"
        );
        // The client's own claim left of the proxies' hops is ignored.
        assert_eq!(
            trusted.client_address(ip("10.1.2.3"), xff("1.1.1.1, 203.0.113.9, 192.0.2.1")),
            "203.0.113.9"
        );
        assert_eq!(trusted.client_address(ip("10.1.2.3"), xff("")), "10.1.2.3");
        assert_eq!(
            trusted.client_address(ip("::ffff:10.1.2.3"), xff("2001:db8::1")),
            "2001:db8::1"
        );
        assert_eq!(
            TrustedProxies::default().client_address(ip("10.1.2.3"), xff("1.1.1.1")),
            "10.1.2.3"
        );
        assert_eq!(trusted.client_address(None, xff("1.1.1.1")), "unknown");
    }

    #[test]
    fn address_blocks_parse_and_match() {
        let block: Cidr = "2001:db8::/32".parse().unwrap();
        assert!(block.contains("2001:db8:1::5".parse().unwrap()));
        assert!(!block.contains("2001:db9::5".parse().unwrap()));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("8.8.8.8".parse().unwrap()));
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("example.com".parse::<Cidr>().is_err());
        assert_eq!(TrustedProxies::parse_list(" ").unwrap(), TrustedProxies::default());
    }
}
