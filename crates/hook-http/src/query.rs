//! Go's `net/url` query rules, byte for byte: how SFTPGo's HTTP hook reads the hook URL's
//! existing query and writes the final one (spec 4.1).
//!
//! * [`GoQuery::parse`] is Go's `url.ParseQuery` (Go 1.17+): pairs are split on `&`; a pair
//!   containing `;` is dropped; a pair whose key or value holds a bad `%` escape is dropped; an
//!   empty pair is skipped; `flag` becomes `flag` with an empty value; `+` decodes to a space.
//! * [`GoQuery::encode`] is Go's `Values.Encode`: keys sorted by bytes (upper case before lower
//!   case), each key's values in insertion order, every key and value escaped by
//!   [`query_escape`], pairs `key=value` joined with `&`.
//! * [`query_escape`] is Go's `url.QueryEscape`: `A-Z a-z 0-9 - _ . ~` kept, space as `+`, every
//!   other byte as `%XX` with upper-case hex.
//!
//! Keys and values are bytes, not strings, because Go's are: `%FF` decodes to the byte `0xFF`
//! and is written back as `%FF`.
//!
//! ```
//! use hook_http::query::GoQuery;
//!
//! let mut q = GoQuery::parse("ip=9.9.9.9&flag&x=1;y=2&bad=%zz&sp=a+b&e=%41");
//! q.add("ip", "10.0.0.1");
//! q.add("username", "john doe+x&y=z");
//! assert_eq!(q.encode(), "e=A&flag=&ip=9.9.9.9&ip=10.0.0.1&sp=a+b&username=john+doe%2Bx%26y%3Dz");
//! ```

use std::collections::BTreeMap;
use std::fmt;

const UPPER_HEX: &[u8; 16] = b"0123456789ABCDEF";

/// Whether Go's `QueryEscape` keeps byte `b` as it is.
const fn is_query_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~')
}

/// Go's `url.QueryEscape`: `A-Z a-z 0-9 - _ . ~` unchanged, space as `+`, every other byte as
/// `%XX` with upper-case hex.
///
/// ```
/// use hook_http::query::query_escape;
///
/// assert_eq!(query_escape("jürgen/ü~._- +"), "j%C3%BCrgen%2F%C3%BC~._-+%2B");
/// ```
pub fn query_escape(input: impl AsRef<[u8]>) -> String {
    let input = input.as_ref();
    let mut out = String::with_capacity(input.len() + input.len() / 2);
    query_escape_into(&mut out, input);
    out
}

/// Appends the [`query_escape`] form of `input` to `out`.
pub(crate) fn query_escape_into(out: &mut String, input: &[u8]) {
    let mut start = 0;
    for (i, &b) in input.iter().enumerate() {
        if is_query_unreserved(b) {
            continue;
        }
        // Everything before `i` is ASCII we keep.
        out.push_str(ascii(&input[start..i]));
        if b == b' ' {
            out.push('+');
        } else {
            out.push('%');
            out.push(UPPER_HEX[usize::from(b >> 4)] as char);
            out.push(UPPER_HEX[usize::from(b & 0x0f)] as char);
        }
        start = i + 1;
    }
    out.push_str(ascii(&input[start..]));
}

fn ascii(bytes: &[u8]) -> &str {
    // Only ever called on runs of unreserved ASCII bytes.
    std::str::from_utf8(bytes).unwrap_or_default()
}

/// A `%` escape that is not two hex digits; Go's `url.EscapeError`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EscapeError {
    bad: String,
}

impl EscapeError {
    /// The offending escape, at most three characters (`%zz`, `%4`, `%`).
    pub fn escape(&self) -> &str {
        &self.bad
    }
}

impl fmt::Display for EscapeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid URL escape {:?}", self.bad)
    }
}

impl std::error::Error for EscapeError {}

const fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decodes `%XX` escapes; `plus_is_space` turns `+` into a space (query components only).
pub(crate) fn percent_decode(input: &str, plus_is_space: bool) -> Result<Vec<u8>, EscapeError> {
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hi = bytes.get(i + 1).copied().and_then(hex_value);
                let lo = bytes.get(i + 2).copied().and_then(hex_value);
                match (hi, lo) {
                    (Some(hi), Some(lo)) => out.push(hi << 4 | lo),
                    _ => {
                        let end = (i + 3).min(bytes.len());
                        let bad = String::from_utf8_lossy(&bytes[i..end]).into_owned();
                        return Err(EscapeError { bad });
                    }
                }
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    Ok(out)
}

