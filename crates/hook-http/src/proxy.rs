//! The proxy for a hook URL, chosen as Go's `http.ProxyFromEnvironment` chooses it
//! (`golang.org/x/net/http/httpproxy`): `HTTP_PROXY` for `http://`, `HTTPS_PROXY` for
//! `https://` (upper case first, then lower case; an empty value counts as unset), `NO_PROXY`
//! entries, never a proxy for `localhost` or a loopback address, and `HTTP_PROXY` ignored when
//! `REQUEST_METHOD` is set (a CGI environment). `ALL_PROXY` is not read, as in Go.
//!
//! `NO_PROXY` is a comma-separated list; each entry trimmed and lower-cased, empty ones skipped:
//! * `*` alone: no proxy for anything (the rest of the list is not read);
//! * a CIDR block (`10.0.0.0/8`, `2001:db8::/32`): IP hosts inside it;
//! * an IP, optionally with a port (`192.168.1.5`, `192.168.1.5:8080`, `[::1]:8080`): that IP,
//!   on that port when one is given;
//! * a domain, optionally with a port: `example.com` matches `example.com` and its
//!   sub-domains; `.example.com` and `*.example.com` only its sub-domains; with `:port`, only
//!   on that port (the URL's port, or 80/443 by scheme).
//!
//! The hook only ever talks to its own origin (cross-origin redirects are refused), so the
//! decision is made once, when the hook is built.

use std::net::IpAddr;

use url::Url;

/// The proxy settings read from the environment (Go's `httpproxy.Config`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ProxyEnv {
    pub(crate) http_proxy: String,
    pub(crate) https_proxy: String,
    pub(crate) no_proxy: String,
    pub(crate) cgi: bool,
}

impl ProxyEnv {
    /// The process environment, as Go's `httpproxy.FromEnvironment`.
    pub(crate) fn from_env() -> ProxyEnv {
        let any = |names: [&str; 2]| {
            names
                .iter()
                .find_map(|n| std::env::var(n).ok().filter(|v| !v.is_empty()))
                .unwrap_or_default()
        };
        ProxyEnv {
            http_proxy: any(["HTTP_PROXY", "http_proxy"]),
            https_proxy: any(["HTTPS_PROXY", "https_proxy"]),
            no_proxy: any(["NO_PROXY", "no_proxy"]),
            cgi: std::env::var_os("REQUEST_METHOD").is_some(),
        }
    }

    /// The proxy URL for requests to `url`'s origin, or `None` to go direct. A proxy value
    /// without a scheme is taken as `http://` (as Go does); one that does not parse gives an
    /// error naming the variable (the value is not shown: it may hold a password).
    pub(crate) fn proxy_for(&self, url: &Url) -> Result<Option<Url>, String> {
        let (name, value) = match url.scheme() {
            "https" => ("HTTPS_PROXY", &self.https_proxy),
            "http" if !self.cgi => ("HTTP_PROXY", &self.http_proxy),
            _ => return Ok(None),
        };
        if value.is_empty() {
            return Ok(None);
        }
        let Some(host) = url.host_str() else {
            return Ok(None);
        };
        let port = url.port_or_known_default().unwrap_or_default();
        if !use_proxy(&self.no_proxy, host, port) {
            return Ok(None);
        }
        let parsed = Url::parse(value)
            .ok()
            .filter(|u| u.has_host())
            .or_else(|| Url::parse(&format!("http://{value}")).ok())
            .filter(|u| u.has_host());
        match parsed {
            Some(proxy) => Ok(Some(proxy)),
            None => Err(format!("invalid proxy address in {name}")),
        }
    }
}

