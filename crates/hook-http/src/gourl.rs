//! The hook URL as Go's `net/url` sees it: what SFTPGo writes on the wire and what its header
//! prefixes are compared with (spec 4.1 step 5, 4.3).
//!
//! `hook-config` validates the hook URL with the WHATWG parser of the `url` crate, which
//! normalises differently from Go (path escaping, default ports, user-info escaping). The request
//! target and the string header prefixes are matched against must be Go's, so the raw configured
//! text is parsed again here with Go's rules.

use crate::query::percent_decode;

const UPPER_HEX: &[u8; 16] = b"0123456789ABCDEF";

/// Which URL component an escape applies to (Go's `encoding` modes we need).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Path,
    UserPassword,
    Fragment,
    Host,
}

/// Go's `shouldEscape`.
fn should_escape(c: u8, mode: Mode) -> bool {
    if c.is_ascii_alphanumeric() {
        return false;
    }
    if mode == Mode::Host
        && matches!(
            c,
            b'!' | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'['
                | b']'
                | b'<'
                | b'>'
                | b'"'
        )
    {
        return false;
    }
    match c {
        b'-' | b'_' | b'.' | b'~' => return false,
        b'$' | b'&' | b'+' | b',' | b'/' | b':' | b';' | b'=' | b'?' | b'@' => {
            return match mode {
                Mode::Path => c == b'?',
                Mode::UserPassword => matches!(c, b'@' | b'/' | b'?' | b':'),
                Mode::Fragment => false,
                // Unreachable for these bytes (handled above), but Go falls through to "escape".
                Mode::Host => true,
            };
        }
        _ => {}
    }
    if mode == Mode::Fragment && matches!(c, b'!' | b'(' | b')' | b'*') {
        return false;
    }
    true
}

/// Go's `escape` for the non-query modes.
fn escape(bytes: &[u8], mode: Mode) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if should_escape(b, mode) {
            out.push('%');
            out.push(UPPER_HEX[usize::from(b >> 4)] as char);
            out.push(UPPER_HEX[usize::from(b & 0x0f)] as char);
        } else {
            out.push(b as char);
        }
    }
    out
}

/// Go's `validEncoded`.
fn valid_encoded(s: &str, mode: Mode) -> bool {
    s.bytes().all(|b| {
        matches!(
            b,
            b'!' | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'@'
                | b'['
                | b']'
                | b'%'
        ) || !should_escape(b, mode)
    })
}

/// Go's `validUserinfo`.
fn valid_userinfo(s: &str) -> bool {
    s.bytes().all(|b| {
        b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.'
                    | b'_'
                    | b':'
                    | b'~'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b';'
                    | b'='
                    | b'%'
                    | b'@'
            )
    })
}

/// Go's `EscapedPath` / `EscapedFragment` for a raw component: the raw text when it is a valid
/// encoding, else the decoded bytes escaped again.
fn go_escaped(raw: &str, mode: Mode) -> Result<(String, Vec<u8>), String> {
    let decoded = percent_decode(raw, false).map_err(|e| e.to_string())?;
    if valid_encoded(raw, mode) {
        return Ok((raw.to_owned(), decoded));
    }
    Ok((escape(&decoded, mode), decoded))
}

/// The user-info of a URL, decoded.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct UserInfo {
    pub(crate) username: Vec<u8>,
    pub(crate) password: Option<Vec<u8>>,
}

impl UserInfo {
    /// Go's `Userinfo.String()`.
    fn go_string(&self) -> String {
        let mut s = escape(&self.username, Mode::UserPassword);
        if let Some(password) = &self.password {
            s.push(':');
            s.push_str(&escape(password, Mode::UserPassword));
        }
        s
    }

    /// The `Authorization` value Go's client derives from URL user-info.
    pub(crate) fn basic_authorization(&self) -> Vec<u8> {
        let mut plain = self.username.clone();
        plain.push(b':');
        plain.extend_from_slice(self.password.as_deref().unwrap_or_default());
        let mut value = b"Basic ".to_vec();
        value.extend_from_slice(base64(&plain).as_bytes());
        value
    }
}

/// Standard base64 with padding (RFC 4648), as Go's `SetBasicAuth` writes it.
pub(crate) fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 0x3f) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The parts of a hook URL, parsed with Go's `url.Parse` rules.
#[derive(Clone)]
pub(crate) struct GoUrl {
    /// `scheme://[userinfo@]host` + escaped path: Go's `String()` up to the `?`.
    pub(crate) string_base: String,
    /// `#fragment` as Go's `String()` writes it, or empty.
    pub(crate) fragment_suffix: String,
    /// Go's `EscapedPath()`, `/` when empty: the request target's path.
    pub(crate) request_path: String,
    /// The raw query (after `?`, before `#`).
    pub(crate) raw_query: String,
    /// The decoded user-info, when the URL has any (`@` in the authority).
    pub(crate) user: Option<UserInfo>,
}

