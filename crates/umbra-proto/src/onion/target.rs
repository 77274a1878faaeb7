//! Proxy-to-server rules (spec `onion.md` §4.2): the `target` allow-list,
//! `protocol`/`port`/`host` validation, the URL, and Umbra's policy that
//! proxied hosts must resolve to public addresses only.
//!
//! Name resolution is I/O and belongs to the node: it resolves
//! [`ProxyHost::Name`], passes every address to
//! [`check_resolved_addresses`] (with its devnet exemptions, if any), and
//! connects only to the addresses that call returned.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::OnionError;

/// True exactly when `target` starts with `/oxen/` or `/loki/`, ends with
/// `/lsrpc`, and contains no `?`.
pub fn target_allowed(target: &str) -> bool {
    (target.starts_with("/oxen/") || target.starts_with("/loki/"))
        && target.ends_with("/lsrpc")
        && !target.contains('?')
}

/// The scheme of a proxied request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// Plain HTTP (content is still end-to-end encrypted to the server).
    Http,
    /// HTTPS with ordinary web trust roots (the default).
    Https,
}

impl Protocol {
    /// Parses `"http"` or `"https"`; anything else is an invalid URL.
    pub fn parse(s: &str) -> Result<Self, OnionError> {
        match s {
            "http" => Ok(Protocol::Http),
            "https" => Ok(Protocol::Https),
            _ => Err(OnionError::InvalidUrl("protocol must be http or https")),
        }
    }

    /// `"http"` or `"https"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Protocol::Http => "http",
            Protocol::Https => "https",
        }
    }

    /// 80 or 443.
    pub const fn default_port(self) -> u16 {
        match self {
            Protocol::Http => 80,
            Protocol::Https => 443,
        }
    }
}

/// A syntactically valid proxy host.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ProxyHost {
    /// An IPv4 literal; its address still has to pass [`address_allowed`].
    Ipv4(Ipv4Addr),
    /// A DNS name (lower-cased, without a trailing dot) that the node
    /// resolves before checking the addresses.
    Name(String),
}

impl ProxyHost {
    /// Parses a host: a dotted-quad IPv4 literal or a DNS name of
    /// letters, digits and hyphens (labels 1–63 characters, no leading or
    /// trailing hyphen, 253 characters at most, last label not numeric).
    /// `localhost` and `*.localhost` are refused outright.
    pub fn parse(host: &str) -> Result<Self, OnionError> {
        if let Ok(ip) = host.parse::<Ipv4Addr>() {
            return Ok(ProxyHost::Ipv4(ip));
        }
        let name = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
        let bad = OnionError::InvalidUrl("host is not a DNS name or IPv4 literal");
        if name.is_empty() || name.len() > 253 {
            return Err(bad);
        }
        for label in name.split('.') {
            let ok = (1..=63).contains(&label.len())
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-');
            if !ok {
                return Err(bad);
            }
        }
        // Resolvers read "127.1" or "0x7f.1" as addresses; a real name's
        // top-level label is never numeric.
        let last = name.rsplit('.').next().unwrap_or_default();
        if last.bytes().all(|b| b.is_ascii_digit()) || last.starts_with("0x") {
            return Err(bad);
        }
        if name == "localhost" || name.ends_with(".localhost") {
            return Err(OnionError::InvalidUrl("host is localhost"));
        }
        Ok(ProxyHost::Name(name))
    }
}

impl ProxyHost {
    /// The address of an IPv4 literal host (no resolution needed), or `None`
    /// for a name.
    pub fn literal(&self) -> Option<IpAddr> {
        match self {
            ProxyHost::Ipv4(ip) => Some(IpAddr::V4(*ip)),
            ProxyHost::Name(_) => None,
        }
    }
}

impl fmt::Display for ProxyHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProxyHost::Ipv4(ip) => write!(f, "{ip}"),
            ProxyHost::Name(n) => f.write_str(n),
        }
    }
}

/// A validated proxy request: where hop 3 POSTs the decrypted container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxyRequest {
    /// The server's host.
    pub host: ProxyHost,
    /// The path, an allowed `/oxen/…/lsrpc` or `/loki/…/lsrpc` target.
    pub target: String,
    /// `http` or `https`.
    pub protocol: Protocol,
    /// The TCP port.
    pub port: u16,
}

