//! Viper's "weak typing" for scalar text (what SFTPGo accepts for an int, a float or a bool given
//! as a string), and the list splitting of D12.
//!
//! Viper decodes with mapstructure's `WeaklyTypedInput`: an integer is read with Go's
//! `strconv.ParseInt(s, 0, 64)` (so `0x1e`, `0o36`, `036` and `1_000` are accepted), a float with
//! `strconv.ParseFloat`, a bool with `strconv.ParseBool`, and the empty string is the zero value.
//! The `config` crate differs (it rounds floats into integers, accepts `yes`/`on`, rejects `""`),
//! so the loader uses these functions instead.

/// Go's `strconv.ParseInt(s, 0, 64)`, with `""` meaning 0 (mapstructure's weak rule).
pub(crate) fn parse_int(s: &str) -> Option<i64> {
    if s.is_empty() {
        return Some(0);
    }
    let (negative, unsigned) = match s.as_bytes()[0] {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let (radix, digits, prefixed) = match unsigned.get(..2) {
        Some("0x" | "0X") => (16, &unsigned[2..], true),
        Some("0o" | "0O") => (8, &unsigned[2..], true),
        Some("0b" | "0B") => (2, &unsigned[2..], true),
        _ if unsigned.len() > 1 && unsigned.starts_with('0') => (8, &unsigned[1..], true),
        _ => (10, unsigned, false),
    };
    let digits = strip_underscores(digits, prefixed)?;
    if digits.is_empty() || digits.starts_with(['+', '-']) {
        return None;
    }
    let magnitude = u64::from_str_radix(&digits, radix).ok()?;
    if negative {
        if magnitude == 1 << 63 {
            Some(i64::MIN)
        } else {
            i64::try_from(magnitude).ok().map(|m| -m)
        }
    } else {
        i64::try_from(magnitude).ok()
    }
}

/// Go allows `_` only between digits (or right after a base prefix) when the base is implied.
fn strip_underscores(digits: &str, prefixed: bool) -> Option<String> {
    if !digits.contains('_') {
        return Some(digits.to_owned());
    }
    let bytes = digits.as_bytes();
    let bad_start = bytes.first() == Some(&b'_') && !prefixed;
    if bad_start || bytes.last() == Some(&b'_') || digits.contains("__") {
        return None;
    }
    Some(digits.replace('_', ""))
}

/// Go's `strconv.ParseFloat(s, 64)` (decimal forms, `inf`, `nan`), with `""` meaning 0.
pub(crate) fn parse_float(s: &str) -> Option<f64> {
    if s.is_empty() {
        return Some(0.0);
    }
    s.parse::<f64>().ok()
}

/// Go's `strconv.ParseBool`, with `""` meaning false.
pub(crate) fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "" | "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// A list given as one string (D12): split on `,`, items trimmed, empty items dropped.
pub(crate) fn split_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The text Go's weak decoding makes of a float (`strconv.FormatFloat(f, 'f', -1, 64)`).
pub(crate) fn float_to_string(f: f64) -> String {
    if f.is_nan() {
        "NaN".to_owned()
    } else if f.is_infinite() {
        if f > 0.0 {
            "+Inf".to_owned()
        } else {
            "-Inf".to_owned()
        }
    } else {
        format!("{f}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ints_like_go() {
        for (s, want) in [
            ("", Some(0)),
            ("30", Some(30)),
            ("-5", Some(-5)),
            ("+7", Some(7)),
            ("0x1e", Some(30)),
            ("0X1E", Some(30)),
            ("0o36", Some(30)),
            ("036", Some(30)),
            ("0b11110", Some(30)),
            ("0", Some(0)),
            ("1_000", Some(1000)),
            ("1__0", None),
            ("1_", None),
            ("_1", None),
            ("0x_1e", Some(30)),
            ("0_36", Some(30)),
            ("9223372036854775807", Some(i64::MAX)),
            ("-9223372036854775808", Some(i64::MIN)),
            ("9223372036854775808", None),
            ("abc", None),
            (" 30", None),
            ("30 ", None),
            ("3.0", None),
            ("--3", None),
            ("0x", None),
            ("08", None),
            ("true", None),
        ] {
            assert_eq!(parse_int(s), want, "{s:?}");
        }
    }

    #[test]
    fn bools_like_go() {
        for t in ["1", "t", "T", "TRUE", "true", "True"] {
            assert_eq!(parse_bool(t), Some(true));
        }
        for f in ["", "0", "f", "F", "FALSE", "false", "False"] {
            assert_eq!(parse_bool(f), Some(false));
        }
        for bad in ["yes", "on", "tRUE", " true", "2"] {
            assert_eq!(parse_bool(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn floats_and_lists() {
        assert_eq!(parse_float(""), Some(0.0));
        assert_eq!(parse_float("2.5"), Some(2.5));
        assert_eq!(parse_float("1e1"), Some(10.0));
        assert_eq!(parse_float("x"), None);
        assert_eq!(split_list(" a=b , ,c=d,"), ["a=b", "c=d"]);
        assert!(split_list("").is_empty());
        assert_eq!(float_to_string(2.5), "2.5");
        assert_eq!(float_to_string(20.0), "20");
    }
}
