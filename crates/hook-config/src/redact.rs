//! Keeping secrets out of logs, errors and `Debug` output (spec Part A, D11).

use std::borrow::Cow;

/// What a secret is replaced with.
pub const REDACTED: &str = "xxxxx";

/// `url` with the password of its user-info replaced by `xxxxx`.
///
/// Works on any string, parsable or not: it looks for `scheme://user:password@` before the first
/// `/`, `?` or `#` of the authority, so an unparsable URL does not leak its password either.
///
/// ```
/// use hook_config::redact_url;
///
/// assert_eq!(redact_url("https://u:s3cret@h/p?x=1"), "https://u:xxxxx@h/p?x=1");
/// assert_eq!(redact_url("http://h/p"), "http://h/p");
/// assert_eq!(redact_url("/usr/local/bin/hook"), "/usr/local/bin/hook");
/// assert_eq!(redact_url("http://u:pw@bad host:port/"), "http://u:xxxxx@bad host:port/");
/// ```
pub fn redact_url(url: &str) -> Cow<'_, str> {
    let Some(scheme_end) = url.find("://") else {
        return Cow::Borrowed(url);
    };
    let authority_start = scheme_end + 3;
    let rest = &url[authority_start..];
    let authority_len = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_len];
    let Some(at) = authority.rfind('@') else {
        return Cow::Borrowed(url);
    };
    let userinfo = &authority[..at];
    let Some(colon) = userinfo.find(':') else {
        return Cow::Borrowed(url);
    };
    let password_start = authority_start + colon + 1;
    let password_end = authority_start + at;
    let mut out = String::with_capacity(url.len());
    out.push_str(&url[..password_start]);
    out.push_str(REDACTED);
    out.push_str(&url[password_end..]);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_only_the_password() {
        let cases = [
            ("http://u:p@h/p#frag", "http://u:xxxxx@h/p#frag"),
            ("http://u@h/p", "http://u@h/p"),
            ("http://:p@h", "http://:xxxxx@h"),
            ("http://u:p:q@h", "http://u:xxxxx@h"),
            ("http://u:p@x@h/", "http://u:xxxxx@h/"),
            ("http://h/p?a=b@c:d", "http://h/p?a=b@c:d"),
            ("", ""),
        ];
        for (input, want) in cases {
            assert_eq!(redact_url(input), want, "{input:?}");
        }
    }
}
