//! The pure retry policy (spec 4.5 with D8), exhaustively.

use std::time::{Duration, SystemTime};

use hook_http::retry::{
    Attempt, RetryPolicy, TransportFailure, is_retryable_status, is_success_status,
    parse_retry_after,
};

const S: fn(u64) -> Duration = Duration::from_secs;

fn now() -> SystemTime {
    // Sun, 06 Nov 1994 08:49:37 GMT
    SystemTime::UNIX_EPOCH + S(784_111_777)
}

fn status(code: u16) -> Attempt<'static> {
    Attempt::Response {
        status: code,
        retry_after: None,
    }
}

#[test]
fn status_classification_for_every_code() {
    for code in 0..=999u16 {
        let want = code == 429 || code == 0 || (code >= 500 && code != 501);
        assert_eq!(is_retryable_status(code), want, "{code}");
        assert_eq!(
            is_success_status(code),
            (200..300).contains(&code),
            "{code}"
        );
        let policy = RetryPolicy::new(3, S(2), S(30));
        let decided = policy.decide(0, &status(code), now());
        assert_eq!(decided.is_some(), want, "{code}");
    }
}

#[test]
fn transport_failures_retry_except_certificates_and_redirects() {
    let policy = RetryPolicy::new(3, S(2), S(30));
    let cases = [
        (TransportFailure::Connect, true),
        (TransportFailure::Timeout, true),
        (TransportFailure::Tls, true),
        (TransportFailure::Other, true),
        (TransportFailure::UntrustedCertificate, false),
        (TransportFailure::Redirect, false),
    ];
    for (failure, retried) in cases {
        assert_eq!(failure.is_retryable(), retried, "{failure:?}");
        let decided = policy.decide(0, &Attempt::Failed(failure), now());
        assert_eq!(decided, retried.then_some(S(2)), "{failure:?}");
    }
}

#[test]
fn attempts_are_retry_max_plus_one() {
    for retry_max in 0..6u32 {
        let policy = RetryPolicy::new(retry_max, S(1), S(1));
        assert_eq!(policy.max_attempts(), retry_max + 1);
        for attempt in 0..10u32 {
            let decided = policy.decide(attempt, &status(500), now());
            assert_eq!(
                decided.is_some(),
                attempt < retry_max,
                "retry_max {retry_max}, attempt {attempt}"
            );
        }
    }
    assert_eq!(
        RetryPolicy::new(u32::MAX, S(1), S(1)).max_attempts(),
        u32::MAX
    );
}

#[test]
fn backoff_schedules() {
    let waits = |p: RetryPolicy, n: u32| (0..n).map(|i| p.backoff(i)).collect::<Vec<_>>();
    // SFTPGo defaults: 2, 4, 8.
    assert_eq!(waits(RetryPolicy::default(), 3), [S(2), S(4), S(8)]);
    assert_eq!(
        waits(RetryPolicy::new(5, S(2), S(30)), 5),
        [S(2), S(4), S(8), S(16), S(30)]
    );
    // min 0: never waits.
    assert_eq!(
        waits(RetryPolicy::new(5, S(0), S(30)), 5),
        [Duration::ZERO; 5]
    );
    // min > max: always max.
    assert_eq!(waits(RetryPolicy::new(3, S(10), S(3)), 3), [S(3); 3]);
    // Sub-second (builder) values.
    let ms = Duration::from_millis;
    assert_eq!(
        waits(RetryPolicy::new(4, ms(10), ms(40)), 4),
        [ms(10), ms(20), ms(40), ms(40)]
    );
}

#[test]
fn backoff_never_overflows() {
    let huge = RetryPolicy::new(u32::MAX, Duration::MAX, Duration::MAX);
    for i in [0, 1, 2, 31, 32, 63, 64, 1000, u32::MAX] {
        assert_eq!(huge.backoff(i), Duration::MAX, "{i}");
    }
    let policy = RetryPolicy::new(u32::MAX, S(2), S(30));
    for i in [5, 31, 32, 33, 63, 64, 65, 1000, u32::MAX - 1, u32::MAX] {
        assert_eq!(policy.backoff(i), S(30), "{i}");
    }
    let tiny = RetryPolicy::new(u32::MAX, Duration::from_nanos(1), S(u64::MAX));
    assert_eq!(tiny.backoff(31), Duration::from_nanos(1 << 31));
    assert_eq!(tiny.backoff(32), S(u64::MAX));
}

