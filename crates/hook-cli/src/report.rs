//! Latency statistics and the summary line.

use std::time::Duration;

/// The summary line, the same format as the SFTPGo peer's so the two compare directly.
pub(crate) fn summary_line(
    events: u64,
    failed: u64,
    elapsed: Duration,
    lat: &mut [Duration],
) -> String {
    lat.sort_unstable();
    let secs = elapsed.as_secs_f64();
    let rate = if secs > 0.0 {
        events as f64 / secs
    } else {
        0.0
    };
    format!(
        "events={events} failed={failed} elapsed_ms={:.1} events_per_s={rate:.0} p50_ms={:.2} p99_ms={:.2}",
        ms(elapsed),
        ms(percentile(lat, 0.50)),
        ms(percentile(lat, 0.99)),
    )
}

/// The `q` quantile of sorted samples, by the nearest-rank-below rule the peer uses.
pub(crate) fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = (q * (sorted.len() - 1) as f64) as usize;
    sorted[idx.min(sorted.len() - 1)]
}

pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_format() {
        let mut lat: Vec<_> = (1..=100).map(Duration::from_millis).collect();
        let line = summary_line(100, 2, Duration::from_millis(500), &mut lat);
        assert_eq!(
            line,
            "events=100 failed=2 elapsed_ms=500.0 events_per_s=200 p50_ms=50.00 p99_ms=99.00"
        );
    }

    #[test]
    fn percentile_of_empty_and_one() {
        assert_eq!(percentile(&[], 0.5), Duration::ZERO);
        assert_eq!(
            percentile(&[Duration::from_millis(3)], 0.99),
            Duration::from_millis(3)
        );
    }
}
