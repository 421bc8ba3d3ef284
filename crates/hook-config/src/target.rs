//! [`HookTarget`]: what `common.post_disconnect_hook` points at (spec Part A, D1).

use std::fmt;
use std::path::{Path, PathBuf};

use crate::{ConfigError, redact_url};

/// The key the hook target is read from.
pub const HOOK_KEY: &str = "common.post_disconnect_hook";

/// What `common.post_disconnect_hook` points at.
///
/// Rules (D1): empty means disabled; a value is a URL when it parses with scheme `http` or `https`
/// (any case) and has a host (`scheme://host...`); a value starting with `nats://` or `tls://`
/// (any case) is a list of NATS servers, comma-separated (our addition: the `hook-nats`
/// backend); otherwise it must be an absolute path. Anything
/// else (a relative path such as `http_hook.sh`, `ftp://...`, an unparsable URL, leading or
/// trailing spaces, control characters) is rejected at load with an error naming the key and the
/// value, password redacted.
///
/// ```
/// use hook_config::HookTarget;
///
/// assert!(matches!(HookTarget::parse("").unwrap(), HookTarget::Disabled));
/// assert!(matches!(HookTarget::parse("HTTPS://h.example/x").unwrap(), HookTarget::Http(_)));
/// assert!(matches!(HookTarget::parse("/usr/local/bin/hook.sh").unwrap(), HookTarget::Program(_)));
/// let HookTarget::Nats(servers) = HookTarget::parse("nats://u:pw@n1:4222,nats://n2").unwrap() else {
///     unreachable!()
/// };
/// assert_eq!(servers.urls().len(), 2);
/// assert_eq!(servers.to_string(), "nats://u:xxxxx@n1:4222,nats://n2");
/// let err = HookTarget::parse("http_hook.sh").unwrap_err();
/// assert!(err.to_string().starts_with("common.post_disconnect_hook: \"http_hook.sh\""));
/// ```
#[non_exhaustive]
#[derive(Clone, PartialEq, Eq)]
pub enum HookTarget {
    /// No hook: events are not delivered anywhere.
    Disabled,
    /// An HTTP(S) endpoint.
    Http(HookUrl),
    /// An absolute program path, run without a shell.
    Program(PathBuf),
    /// NATS servers (`nats://` or `tls://` URLs, comma-separated): events are published to
    /// JetStream (the `nats` section), for `hookctl relay` workers to deliver.
    Nats(NatsServers),
}

impl HookTarget {
    /// Parses a hook string by the rules of D1; errors name [`HOOK_KEY`].
    pub fn parse(value: &str) -> Result<HookTarget, ConfigError> {
        HookTarget::parse_for_key(HOOK_KEY, value)
    }

    /// Like [`parse`](HookTarget::parse), naming `key` in errors (e.g. a CLI flag).
    pub fn parse_for_key(key: &str, value: &str) -> Result<HookTarget, ConfigError> {
        if value.is_empty() {
            return Ok(HookTarget::Disabled);
        }
        let shown = redact_url(value);
        let reject = |why: &str| ConfigError::invalid(key, format!("{shown:?} {why}"));
        if value.bytes().any(|b| b < 0x20 || b == 0x7f) {
            return Err(reject("contains a control character"));
        }
        if value.starts_with(char::is_whitespace) || value.ends_with(char::is_whitespace) {
            return Err(reject("has leading or trailing white space"));
        }
        if let Some((scheme, _)) = value.split_once("://")
            && is_nats_scheme(scheme)
        {
            return NatsServers::parse_for_key(key, value).map(HookTarget::Nats);
        }
        if let Some((scheme, rest)) = value.split_once(':') {
            let is_http =
                scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https");
            if is_http {
                if !rest.starts_with("//") {
                    return Err(reject("is not a valid URL: expected http(s)://host/..."));
                }
                let url = url::Url::parse(value)
                    .map_err(|e| reject(&format!("is not a valid URL: {e}")))?;
                if url.host_str().is_none_or(str::is_empty) {
                    return Err(reject("is not a valid URL: it has no host"));
                }
                return Ok(HookTarget::Http(HookUrl {
                    raw: value.to_owned(),
                    url,
                }));
            }
        }
        if Path::new(value).is_absolute() {
            return Ok(HookTarget::Program(PathBuf::from(value)));
        }
        if value.contains("://") {
            return Err(reject(
                "is neither an http(s) URL nor an absolute program path",
            ));
        }
        Err(reject(
            "is neither an http(s) URL nor an absolute program path (relative paths are not allowed)",
        ))
    }