/// Whether a request to `host` (as in a URL: IPv6 in brackets) on `port` goes through the
/// proxy, by Go's `useProxy` rules with `no_proxy` as `NO_PROXY`.
pub(crate) fn use_proxy(no_proxy: &str, host: &str, port: u16) -> bool {
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    if host == "localhost" {
        return false;
    }
    let ip: Option<IpAddr> = host.parse().ok();
    if ip.is_some_and(|ip| ip.is_loopback()) {
        return false;
    }
    let port = port.to_string();
    for entry in no_proxy.split(',') {
        let entry = entry.trim().to_ascii_lowercase();
        if entry.is_empty() {
            continue;
        }
        if entry == "*" {
            return false;
        }
        if let Some(block) = parse_cidr(&entry) {
            if ip.is_some_and(|ip| block.contains(ip)) {
                return false;
            }
            continue;
        }
        let (entry_host, entry_port) = match split_host_port(&entry) {
            Some(("", _)) => continue, // ":80": malformed, ignored
            Some((h, p)) => (h.trim_start_matches('[').trim_end_matches(']'), p),
            None => (entry.as_str(), ""),
        };
        let port_ok = entry_port.is_empty() || entry_port == port;
        if let Ok(entry_ip) = entry_host.parse::<IpAddr>() {
            if ip == Some(entry_ip) && port_ok {
                return false;
            }
            continue;
        }
        if entry_host.is_empty() {
            continue;
        }
        let entry_host = entry_host
            .strip_prefix('*')
            .filter(|h| h.starts_with('.'))
            .unwrap_or(entry_host);
        let (suffix, match_host) = match entry_host.strip_prefix('.') {
            Some(_) => (entry_host.to_owned(), false),
            None => (format!(".{entry_host}"), true),
        };
        let ascii = url::quirks::domain_to_ascii(&suffix);
        let suffix = if ascii.is_empty() { suffix } else { ascii };
        let host_ok = host.ends_with(&suffix) || (match_host && host == suffix[1..]);
        if host_ok && port_ok {
            return false;
        }
    }
    true
}

/// Go's `net.SplitHostPort` for the shapes `NO_PROXY` uses: `host:port`, `[v6]:port`. `None`
/// when there is no port (or the entry is a bare IPv6 address).
fn split_host_port(entry: &str) -> Option<(&str, &str)> {
    if let Some(rest) = entry.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = after.strip_prefix(':')?;
        return Some((host, port));
    }
    let (host, port) = entry.rsplit_once(':')?;
    if host.contains(':') {
        return None; // a bare IPv6 address
    }
    Some((host, port))
}

/// A CIDR block, as Go's `net.ParseCIDR` accepts it.
struct Cidr {
    network: IpAddr,
    bits: u8,
}

impl Cidr {
    fn contains(&self, ip: IpAddr) -> bool {
        let ip = match (self.network, ip) {
            (IpAddr::V4(_), IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => return false,
            },
            _ => ip,
        };
        match (self.network, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => prefix_eq(&n.octets(), &a.octets(), self.bits),
            (IpAddr::V6(n), IpAddr::V6(a)) => prefix_eq(&n.octets(), &a.octets(), self.bits),
            _ => false,
        }
    }
}

fn prefix_eq(a: &[u8], b: &[u8], bits: u8) -> bool {
    let full = usize::from(bits / 8);
    let rest = bits % 8;
    if a[..full] != b[..full] {
        return false;
    }
    if rest == 0 {
        return true;
    }
    let mask = 0xffu8 << (8 - rest);
    a[full] & mask == b[full] & mask
}

