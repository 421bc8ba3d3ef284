//! Keeping secrets out of logs, errors and `Debug` output (spec Part A, D11).

use std::borrow::Cow;

/// What a secret is replaced with.
pub const REDACTED: &str = "xxxxx";

/// `url` with the password of its user-info and every query value replaced by `xxxxx`; query
/// parameter names are kept (`?token=xxxxx&tenant=xxxxx`), and so are empty values and the
/// fragment. See [`redact_query`] for the query rule.
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
/// assert_eq!(redact_url("https://u:s3cret@h/p?x=1"), "https://u:xxxxx@h/p?x=xxxxx");
/// assert_eq!(redact_url("https://h/p?token=t0k&flag&empty="), "https://h/p?token=xxxxx&flag&empty=");
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

/// One URL: its password, then its query values, redacted.
fn redact_one(url: &str) -> Cow<'_, str> {
    match redact_password(url) {
        Cow::Borrowed(url) => redact_query(url),
        Cow::Owned(url) => Cow::Owned(redact_query(&url).into_owned()),
    }
}

/// `url` with every query value replaced by `xxxxx`, names kept: the query is what follows the
/// first `?` after the authority, up to a `#`; its `&`-separated parameters keep their name and
/// `=`, and a non-empty value becomes `xxxxx`. Strings that are not URLs (no `://`) are returned
/// unchanged. A hook URL's query often carries an access token (`?token=...`), and the event's
/// own parameters (`ip`, `username`) are personal data: neither belongs in a log line.
///
/// ```
/// use hook_config::redact_query;
///
/// assert_eq!(redact_query("https://h/p?token=abc&a=b=c#frag"), "https://h/p?token=xxxxx&a=xxxxx#frag");
/// assert_eq!(redact_query("https://u:pw@h/p"), "https://u:pw@h/p");
/// ```
pub fn redact_query(url: &str) -> Cow<'_, str> {
    let Some(scheme_end) = url.find("://") else {
        return Cow::Borrowed(url);
    };
    let authority_start = scheme_end + 3;
    let Some(query_start) = url[authority_start..]
        .find(['?', '#'])
        .map(|i| authority_start + i)
        .filter(|&i| url.as_bytes()[i] == b'?')
        .map(|i| i + 1)
    else {
        return Cow::Borrowed(url);
    };
    let query_end = url[query_start..]
        .find('#')
        .map_or(url.len(), |i| query_start + i);
    let query = &url[query_start..query_end];
    let needs = query
        .split('&')
        .any(|pair| pair.split_once('=').is_some_and(|(_, v)| !v.is_empty()));
    if !needs {
        return Cow::Borrowed(url);
    }
    let mut out = String::with_capacity(url.len());
    out.push_str(&url[..query_start]);
    for (i, pair) in query.split('&').enumerate() {
        if i > 0 {
            out.push('&');
        }
        match pair.split_once('=') {
            Some((name, value)) if !value.is_empty() => {
                out.push_str(name);
                out.push('=');
                out.push_str(REDACTED);
            }
            _ => out.push_str(pair),
        }
    }
    out.push_str(&url[query_end..]);
    Cow::Owned(out)
}

/// `url` with the password of its user-info replaced by `xxxxx` (the rule of [`redact_url`]).
fn redact_password(url: &str) -> Cow<'_, str> {
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
    fn item9_query_values_are_redacted_names_kept() {
        let cases = [
            (
                "https://u:pw@h/hook?token=s3cret&tenant=acme",
                "https://u:xxxxx@h/hook?token=xxxxx&tenant=xxxxx",
            ),
            ("http://h/p?a&b=&c=1", "http://h/p?a&b=&c=xxxxx"),
            ("http://h/p?=v", "http://h/p?=xxxxx"),
            ("http://h/p?k=a%20b+c;d=e", "http://h/p?k=xxxxx"),
            ("http://h/p#frag?x=1", "http://h/p#frag?x=1"),
            ("http://h?x=1", "http://h?x=xxxxx"),
            ("http://h/p?", "http://h/p?"),
            // Unparsable: redacted all the same.
            ("http://h:bad/p?token=abc", "http://h:bad/p?token=xxxxx"),
            ("/usr/local/bin/hook?x=1", "/usr/local/bin/hook?x=1"),
        ];
        for (input, want) in cases {
            assert_eq!(redact_url(input), want, "{input:?}");
        }
    }

    #[test]
    fn redacts_only_the_password() {
        let cases = [
            ("http://u:p@h/p#frag", "http://u:xxxxx@h/p#frag"),
            ("http://u@h/p", "http://u@h/p"),
            ("http://:p@h", "http://:xxxxx@h"),
            ("http://u:p:q@h", "http://u:xxxxx@h"),
            ("http://u:p@x@h/", "http://u:xxxxx@h/"),
            ("http://h/p?a=b@c:d", "http://h/p?a=xxxxx"),
            ("http://h/p#a:b@c", "http://h/p#a:b@c"),
            ("", ""),
            // Unparsable because the password holds a delimiter: still redacted.
            ("http://u:ab#cd@h/hook", "http://u:xxxxx@h/hook"),
            ("http://u:pa/ss@h/hook", "http://u:xxxxx@h/hook"),
            ("http://u:p?s@h:bad/", "http://u:xxxxx@h:bad/"),
            (
                "http://u:p@h/p?tok=1#a=b",
                "http://u:xxxxx@h/p?tok=xxxxx#a=b",
            ),
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