#[test]
fn retry_after_is_honoured_on_429_and_503_only() {
    let policy = RetryPolicy::new(3, S(2), S(30));
    for code in [429u16, 503] {
        let a = Attempt::Response {
            status: code,
            retry_after: Some("1"),
        };
        // Whatever the backoff would say (attempt 2 would be 8 s).
        assert_eq!(policy.decide(2, &a, now()), Some(S(1)), "{code}");
        let zero = Attempt::Response {
            status: code,
            retry_after: Some("0"),
        };
        assert_eq!(policy.decide(0, &zero, now()), Some(Duration::ZERO));
        // Not capped by retry_wait_max (30 s), but by retry_after_max (60 s by default).
        let big = Attempt::Response {
            status: code,
            retry_after: Some("45"),
        };
        assert_eq!(policy.decide(0, &big, now()), Some(S(45)));
        let huge = Attempt::Response {
            status: code,
            retry_after: Some("999999999"),
        };
        assert_eq!(policy.decide(0, &huge, now()), Some(S(60)));
        let capped = policy.with_retry_after_max(S(5));
        assert_eq!(capped.decide(0, &huge, now()), Some(S(5)));
        // Negative or garbage: the exponential backoff.
        for bad in ["-5", "soon", "", " 1", "1.5", "9223372036854775808", "0x10"] {
            let a = Attempt::Response {
                status: code,
                retry_after: Some(bad),
            };
            assert_eq!(policy.decide(1, &a, now()), Some(S(4)), "{code} {bad:?}");
        }
    }
    for code in [500u16, 502, 504, 599] {
        let a = Attempt::Response {
            status: code,
            retry_after: Some("1"),
        };
        assert_eq!(policy.decide(1, &a, now()), Some(S(4)), "{code}");
    }
    // A Retry-After on a final status changes nothing.
    let a = Attempt::Response {
        status: 404,
        retry_after: Some("1"),
    };
    assert_eq!(policy.decide(0, &a, now()), None);
}

#[test]
fn retry_after_forms() {
    let cases: [(&str, Option<Duration>); 16] = [
        ("120", Some(S(120))),
        ("+5", Some(S(5))),
        ("0", Some(Duration::ZERO)),
        ("-1", None),
        ("9223372036854775807", Some(S(i64::MAX as u64))),
        ("99999999999999999999", None),
        ("Sun, 06 Nov 1994 08:50:07 GMT", Some(S(30))),
        ("Sun, 06 Nov 1994 08:49:37 GMT", Some(Duration::ZERO)),
        ("Sat, 05 Nov 1994 08:49:37 GMT", Some(Duration::ZERO)),
        // Go does not check the weekday, matches names case-insensitively, takes any zone.
        ("Mon, 06 Nov 1994 08:50:07 GMT", Some(S(30))),
        ("sun, 06 nov 1994 08:50:07 UTC", Some(S(30))),
        ("Sun, 06 Nov 1994 8:50:07 GMT", Some(S(30))),
        // Not RFC 1123: RFC 850, asctime, one-digit day, impossible dates, no zone.
        ("Sunday, 06-Nov-94 08:49:37 GMT", None),
        ("Sun Nov  6 08:49:37 1994", None),
        ("Sun, 6 Nov 1994 08:50:07 GMT", None),
        ("Sun, 30 Feb 1994 08:50:07 GMT", None),
    ];
    for (value, want) in cases {
        assert_eq!(parse_retry_after(value, now()), want, "{value:?}");
    }
    assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:50:07", now()), None);
    assert_eq!(
        parse_retry_after("Tue, 29 Feb 2000 00:00:00 GMT", SystemTime::UNIX_EPOCH),
        Some(S(951_782_400))
    );
    // A date formatted by httpdate (what servers send).
    let later = now() + S(90);
    assert_eq!(
        parse_retry_after(&httpdate::fmt_http_date(later), now()),
        Some(S(90))
    );
}

#[test]
fn default_retry_after_cap_follows_hook_config() {
    assert_eq!(RetryPolicy::new(3, S(2), S(30)).retry_after_max(), S(60));
    assert_eq!(RetryPolicy::new(3, S(2), S(90)).retry_after_max(), S(90));
    let http = hook_config::HttpClientsSection::default();
    let hooks = hook_config::HooksSection::default();
    assert_eq!(hooks.effective_retry_after_max(&http), 60.0);
}
