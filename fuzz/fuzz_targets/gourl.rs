//! The hook URL as Go's `net/url` sees it (the private `GoUrl`, through `hook_http::fuzzing`).
//!
//! Any text goes to the parser (no panic; an error holds no part of the user-info). For a URL the
//! configuration accepts as an HTTP hook (`HookTarget::parse`, the only URLs the hook parses
//! this way): the request path starts with `/`, the base has no `?` or `#`, the `Authorization`
//! value is the user-info's, and Go's `String()` of the URL (base, `?query`, `#fragment`) parses
//! back to the same URL.
#![no_main]

use hook_config::HookTarget;
use hook_http::fuzzing::{base64, go_url};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    let url = match go_url(raw) {
        Ok(url) => url,
        Err(err) => {
            // The error is one of a few fixed texts, at most quoting the bad escape (`"%zz"`):
            // nothing else of the URL, so never its user-info.
            let (fixed, quoted) = match err.split_once(" \"") {
                Some((fixed, rest)) => (fixed, rest.strip_suffix('"').unwrap_or(rest)),
                None => (err.as_str(), ""),
            };
            assert!(
                matches!(
                    fixed,
                    "missing protocol scheme"
                        | "expected scheme://host"
                        | "invalid character in the user-info"
                        | "invalid URL escape in the user-info"
                        | "host: invalid URL escape"
                        | "path: invalid URL escape"
                        | "fragment: invalid URL escape"
                ),
                "{err:?}"
            );
            assert!(quoted.starts_with('%') || quoted.is_empty(), "{err:?}");
            // Three characters, shown with Rust's escapes (`\\`, `\u{fffd}`: ten at most each).
            assert!(quoted.chars().count() <= 30, "{err:?}");
            return;
        }
    };
    if !matches!(HookTarget::parse(raw), Ok(HookTarget::Http(_))) {
        return;
    }
    assert!(url.request_path.starts_with('/'));
    assert!(
        !url.string_base.contains(['#', '?']),
        "{:?}",
        url.string_base
    );
    assert!(!url.raw_query.contains('#'));
    if let Some(auth) = &url.basic_authorization {
        let mut plain = url.username.clone().unwrap_or_default();
        plain.push(b':');
        plain.extend_from_slice(url.password.as_deref().unwrap_or_default());
        assert_eq!(auth, format!("Basic {}", base64(&plain)).as_bytes());
    }
    let mut string = url.string_base.clone();
    if !url.raw_query.is_empty() {
        string.push('?');
        string.push_str(&url.raw_query);
    }
    string.push_str(&url.fragment_suffix);
    let again = go_url(&string).unwrap_or_else(|e| panic!("{string:?} from {raw:?}: {e}"));
    assert_eq!(again, url, "{string:?} from {raw:?}");
});