    /// Whether a hook is configured.
    pub fn is_enabled(&self) -> bool {
        !matches!(self, HookTarget::Disabled)
    }
}

impl fmt::Display for HookTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HookTarget::Disabled => f.write_str("disabled"),
            HookTarget::Http(url) => write!(f, "{url}"),
            HookTarget::Program(path) => write!(f, "{}", path.display()),
            HookTarget::Nats(servers) => write!(f, "{servers}"),
        }
    }
}

impl fmt::Debug for HookTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HookTarget::Disabled => f.write_str("Disabled"),
            HookTarget::Http(url) => f.debug_tuple("Http").field(url).finish(),
            HookTarget::Program(path) => f.debug_tuple("Program").field(path).finish(),
            HookTarget::Nats(servers) => f.debug_tuple("Nats").field(servers).finish(),
        }
    }
}

/// An HTTP(S) hook URL: the configured text and its parsed form. `Display` and `Debug` redact the
/// password.
#[derive(Clone, PartialEq, Eq)]
pub struct HookUrl {
    raw: String,
    url: url::Url,
}

impl HookUrl {
    /// The text exactly as configured (contains the password, if any: never log it).
    pub fn as_configured(&self) -> &str {
        &self.raw
    }

    /// The parsed URL (contains the password, if any: never log it).
    pub fn url(&self) -> &url::Url {
        &self.url
    }

    /// The configured text with the password replaced by `xxxxx`.
    pub fn redacted(&self) -> String {
        redact_url(&self.raw).into_owned()
    }
}

impl fmt::Display for HookUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact_url(&self.raw))
    }
}

impl fmt::Debug for HookUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", redact_url(&self.raw))
    }
}

fn is_nats_scheme(scheme: &str) -> bool {
    scheme.eq_ignore_ascii_case("nats") || scheme.eq_ignore_ascii_case("tls")
}

/// A list of NATS server URLs (`nats://host:port` or `tls://host:port`, comma-separated, port
/// 4222 by default). User and password in a URL are secrets: `Display` and `Debug` redact them.
/// Any `tls://` server makes TLS required for the whole connection.
#[derive(Clone, PartialEq, Eq)]
pub struct NatsServers {
    raw: String,
    urls: Vec<url::Url>,
}

impl NatsServers {
    /// Parses a comma-separated list of `nats://`/`tls://` URLs; errors name `key` and show the
    /// value with passwords redacted.
    ///
    /// ```
    /// use hook_config::NatsServers;
    ///
    /// let servers = NatsServers::parse_for_key("--from", "tls://n1:4443, tls://n2:4443").unwrap();
    /// assert!(servers.requires_tls());
    /// let err = NatsServers::parse_for_key("--from", "nats://n1/path").unwrap_err();
    /// assert_eq!(err.to_string(), "--from: \"nats://n1/path\": a NATS server URL has no path, query or fragment");
    /// ```
    pub fn parse_for_key(key: &str, value: &str) -> Result<NatsServers, ConfigError> {
        let shown = redact_url(value);
        let reject = |why: String| ConfigError::invalid(key, format!("{shown:?}: {why}"));
        if value.bytes().any(|b| b < 0x20 || b == 0x7f) {
            return Err(reject("contains a control character".into()));
        }
        let mut urls = Vec::new();
        for item in value.split(',') {
            let item = item.trim();
            if item.is_empty() {
                return Err(reject("an empty server in the list".into()));
            }
            let scheme = item.split_once("://").map_or("", |(s, _)| s);
            if !is_nats_scheme(scheme) {
                return Err(reject(format!(
                    "{:?} is not a nats:// or tls:// URL",
                    redact_url(item)
                )));
            }
            let url = url::Url::parse(item)
                .map_err(|e| reject(format!("{:?} is not a valid URL: {e}", redact_url(item))))?;
            if url.host_str().is_none_or(str::is_empty) {
                return Err(reject(format!("{:?} has no host", redact_url(item))));
            }
            if !matches!(url.path(), "" | "/") || url.query().is_some() || url.fragment().is_some()
            {
                return Err(reject(
                    "a NATS server URL has no path, query or fragment".into(),
                ));
            }
            urls.push(url);
        }
        Ok(NatsServers {
            raw: value.to_owned(),
            urls,
        })
    }

