//! Entry points for the fuzz targets in `fuzz/` (feature `fuzzing`, see `docs/fuzzing.md`).
//!
//! **Not part of the API**: hidden from the documentation, no stability promise, never enable
//! the feature in a server. The query codec ([`query`](crate::query)) and the `Retry-After`
//! parser ([`retry`](crate::retry)) are public already; this module adds the private Go URL view
//! the request target and header prefixes come from.

use crate::gourl::GoUrl;

/// What Go's `url.Parse` rules make of a hook URL (the private `GoUrl`, field for field).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GoUrlView {
    /// `scheme://[userinfo@]host` + escaped path: Go's `String()` up to the `?`.
    pub string_base: String,
    /// `#fragment` as Go's `String()` writes it, or empty.
    pub fragment_suffix: String,
    /// Go's `EscapedPath()`, `/` when empty: the request target's path.
    pub request_path: String,
    /// The raw query (after `?`, before `#`).
    pub raw_query: String,
    /// The decoded user name, when the URL has user-info.
    pub username: Option<Vec<u8>>,
    /// The decoded password, when the user-info has a `:`.
    pub password: Option<Vec<u8>>,
    /// The `Authorization` value derived from the user-info, when there is one.
    pub basic_authorization: Option<Vec<u8>>,
}

/// Parses `raw` as the HTTP hook parses its URL; the error text holds no part of the URL.
pub fn go_url(raw: &str) -> Result<GoUrlView, String> {
    let url = GoUrl::parse(raw)?;
    Ok(GoUrlView {
        basic_authorization: url.user.as_ref().map(|u| u.basic_authorization()),
        username: url.user.as_ref().map(|u| u.username.clone()),
        password: url.user.as_ref().and_then(|u| u.password.clone()),
        string_base: url.string_base,
        fragment_suffix: url.fragment_suffix,
        request_path: url.request_path,
        raw_query: url.raw_query,
    })
}

/// Standard base64 with padding, as the `Authorization` header is written.
pub fn base64(input: &[u8]) -> String {
    crate::gourl::base64(input)
}
