//! [`escape_control_chars`]: text from a hook (its stderr) made safe to copy into a log line.

use std::borrow::Cow;
use std::fmt::Write as _;

/// `text` with every control character escaped, so that text a hook wrote (its stderr tail)
/// can be copied into a log line without forging log records (a newline followed by a fake
/// timestamp) or sending terminal escape sequences: `\n`, `\r`, `\t` and `\\` are written as
/// such, every other C0 control, DEL and C1 control as `\xHH` (`\x1b` for ESC) or `\u{HH}`.
/// Other characters, non-ASCII ones included, are kept.
///
/// ```
/// use hook_core::escape_control_chars;
///
/// assert_eq!(escape_control_chars("plain text, café"), "plain text, café");
/// assert_eq!(
///     escape_control_chars("boom\n2031-01-01T00:00:00Z  WARN forged\x1b[31m\\"),
///     r"boom\n2031-01-01T00:00:00Z  WARN forged\x1b[31m\\"
/// );
/// assert_eq!(escape_control_chars("\u{9b}2J"), r"\u{9b}2J");
/// ```
pub fn escape_control_chars(text: &str) -> Cow<'_, str> {
    if !text.chars().any(|c| c.is_control() || c == '\\') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '\n' => out.push_str(r"\n"),
            '\r' => out.push_str(r"\r"),
            '\t' => out.push_str(r"\t"),
            '\\' => out.push_str(r"\\"),
            c if (c as u32) < 0x80 && c.is_control() => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item9_every_control_character_is_escaped() {
        for b in (0u32..0x20).chain([0x7f]).chain(0x80..0xa0) {
            let c = char::from_u32(b).unwrap();
            let escaped = escape_control_chars(&c.to_string()).into_owned();
            assert!(
                !escaped.chars().any(char::is_control),
                "{b:#x}: {escaped:?}"
            );
            assert!(escaped.starts_with('\\'), "{b:#x}: {escaped:?}");
        }
        assert_eq!(escape_control_chars("a\u{7}b"), r"a\x07b");
        assert_eq!(escape_control_chars("a\\nb"), r"a\\nb");
        assert!(matches!(escape_control_chars("ok"), Cow::Borrowed(_)));
    }
}
