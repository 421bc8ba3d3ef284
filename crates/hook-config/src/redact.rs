//! Keeping secrets out of logs, errors and `Debug` output (spec Part A, D11).

use std::borrow::Cow;

/// What a secret is replaced with.
pub const REDACTED: &str = "xxxxx";

/// `url` with the password of its user-info replaced by `xxxxx`.
///
/// Works on any string, parsable or not: it looks for `scheme://user:password@` before the first
/// `/`, `?` or `#` of the authority, so an unparsable URL does not leak its password either.
/// When a URL does not parse and an `@` follows that delimiter (a password holding `#`, `/` or
/// `?`, as in `http://u:ab#cd@h/`), everything from the first `:` after `scheme://` to the last
/// `@` is taken for the password and redacted.
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
    // A NATS target lists servers separated by commas, each with its own user-info.
    if is_nats_list(url) {
        let parts: Vec<Cow<'_, str>> = url.split(',').map(redact_one).collect();
        if parts.iter().all(|p| matches!(p, Cow::Borrowed(_))) {
            return Cow::Borrowed(url);
        }
        return Cow::Owned(parts.join(","));
    }
    redact_one(url)
}

/// Whether `value` is a comma-separated list of `nats://`/`tls://` server URLs.
fn is_nats_list(value: &str) -> bool {
    let scheme = value.split_once("://").map_or("", |(s, _)| s);
    value.contains(',')
        && (scheme.eq_ignore_ascii_case("nats") || scheme.eq_ignore_ascii_case("tls"))
}

fn redact_one(url: &str) -> Cow<'_, str> {
    let Some(scheme_end) = url.find("://") else {
        return Cow::Borrowed(url);
    };
    let authority_start = scheme_end + 3;
    let rest = &url[authority_start..];
    let authority_len = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_len];
    let (userinfo, at) = match authority.rfind('@') {
        Some(at) => (&authority[..at], at),
        // An `@` past the delimiter is a path, query or fragment character in a URL that
        // parses; in one that does not, it most likely ends a password holding the delimiter.
        None => match rest.rfind('@') {
            Some(at) if url::Url::parse(url).is_err() => (&rest[..at], at),
            _ => return Cow::Borrowed(url),
        },
    };
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
            ("http://h/p#a:b@c", "http://h/p#a:b@c"),
            ("", ""),
            // Unparsable because the password holds a delimiter: still redacted.
            ("http://u:ab#cd@h/hook", "http://u:xxxxx@h/hook"),
            ("http://u:pa/ss@h/hook", "http://u:xxxxx@h/hook"),
            ("http://u:p?s@h:bad/", "http://u:xxxxx@h:bad/"),
        ];
        for (input, want) in cases {
            assert_eq!(redact_url(input), want, "{input:?}");
        }
    }

    #[test]
    fn redacts_every_server_of_a_nats_list() {
        assert_eq!(
            redact_url("nats://a:p1@h1:4222,nats://b:p2@h2:4222, tls://h3"),
            "nats://a:xxxxx@h1:4222,nats://b:xxxxx@h2:4222, tls://h3"
        );
        assert_eq!(redact_url("nats://h1,nats://h2"), "nats://h1,nats://h2");
        assert_eq!(redact_url("TLS://u:pw@h"), "TLS://u:xxxxx@h");
    }
}