/// Go's `url.QueryUnescape`: `%XX` escapes decoded, `+` as a space.
///
/// ```
/// use hook_http::query::query_unescape;
///
/// assert_eq!(query_unescape("a+b%2B%41").unwrap(), b"a b+A");
/// assert_eq!(query_unescape("%zz").unwrap_err().escape(), "%zz");
/// ```
pub fn query_unescape(input: &str) -> Result<Vec<u8>, EscapeError> {
    percent_decode(input, true)
}

/// A query as Go's `url.Values` holds it: keys kept sorted by bytes, each with its values in the
/// order they were added.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct GoQuery {
    pairs: BTreeMap<Vec<u8>, Vec<Vec<u8>>>,
}

impl GoQuery {
    /// An empty query.
    pub fn new() -> Self {
        GoQuery::default()
    }

    /// Go's `url.ParseQuery` of a raw query (the part after `?`, before `#`), keeping what Go
    /// keeps and silently dropping what Go drops.
    pub fn parse(raw: &str) -> Self {
        let mut query = GoQuery::new();
        for pair in raw.split('&') {
            if pair.contains(';') || pair.is_empty() {
                continue;
            }
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let (Ok(key), Ok(value)) = (query_unescape(key), query_unescape(value)) else {
                continue;
            };
            query.pairs.entry(key).or_default().push(value);
        }
        query
    }

    /// Go's `Values.Add`: appends `value` to the values of `key`.
    pub fn add(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) {
        let key = key.as_ref();
        let value = value.as_ref().to_vec();
        match self.pairs.get_mut(key) {
            Some(values) => values.push(value),
            None => {
                self.pairs.insert(key.to_vec(), vec![value]);
            }
        }
    }

    /// The values of `key`, in insertion order (empty when absent).
    pub fn get_all(&self, key: impl AsRef<[u8]>) -> &[Vec<u8>] {
        self.pairs.get(key.as_ref()).map_or(&[], Vec::as_slice)
    }

    /// Every key with its values, keys in byte order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[Vec<u8>])> + '_ {
        self.pairs.iter().map(|(k, v)| (k.as_slice(), v.as_slice()))
    }

    /// How many distinct keys there are.
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// Whether there is no key.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// Go's `Values.Encode`: sorted keys, values in insertion order, [`query_escape`]d,
    /// `key=value` pairs joined with `&`.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        for (key, values) in &self.pairs {
            for value in values {
                if !out.is_empty() {
                    out.push('&');
                }
                query_escape_into(&mut out, key);
                out.push('=');
                query_escape_into(&mut out, value);
            }
        }
        out
    }
}

impl fmt::Debug for GoQuery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.pairs.iter().map(|(k, vs)| {
                let vs: Vec<_> = vs.iter().map(|v| String::from_utf8_lossy(v)).collect();
                (String::from_utf8_lossy(k), vs)
            }))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_table_matches_go() {
        // Every byte: what Go's QueryEscape writes.
        for b in 0u8..=255 {
            let got = query_escape([b]);
            let want = if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else if b == b' ' {
                "+".to_owned()
            } else {
                format!("%{b:02X}")
            };
            assert_eq!(got, want, "byte {b:#04x}");
        }
    }

    #[test]
    fn parse_drops_like_go() {
        let q = GoQuery::parse("a=1&&b&c=%zz&d%4=1&e=1;f=2&=empty-key&g=%41%2b+&h=1=2");
        let got: Vec<(String, Vec<String>)> = q
            .iter()
            .map(|(k, vs)| {
                let k = String::from_utf8(k.to_vec()).unwrap();
                (
                    k,
                    vs.iter()
                        .map(|v| String::from_utf8(v.clone()).unwrap())
                        .collect(),
                )
            })
            .collect();
        let want: Vec<(String, Vec<String>)> = vec![
            (String::new(), vec!["empty-key".into()]),
            ("a".into(), vec!["1".into()]),
            ("b".into(), vec![String::new()]),
            ("g".into(), vec!["A+ ".into()]),
            ("h".into(), vec!["1=2".into()]),
        ];
        assert_eq!(got, want);
        assert_eq!(q.encode(), "=empty-key&a=1&b=&g=A%2B+&h=1%3D2");
    }

    #[test]
    fn non_utf8_bytes_round_trip() {
        let q = GoQuery::parse("k=%FF%fe");
        assert_eq!(q.get_all("k"), [vec![0xff, 0xfe]]);
        assert_eq!(q.encode(), "k=%FF%FE");
    }

    #[test]
    fn escape_error_is_at_most_three_chars() {
        assert_eq!(query_unescape("ab%").unwrap_err().escape(), "%");
        assert_eq!(query_unescape("ab%4").unwrap_err().escape(), "%4");
        assert_eq!(query_unescape("%4g00").unwrap_err().escape(), "%4g");
        assert_eq!(
            query_unescape("%4g00").unwrap_err().to_string(),
            "invalid URL escape \"%4g\""
        );
    }
}
