//! The redelivery schedule of deferred events: `redeliver_min` doubling up to `redeliver_max`,
//! ±10 % jitter, never before the endpoint's `Retry-After`, dead past `max_age`.

use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// The schedule, from `hooks.spool`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Schedule {
    pub(crate) min: Duration,
    pub(crate) max: Duration,
    pub(crate) max_age: Duration,
}

/// Jitter: the wait is scaled by a factor in `[1 - JITTER, 1 + JITTER]`.
const JITTER: f64 = 0.10;

impl Schedule {
    /// The wait before redelivery number `redeliveries + 1` (0: the first after the in-memory
    /// retries failed): `min * 2^redeliveries` capped to `max`, without jitter.
    pub(crate) fn base(&self, redeliveries: u32) -> Duration {
        let factor = 2f64.powi(redeliveries.min(62) as i32);
        let secs = (self.min.as_secs_f64() * factor).min(self.max.as_secs_f64());
        Duration::try_from_secs_f64(secs).unwrap_or(self.max)
    }

    /// [`base`](Schedule::base) with jitter drawn from `salt` (an event's key: events that
    /// failed together spread out), and never shorter than `retry_after`.
    pub(crate) fn wait(
        &self,
        redeliveries: u32,
        salt: u64,
        retry_after: Option<Duration>,
    ) -> Duration {
        let base = self.base(redeliveries).as_secs_f64();
        let mut h = std::hash::RandomState::new().build_hasher();
        h.write_u64(salt);
        h.write_u32(redeliveries);
        // A uniform number in [0, 1).
        let unit = (h.finish() >> 11) as f64 / (1u64 << 53) as f64;
        let jittered = base * (1.0 - JITTER + 2.0 * JITTER * unit);
        let wait = Duration::try_from_secs_f64(jittered).unwrap_or(self.max);
        match retry_after {
            Some(not_before) if not_before > wait => not_before,
            _ => wait,
        }
    }

    /// Whether an event first fired at `first_fired_ms` (Unix ms) is past `max_age` at `now_ms`.
    pub(crate) fn expired(&self, first_fired_ms: u64, now_ms: u64) -> bool {
        let age = Duration::from_millis(now_ms.saturating_sub(first_fired_ms));
        age >= self.max_age
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule() -> Schedule {
        Schedule {
            min: Duration::from_secs(30),
            max: Duration::from_secs(3600),
            max_age: Duration::from_secs(86_400),
        }
    }

    #[test]
    fn doubles_up_to_the_cap() {
        let s = schedule();
        let secs: Vec<u64> = (0..10).map(|k| s.base(k).as_secs()).collect();
        assert_eq!(secs, [30, 60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]);
        assert_eq!(s.base(u32::MAX), Duration::from_secs(3600));
    }

    #[test]
    fn jitter_stays_within_ten_percent_and_spreads() {
        let s = schedule();
        let mut seen = std::collections::BTreeSet::new();
        for salt in 0..200 {
            let w = s.wait(1, salt, None).as_secs_f64();
            assert!((54.0..=66.0).contains(&w), "{w}");
            seen.insert((w * 1000.0) as u64);
        }
        assert!(seen.len() > 100, "jitter does not spread: {}", seen.len());
    }

    #[test]
    fn never_before_retry_after() {
        let s = schedule();
        let w = s.wait(0, 1, Some(Duration::from_secs(500)));
        assert_eq!(w, Duration::from_secs(500));
        let w = s.wait(0, 1, Some(Duration::from_secs(1)));
        assert!(w >= Duration::from_secs(27), "{w:?}");
    }

    #[test]
    fn expiry_from_the_first_firing() {
        let s = schedule();
        assert!(!s.expired(1_000, 1_000 + 86_399_999));
        assert!(s.expired(1_000, 1_000 + 86_400_000));
        assert!(!s.expired(5_000, 1_000));
    }
}