fn parse_cidr(entry: &str) -> Option<Cidr> {
    let (ip, bits) = entry.split_once('/')?;
    let network: IpAddr = ip.parse().ok()?;
    if bits.is_empty() || !bits.bytes().all(|b| b.is_ascii_digit()) || bits.len() > 3 {
        return None;
    }
    let bits: u8 = bits.parse().ok()?;
    let max = if network.is_ipv4() { 32 } else { 128 };
    (bits <= max).then_some(Cidr { network, bits })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 11 item 4: Go's `NO_PROXY` rules, case by case (`true`: through the proxy).
    #[test]
    fn item4_no_proxy_table_like_go() {
        let table: &[(&str, &str, u16, bool)] = &[
            // (NO_PROXY, host, port, proxied)
            ("", "example.com", 80, true),
            ("", "localhost", 80, false),
            ("", "127.0.0.1", 80, false),
            ("", "127.1.2.3", 80, false),
            ("", "[::1]", 80, false),
            ("*", "example.com", 80, false),
            ("*", "10.1.2.3", 443, false),
            ("foo.com, *", "example.com", 80, false),
            ("*.example.com", "example.com", 80, true), // `*.` as `.`: sub-domains only
            // host
            ("example.com", "example.com", 80, false),
            ("example.com", "www.example.com", 80, false),
            ("example.com", "notexample.com", 80, true),
            ("EXAMPLE.com", "example.com", 80, false),
            ("  example.com  ,", "example.com", 80, false),
            // .domain
            (".example.com", "example.com", 80, true),
            (".example.com", "a.b.example.com", 80, false),
            ("*.example.com", "a.example.com", 80, false),
            // host:port
            ("example.com:8080", "example.com", 8080, false),
            ("example.com:8080", "example.com", 80, true),
            ("example.com:80", "example.com", 80, false),
            (".example.com:443", "a.example.com", 443, false),
            (".example.com:443", "a.example.com", 8443, true),
            (":80", "example.com", 80, true), // malformed: ignored
            // IP and IP:port
            ("192.168.1.5", "192.168.1.5", 80, false),
            ("192.168.1.5", "192.168.1.6", 80, true),
            ("192.168.1.5:8080", "192.168.1.5", 8080, false),
            ("192.168.1.5:8080", "192.168.1.5", 80, true),
            ("2001:db8::1", "[2001:db8::1]", 80, false),
            ("[2001:db8::1]:8080", "[2001:db8::1]", 8080, false),
            ("[2001:db8::1]:8080", "[2001:db8::1]", 80, true),
            // an IP entry never matches a name
            ("192.168.1.5", "host.example", 80, true),
            // CIDR
            ("10.0.0.0/8", "10.200.3.4", 80, false),
            ("10.0.0.0/8", "11.0.0.1", 80, true),
            ("192.168.0.0/23", "192.168.1.255", 80, false),
            ("192.168.0.0/23", "192.168.2.0", 80, true),
            ("2001:db8::/32", "[2001:db8:ffff::1]", 443, false),
            ("2001:db8::/32", "[2001:db9::1]", 443, true),
            ("10.0.0.0/8", "ten.example", 80, true),
            // several entries
            ("a.com,b.com:81,10.0.0.0/8", "b.com", 81, false),
            ("a.com,b.com:81,10.0.0.0/8", "b.com", 80, true),
        ];
        for &(no_proxy, host, port, proxied) in table {
            assert_eq!(
                use_proxy(no_proxy, host, port),
                proxied,
                "NO_PROXY={no_proxy:?} host={host} port={port}"
            );
        }
    }

    #[test]
    fn item4_proxy_variables_by_scheme_like_go() {
        let env = ProxyEnv {
            http_proxy: "proxy.example:3128".into(),
            https_proxy: "http://secure.example:3129".into(),
            no_proxy: "skip.example:8443".into(),
            cgi: false,
        };
        let url = |u: &str| Url::parse(u).unwrap();
        let http = env
            .proxy_for(&url("http://hooks.example/x"))
            .unwrap()
            .unwrap();
        assert_eq!(http.as_str(), "http://proxy.example:3128/");
        let https = env
            .proxy_for(&url("https://hooks.example/x"))
            .unwrap()
            .unwrap();
        assert_eq!(https.as_str(), "http://secure.example:3129/");
        assert_eq!(
            env.proxy_for(&url("https://skip.example:8443/x")).unwrap(),
            None
        );
        assert!(
            env.proxy_for(&url("https://skip.example/x"))
                .unwrap()
                .is_some()
        );
        assert_eq!(env.proxy_for(&url("http://localhost/x")).unwrap(), None);
        // CGI: HTTP_PROXY is ignored (httpoxy), HTTPS_PROXY is not.
        let cgi = ProxyEnv { cgi: true, ..env };
        assert_eq!(cgi.proxy_for(&url("http://hooks.example/x")).unwrap(), None);
        assert!(
            cgi.proxy_for(&url("https://hooks.example/x"))
                .unwrap()
                .is_some()
        );
        // Nothing set: direct.
        assert_eq!(
            ProxyEnv::default()
                .proxy_for(&url("https://h.example/"))
                .unwrap(),
            None
        );
    }
}
