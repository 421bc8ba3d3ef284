//! The `Retry-After` parser and the retry decision (`hook_http::retry`). The input's first 16
//! bytes are the clock and the policy's waits; the rest is the header value.
//!
//! Properties: no panic; an integer value is its seconds (negative: ignored), as Go's
//! `strconv.ParseInt`; a date's wait shrinks second for second as the clock advances; the wait
//! decided after a 429 or 503 is never more than the policy's caps allow.
#![no_main]

use std::time::{Duration, SystemTime};

use hook_http::retry::{Attempt, RetryPolicy, parse_retry_after};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 16 {
        return;
    }
    let (head, value) = data.split_at(16);
    let Ok(value) = std::str::from_utf8(value) else {
        return;
    };
    let word = |i: usize| u32::from_le_bytes(head[i..i + 4].try_into().unwrap());
    // Any second from 1970 to about 2106.
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(u64::from(word(0)));
    let got = parse_retry_after(value, now);
    if let Ok(n) = value.parse::<i64>() {
        assert_eq!(
            got,
            u64::try_from(n).ok().map(Duration::from_secs),
            "{value:?}"
        );
    } else if let Some(wait) = got {
        let later = parse_retry_after(value, now + Duration::from_secs(1));
        assert_eq!(
            later,
            Some(wait.saturating_sub(Duration::from_secs(1))),
            "{value:?}"
        );
    }

    let wait_min = Duration::from_millis(u64::from(word(4)));
    let wait_max = Duration::from_millis(u64::from(word(8)));
    let cap = Duration::from_millis(u64::from(word(12)));
    let policy = RetryPolicy::new(3, wait_min, wait_max).with_retry_after_max(cap);
    for status in [429, 503, 500] {
        let attempt = Attempt::Response {
            status,
            retry_after: Some(value),
        };
        for n in 0..4 {
            let decided = policy.decide(n, &attempt, now);
            assert_eq!(decided.is_none(), n == 3);
            if let Some(wait) = decided {
                assert!(wait <= cap.max(wait_max), "{wait:?}");
                if got.is_none() || status == 500 {
                    assert_eq!(wait, policy.backoff(n));
                }
            }
        }
    }
});