impl ProxyRequest {
    /// Validates the raw routing fields: allowed target, known protocol,
    /// non-zero port and host syntax. The host's addresses (the literal
    /// itself for [`ProxyHost::Ipv4`]) must still pass
    /// [`check_resolved_addresses`] before the node connects.
    pub fn new(host: &str, target: &str, protocol: &str, port: u16) -> Result<Self, OnionError> {
        if !target_allowed(target) {
            return Err(OnionError::InvalidUrl("target not allowed"));
        }
        let protocol = Protocol::parse(protocol)?;
        if port == 0 {
            return Err(OnionError::InvalidUrl("port 0"));
        }
        let host = ProxyHost::parse(host)?;
        Ok(ProxyRequest {
            host,
            target: target.to_owned(),
            protocol,
            port,
        })
    }

    /// `protocol://host[:port]target`, the port left out when it is the
    /// protocol's default.
    pub fn url(&self) -> String {
        if self.port == self.protocol.default_port() {
            format!("{}://{}{}", self.protocol.as_str(), self.host, self.target)
        } else {
            format!(
                "{}://{}:{}{}",
                self.protocol.as_str(),
                self.host,
                self.port,
                self.target
            )
        }
    }
}

/// True when `ip` is a public unicast address a node may proxy to: not
/// loopback, private, link-local, CGNAT, multicast, documentation,
/// benchmarking, unspecified or otherwise reserved. IPv4-mapped and NAT64
/// IPv6 addresses are judged by their IPv4 address.
pub fn address_allowed(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => ipv4_public(v4),
        IpAddr::V6(v6) => ipv6_public(v6),
    }
}

fn ipv4_public(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    let refused = a == 0                                  // 0.0.0.0/8 "this network"
        || a == 10                                        // private
        || (a == 100 && (64..128).contains(&b))           // CGNAT 100.64/10
        || a == 127                                       // loopback
        || (a == 169 && b == 254)                         // link-local
        || (a == 172 && (16..32).contains(&b))            // private
        || (a == 192 && b == 0 && c == 0)                 // IETF protocol assignments
        || (a == 192 && b == 0 && c == 2)                 // TEST-NET-1
        || (a == 192 && b == 88 && c == 99)               // 6to4 relay anycast
        || (a == 192 && b == 168)                         // private
        || (a == 198 && (b == 18 || b == 19))             // benchmarking
        || (a == 198 && b == 51 && c == 100)              // TEST-NET-2
        || (a == 203 && b == 0 && c == 113)               // TEST-NET-3
        || a >= 224; // multicast 224/4, reserved 240/4, broadcast
    !refused
}

fn ipv6_public(ip: Ipv6Addr) -> bool {
    let seg = ip.segments();
    if let Some(v4) = ip.to_ipv4_mapped() {
        return ipv4_public(v4);
    }
    // NAT64 well-known prefix 64:ff9b::/96 embeds an IPv4 address.
    if seg[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let o = ip.octets();
        return ipv4_public(Ipv4Addr::new(o[12], o[13], o[14], o[15]));
    }
    let global_unicast = (seg[0] & 0xe000) == 0x2000; // 2000::/3
    let ietf = seg[0] == 0x2001 && seg[1] < 0x0200; // 2001::/23 (Teredo, ORCHID, …)
    let documentation = seg[0] == 0x2001 && seg[1] == 0x0db8; // 2001:db8::/32
    let six_to_four = seg[0] == 0x2002; // 2002::/16
    let doc2 = seg[0] == 0x3fff && seg[1] < 0x1000; // 3fff::/20
    global_unicast && !ietf && !documentation && !six_to_four && !doc2
}

