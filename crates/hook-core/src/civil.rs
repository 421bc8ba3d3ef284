//! Proleptic Gregorian dates in UTC, without a time library: what the backends need to read an
//! HTTP date (`Retry-After`), a certificate's validity period and to write an RFC 3339
//! timestamp.
//!
//! ```
//! use hook_core::civil::{civil_from_days, unix_seconds};
//!
//! assert_eq!(unix_seconds(1994, 11, 6, 8, 49, 37), 784_111_777);
//! assert_eq!(civil_from_days(784_111_777 / 86_400), (1994, 11, 6));
//! ```

/// Seconds since the Unix epoch of a proleptic Gregorian date and time (UTC).
pub fn unix_seconds(year: i64, month: u32, day: u32, hour: u32, min: u32, sec: u32) -> i64 {
    // Howard Hinnant's days_from_civil.
    let (y, m) = if month <= 2 {
        (year - 1, i64::from(month) + 9)
    } else {
        (year, i64::from(month) - 3)
    };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days * 86_400 + i64::from(hour) * 3600 + i64::from(min) * 60 + i64::from(sec)
}

/// Howard Hinnant's `civil_from_days`: the proleptic Gregorian date of a day count since
/// 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_seconds_known_dates() {
        assert_eq!(unix_seconds(1970, 1, 1, 0, 0, 0), 0);
        assert_eq!(unix_seconds(1994, 11, 6, 8, 49, 37), 784_111_777);
        assert_eq!(unix_seconds(2000, 2, 29, 0, 0, 0), 951_782_400);
        assert_eq!(unix_seconds(2038, 1, 19, 3, 14, 8), 2_147_483_648);
        assert_eq!(unix_seconds(1969, 12, 31, 23, 59, 59), -1);
    }
    #[test]
    fn the_two_are_inverse_over_four_centuries() {
        for days in (-146_097i64..146_097).step_by(7) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(unix_seconds(y, m, d, 0, 0, 0), days * 86_400, "{y}-{m}-{d}");
        }
    }
}
