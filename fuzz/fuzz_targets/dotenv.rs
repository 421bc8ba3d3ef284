//! The `env.d` dotenv parser, with a small environment for `$VAR` expansion.
//!
//! Properties: no panic, no hang; every name defined is a valid variable name; an error names a
//! line of the input; the values a file defines total at most `MAX_EXPANDED_SIZE` (expansion can
//! repeat a value: without a bound, each line can double the one before).
#![no_main]

use std::collections::BTreeMap;

use hook_config::fuzzing::{MAX_EXPANDED_SIZE, parse_dotenv};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let env: BTreeMap<String, String> = [("HOME", "/home/u"), ("BASE", "4"), ("EMPTY", "")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    match parse_dotenv(text, &env) {
        Ok(vars) => {
            for name in vars.keys() {
                assert!(!name.is_empty());
                assert!(
                    name.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')),
                    "{name:?}"
                );
            }
            let total: usize = vars.values().map(String::len).sum();
            assert!(total <= MAX_EXPANDED_SIZE, "{total} bytes of values");
        }
        Err((line, why)) => {
            assert!(
                line >= 1 && line <= text.lines().count().max(1),
                "line {line}"
            );
            assert!(!why.is_empty());
        }
    }
});