/// Checks what a proxy host resolved to: every address must be public
/// ([`address_allowed`]) or listed in `exempt` (a test network's file
/// server). Returns the addresses to connect to; the node must not resolve
/// again (DNS rebinding).
pub fn check_resolved_addresses(
    resolved: &[IpAddr],
    exempt: &[IpAddr],
) -> Result<Vec<IpAddr>, OnionError> {
    if resolved.is_empty() {
        return Err(OnionError::NoAddress);
    }
    for ip in resolved {
        if !address_allowed(*ip) && !exempt.contains(ip) {
            return Err(OnionError::ForbiddenAddress(*ip));
        }
    }
    Ok(resolved.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert!(target_allowed("/oxen/v4/lsrpc"));
        assert!(target_allowed("/loki/v3/lsrpc"));
        assert!(!target_allowed("/not_loki/v3/lsrpc"));
        assert!(!target_allowed("/loki/v3/lsrpc?foo=bar"));
        assert!(!target_allowed("/oxen/v4/lsrpc/"));
        assert!(!target_allowed("oxen/v4/lsrpc"));
    }

    #[test]
    fn hosts() {
        assert_eq!(
            ProxyHost::parse("Files.Example.org."),
            Ok(ProxyHost::Name("files.example.org".into()))
        );
        assert_eq!(
            ProxyHost::parse("1.2.3.4"),
            Ok(ProxyHost::Ipv4(Ipv4Addr::new(1, 2, 3, 4)))
        );
        for bad in [
            "",
            "127.1",
            "0x7f.1",
            "a..b",
            "-a.com",
            "a-.com",
            "a_b.com",
            "a.com:80",
            "[::1]",
            "localhost",
            "x.localhost",
            "01.2.3.4",
            "1.2.3.4.5",
        ] {
            assert!(ProxyHost::parse(bad).is_err(), "{bad}");
        }
        assert!(ProxyHost::parse(&"a".repeat(64)).is_err());
    }

    #[test]
    fn urls() {
        let r = ProxyRequest::new("example.org", "/oxen/v4/lsrpc", "https", 443).expect("ok");
        assert_eq!(r.url(), "https://example.org/oxen/v4/lsrpc");
        let r = ProxyRequest::new("1.2.3.4", "/oxen/v4/lsrpc", "http", 8080).expect("ok");
        assert_eq!(r.url(), "http://1.2.3.4:8080/oxen/v4/lsrpc");
        let r = ProxyRequest::new("1.2.3.4", "/oxen/v4/lsrpc", "http", 80).expect("ok");
        assert_eq!(r.url(), "http://1.2.3.4/oxen/v4/lsrpc");
        assert_eq!(
            ProxyRequest::new("example.org", "/oxen/v4/lsrpc", "ftp", 443),
            Err(OnionError::InvalidUrl("protocol must be http or https"))
        );
        assert_eq!(
            ProxyRequest::new("example.org", "/x/lsrpc", "https", 443),
            Err(OnionError::InvalidUrl("target not allowed"))
        );
        assert!(ProxyRequest::new("example.org", "/oxen/v4/lsrpc", "https", 0).is_err());
    }

    #[test]
    fn private_addresses_refused() {
        for bad in [
            "0.0.0.0",
            "10.1.2.3",
            "100.64.0.1",
            "100.127.255.255",
            "127.0.0.1",
            "169.254.1.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.1",
            "192.0.2.1",
            "192.168.1.1",
            "198.18.0.1",
            "198.51.100.1",
            "203.0.113.1",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fc00::1",
            "fd12::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::7f00:1",
            "2001:db8::1",
            "2001::1",
            "2002:7f00:1::1",
        ] {
            let ip: IpAddr = bad.parse().expect("test address");
            assert!(!address_allowed(ip), "{bad}");
            assert_eq!(
                check_resolved_addresses(&[ip], &[]),
                Err(OnionError::ForbiddenAddress(ip))
            );
        }
        for good in [
            "1.1.1.1",
            "8.8.8.8",
            "100.63.255.255",
            "100.128.0.1",
            "172.15.0.1",
            "172.32.0.1",
            "192.169.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ] {
            let ip: IpAddr = good.parse().expect("test address");
            assert!(address_allowed(ip), "{good}");
        }
        let lo: IpAddr = "127.0.0.1".parse().expect("ip");
        let pubip: IpAddr = "8.8.8.8".parse().expect("ip");
        assert_eq!(check_resolved_addresses(&[lo], &[lo]), Ok(vec![lo]));
        assert_eq!(
            check_resolved_addresses(&[pubip, lo], &[]),
            Err(OnionError::ForbiddenAddress(lo))
        );
        assert_eq!(
            check_resolved_addresses(&[], &[]),
            Err(OnionError::NoAddress)
        );
    }
}
