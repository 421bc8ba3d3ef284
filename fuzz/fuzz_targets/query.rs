//! Go's query codec (`hook_http::query`): `QueryEscape`/`QueryUnescape` on any bytes, and
//! `ParseQuery`/`Values.Encode` on any text.
//!
//! Properties: no panic; unescape(escape(b)) == b and the escape uses only Go's unreserved bytes,
//! `+` and upper-case `%XX`; encode is canonical (parse(encode(q)) == q, so encoding again gives
//! the same text); decoding never grows its input and encoding grows it at most five times.
#![no_main]

use hook_http::query::{GoQuery, query_escape, query_unescape};
use libfuzzer_sys::fuzz_target;

fn is_upper_hex(b: u8) -> bool {
    b.is_ascii_digit() || (b'A'..=b'F').contains(&b)
}

fuzz_target!(|data: &[u8]| {
    let escaped = query_escape(data);
    assert!(escaped.len() <= 3 * data.len());
    let bytes = escaped.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                assert!(i + 2 < bytes.len(), "{escaped}");
                assert!(
                    is_upper_hex(bytes[i + 1]) && is_upper_hex(bytes[i + 2]),
                    "{escaped}"
                );
                i += 3;
            }
            b => {
                assert!(
                    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'+'),
                    "{escaped}"
                );
                i += 1;
            }
        }
    }
    assert_eq!(query_unescape(&escaped).expect("an escape unescapes"), data);

    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(plain) = query_unescape(raw) {
        assert!(plain.len() <= raw.len());
    }
    let query = GoQuery::parse(raw);
    let decoded: usize = query
        .iter()
        .map(|(k, vs)| vs.iter().map(|v| k.len() + v.len()).sum::<usize>())
        .sum();
    assert!(
        decoded <= raw.len(),
        "{decoded} decoded bytes from {}",
        raw.len()
    );
    let encoded = query.encode();
    assert!(
        encoded.len() <= 5 * raw.len(),
        "{} bytes from {}",
        encoded.len(),
        raw.len()
    );
    let again = GoQuery::parse(&encoded);
    assert_eq!(again, query, "{raw:?} -> {encoded:?}");
    assert_eq!(again.encode(), encoded);
});