impl GoUrl {
    /// Parses an absolute `http(s)://` URL; the error text holds no part of the URL.
    pub(crate) fn parse(raw: &str) -> Result<GoUrl, String> {
        let (before_fragment, fragment) = raw.split_once('#').unwrap_or((raw, ""));
        let (scheme, rest) = before_fragment
            .split_once(':')
            .ok_or_else(|| "missing protocol scheme".to_owned())?;
        let scheme = scheme.to_ascii_lowercase();
        let (rest, raw_query) = if rest.ends_with('?') && rest.matches('?').count() == 1 {
            (&rest[..rest.len() - 1], "")
        } else {
            rest.split_once('?').unwrap_or((rest, ""))
        };
        let rest = rest
            .strip_prefix("//")
            .ok_or_else(|| "expected scheme://host".to_owned())?;
        let (authority, raw_path) = rest.find('/').map_or((rest, ""), |i| rest.split_at(i));
        let (userinfo, host) = match authority.rfind('@') {
            Some(at) => (Some(&authority[..at]), &authority[at + 1..]),
            None => (None, authority),
        };
        let user = match userinfo {
            None => None,
            Some(info) => {
                if !valid_userinfo(info) {
                    return Err("invalid character in the user-info".to_owned());
                }
                let decode = |s: &str| {
                    percent_decode(s, false)
                        .map_err(|_| "invalid URL escape in the user-info".to_owned())
                };
                Some(match info.split_once(':') {
                    Some((u, p)) => UserInfo {
                        username: decode(u)?,
                        password: Some(decode(p)?),
                    },
                    None => UserInfo {
                        username: decode(info)?,
                        password: None,
                    },
                })
            }
        };
        let host = percent_decode(host, false)
            .map_err(|e| format!("host: {e}"))
            .map(|h| escape(&h, Mode::Host))?;
        let (escaped_path, _) =
            go_escaped(raw_path, Mode::Path).map_err(|e| format!("path: {e}"))?;
        let fragment_suffix = if fragment.is_empty() {
            String::new()
        } else {
            let (escaped, decoded) =
                go_escaped(fragment, Mode::Fragment).map_err(|e| format!("fragment: {e}"))?;
            if decoded.is_empty() {
                String::new()
            } else {
                format!("#{escaped}")
            }
        };
        let mut string_base = format!("{scheme}://");
        if let Some(user) = &user {
            string_base.push_str(&user.go_string());
            string_base.push('@');
        }
        string_base.push_str(&host);
        string_base.push_str(&escaped_path);
        let request_path = if escaped_path.is_empty() {
            "/".to_owned()
        } else {
            escaped_path
        };
        Ok(GoUrl {
            string_base,
            fragment_suffix,
            request_path,
            raw_query: raw_query.to_owned(),
            user,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
            ("u:p", "dTpw"),
        ];
        for (plain, want) in cases {
            assert_eq!(base64(plain.as_bytes()), want, "{plain:?}");
        }
        assert_eq!(base64(&[0xfb, 0xff]), "+/8=");
    }

    // Expected values produced by Go 1.19's net/url (u.String(), u.RequestURI()).
    #[test]
    fn go_string_and_request_path() {
        let cases = [
            ("http://h/p", "http://h/p", "/p", ""),
            ("HTTP://H.example:80", "http://H.example:80", "/", ""),
            ("http://u:p@h/p#frag", "http://u:p@h/p", "/p", "#frag"),
            ("http://h/a b", "http://h/a%20b", "/a%20b", ""),
            ("http://h/a%2Fb", "http://h/a%2Fb", "/a%2Fb", ""),
            (
                "http://h/a%2Fb c!",
                "http://h/a/b%20c%21",
                "/a/b%20c%21",
                "",
            ),
            (
                "http://h/%41!'()*[]",
                "http://h/%41!'()*[]",
                "/%41!'()*[]",
                "",
            ),
            ("http://h/ü", "http://h/%C3%BC", "/%C3%BC", ""),
            ("http://h/../x/./y", "http://h/../x/./y", "/../x/./y", ""),
            ("http://u%40x:p%21@h/", "http://u%40x:p%21@h/", "/", ""),
            ("http://u:p!@h/", "http://u:p%21@h/", "/", ""),
            ("http://u@h/", "http://u@h/", "/", ""),
            ("http://h/p#a b", "http://h/p", "/p", "#a%20b"),
            ("http://h/p#", "http://h/p", "/p", ""),
            ("http://[::1]:8080/p?x=1", "http://[::1]:8080/p", "/p", ""),
        ];
        for (raw, base, path, frag) in cases {
            let u = GoUrl::parse(raw).unwrap();
            assert_eq!(u.string_base, base, "{raw}");
            assert_eq!(u.request_path, path, "{raw}");
            assert_eq!(u.fragment_suffix, frag, "{raw}");
        }
        assert_eq!(
            GoUrl::parse("http://h/p?x=1&y#f").unwrap().raw_query,
            "x=1&y"
        );
    }

    #[test]
    fn user_info_and_basic_auth() {
        let u = GoUrl::parse("http://u:p@h/p").unwrap();
        assert_eq!(u.user.unwrap().basic_authorization(), b"Basic dTpw");
        let u = GoUrl::parse("http://user%3A1:p%40ss@h/").unwrap();
        let user = u.user.unwrap();
        assert_eq!(user.username, b"user:1");
        assert_eq!(user.password.as_deref(), Some(&b"p@ss"[..]));
        let u = GoUrl::parse("http://only@h/").unwrap();
        assert_eq!(u.user.unwrap().basic_authorization(), b"Basic b25seTo=");
        assert!(GoUrl::parse("http://h/").unwrap().user.is_none());
    }

    #[test]
    fn errors_hold_no_url() {
        for (raw, needle) in [
            ("http://u:s3cret@h/a%zz", "path"),
            ("http://u:s3cret%@h/", "user-info"),
            ("http://u:s3cret@h/#%zz", "fragment"),
        ] {
            let err = GoUrl::parse(raw).err().unwrap();
            assert!(err.contains(needle), "{raw}: {err}");
            assert!(!err.contains("s3cret"), "{err}");
        }
    }
}