    /// The servers, parsed (they contain the passwords, if any: never log them).
    pub fn urls(&self) -> &[url::Url] {
        &self.urls
    }

    /// Whether any server is a `tls://` URL (TLS is then required).
    pub fn requires_tls(&self) -> bool {
        self.urls
            .iter()
            .any(|u| u.scheme().eq_ignore_ascii_case("tls"))
    }

    /// The text exactly as configured (contains the passwords, if any: never log it).
    pub fn as_configured(&self) -> &str {
        &self.raw
    }
}

impl fmt::Display for NatsServers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact_url(&self.raw))
    }
}

impl fmt::Debug for NatsServers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", redact_url(&self.raw))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn d1_accepts() {
        for ok in [
            "http://h/x",
            "https://h:8443/x?a=1",
            "HTTP://host/x",
            "Https://h",
            "http://u:p@h/",
        ] {
            assert!(
                matches!(HookTarget::parse(ok), Ok(HookTarget::Http(_))),
                "{ok}"
            );
        }
        for ok in ["/bin/true", "/usr/local/bin/http_hook.sh"] {
            assert!(
                matches!(HookTarget::parse(ok), Ok(HookTarget::Program(_))),
                "{ok}"
            );
        }
        assert_eq!(HookTarget::parse("").unwrap(), HookTarget::Disabled);
    }

    #[test]
    fn d1_rejects_naming_key_and_value() {
        for bad in [
            "http_hook.sh",
            "httpd/notify",
            "httpfoo",
            "http:relative",
            "http:/h/x",
            "ftp://h/x",
            "nats://",
            "nats://h1,",
            "nats://h1,http://h2",
            "nats://h1/subject",
            " http://x",
            "http://x ",
            "relative/path",
            "http://bar\u{7f}.com/",
            "http://[::1/",
            "http://h:port/",
            "http://",
        ] {
            let err = HookTarget::parse(bad).unwrap_err();
            let text = err.to_string();
            assert_eq!(err.key(), HOOK_KEY);
            assert!(
                text.starts_with(&format!("{HOOK_KEY}: {bad:?}")),
                "{bad:?}: {text}"
            );
        }
    }

    #[test]
    fn nats_targets() {
        for ok in [
            "nats://127.0.0.1:4222",
            "NATS://h",
            "tls://h:4443",
            "nats://u:p@h1, nats://h2:1",
        ] {
            assert!(
                matches!(HookTarget::parse(ok), Ok(HookTarget::Nats(_))),
                "{ok}"
            );
        }
        let HookTarget::Nats(s) = HookTarget::parse("nats://a:s3cret@h1,tls://b:0ther@h2").unwrap()
        else {
            unreachable!()
        };
        assert!(s.requires_tls());
        let shown = format!("{s} {s:?}");
        assert!(
            !shown.contains("s3cret") && !shown.contains("0ther"),
            "{shown}"
        );
        let err = HookTarget::parse("nats://a:s3cret@h1,nats://b:0ther@").unwrap_err();
        assert!(!err.to_string().contains("0ther"), "{err}");
    }

    #[test]
    fn password_is_redacted_in_errors_and_debug() {
        let err = HookTarget::parse("http://u:s3cret@h:port/").unwrap_err();
        assert!(!err.to_string().contains("s3cret"), "{err}");
        // A password holding a delimiter makes the URL unparsable: still redacted.
        for bad in ["http://u:s3#cret@h/hook", "http://u:s3/cret@h/hook"] {
            let err = HookTarget::parse(bad).unwrap_err();
            assert!(!err.to_string().contains("cret"), "{err}");
        }
        let ok = HookTarget::parse("http://u:s3cret@h/").unwrap();
        assert!(!format!("{ok:?} {ok}").contains("s3cret"));
    }
}
