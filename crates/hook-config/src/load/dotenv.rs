//! `<config dir>/env.d/`: dotenv files merged into the loader's environment map, as SFTPGo loads
//! them into its process environment, but without touching the process environment.
//!
//! * Every regular file in the directory (symbolic links followed), in file-name order.
//! * A variable already in the map is never overridden, so the real environment wins and, between
//!   files, the first file (by name) wins. Within one file, the last definition wins.
//! * A file larger than 1 MiB is an error naming it (SFTPGo skips it with a log line; we refuse to
//!   start with a configuration that silently lacks a file the administrator put there).
//! * Syntax: blank lines and `#` comments; `KEY=value`, `KEY: value`, optional `export `; values
//!   unquoted (trimmed, ` #` starts a comment), `'single quoted'` (literal), or `"double quoted"`
//!   (escapes `\n \r \t \" \\ \$`, may span lines); `$VAR` and `${VAR}` are expanded in unquoted
//!   and double-quoted values from earlier lines of the file, then the environment map.
//! * The values one file defines (every definition, after expansion) total at most 4 MiB: a
//!   line that would go past it is an error naming it (expansion can repeat a value, so a few
//!   lines could otherwise double it again and again).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::{ConfigError, ConfigErrorKind};

/// The largest env.d file read, in bytes.
pub(crate) const MAX_ENV_FILE_SIZE: u64 = 1024 * 1024;

/// The most bytes of values one env.d file may define, after expansion.
pub(crate) const MAX_EXPANDED_SIZE: usize = 4 * 1024 * 1024;

const TOO_BIG: &str = "the values expand to more than 4 MiB";

/// Merges the files of `dir` (if it exists) into `env`; returns the files read, in order.
pub(super) fn merge_env_dir(
    dir: &Path,
    env: &mut BTreeMap<String, String>,
) -> Result<Vec<PathBuf>, ConfigError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => return Ok(Vec::new()),
        Err(e) => return Err(io_error(dir, "cannot read the env.d directory", e)),
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| io_error(dir, "cannot read the env.d directory", e))?;
        let path = entry.path();
        match std::fs::metadata(&path) {
            Ok(meta) if meta.is_file() => files.push((path, meta.len())),
            Ok(_) => {}
            Err(e) => return Err(io_error(&path, "cannot read env file", e)),
        }
    }
    files.sort_by(|a, b| a.0.file_name().cmp(&b.0.file_name()));
    let mut read = Vec::with_capacity(files.len());
    for (path, len) in files {
        if len > MAX_ENV_FILE_SIZE {
            return Err(ConfigError::new(
                ConfigErrorKind::Io,
                "",
                format!(
                    "{}: env file is {len} bytes, larger than the 1 MiB limit of env.d files",
                    path.display()
                ),
            ));
        }
        let text = std::fs::read_to_string(&path)
            .map_err(|e| io_error(&path, "cannot read env file", e))?;
        let vars = parse(&text, env).map_err(|(line, why)| {
            ConfigError::new(
                ConfigErrorKind::Parse,
                "",
                format!("{}:{line}: {why}", path.display()),
            )
        })?;
        for (k, v) in vars {
            env.entry(k).or_insert(v);
        }
        read.push(path);
    }
    Ok(read)
}

fn io_error(path: &Path, what: &str, e: std::io::Error) -> ConfigError {
    ConfigError::new(
        ConfigErrorKind::Io,
        "",
        format!("{}: {what}: {e}", path.display()),
    )
    .with_source(e)
}

/// Parses dotenv text; on error, the 1-based line and the reason (never the value).
pub(crate) fn parse(
    text: &str,
    env: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, (usize, String)> {
    let mut vars = BTreeMap::new();
    // What is left of MAX_EXPANDED_SIZE.
    let mut budget = MAX_EXPANDED_SIZE;
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let number = i + 1;
        let line = lines[i].trim();
        i += 1;
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line
            .strip_prefix("export ")
            .map(str::trim_start)
            .unwrap_or(line);
        let sep = line
            .find(['=', ':'])
            .ok_or((number, "expected KEY=value".to_owned()))?;
        let key = line[..sep].trim();
        if key.is_empty()
            || !key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        {
            return Err((number, format!("invalid variable name {key:?}")));
        }
        let raw = line[sep + 1..].trim_start();
        let value = if let Some(body) = raw.strip_prefix('\'') {
            let end = body
                .find('\'')
                .ok_or((number, "unterminated single quote".to_owned()))?;
            check_trailing(&body[end + 1..], number)?;
            body[..end].to_owned()
        } else if let Some(body) = raw.strip_prefix('"') {
            // A double-quoted value may continue on the following lines; each line is scanned once.
            let mut text = body.to_owned();
            let mut scan = QuoteScan::default();
            let end = loop {
                if let Some(end) = scan.closing_quote(&text) {
                    break end;
                }
                let next = lines
                    .get(i)
                    .ok_or((number, "unterminated double quote".to_owned()))?;
                text.push('\n');
                text.push_str(next);
                i += 1;
            };
            check_trailing(&text[end + 1..], number)?;
            expand(&unescape(&text[..end]), &vars, env, budget)
                .ok_or((number, TOO_BIG.to_owned()))?
        } else {
            let unquoted = match raw.find(" #") {
                Some(comment) => &raw[..comment],
                None => raw,
            };
            expand(unquoted.trim_end(), &vars, env, budget).ok_or((number, TOO_BIG.to_owned()))?
        };
        budget = budget
            .checked_sub(value.len())
            .ok_or((number, TOO_BIG.to_owned()))?;
        vars.insert(key.to_owned(), value);
    }
    Ok(vars)
}

fn check_trailing(rest: &str, number: usize) -> Result<(), (usize, String)> {
    let rest = rest.trim();
    if rest.is_empty() || rest.starts_with('#') {
        Ok(())
    } else {
        Err((number, "unexpected text after the closing quote".to_owned()))
    }
}

/// Finds the first `"` not preceded by a backslash escape in a text that grows between calls,
/// scanning each byte once.
#[derive(Default)]
struct QuoteScan {
    scanned: usize,
    escaped: bool,
}

impl QuoteScan {
    /// Index of the closing quote in `s`, whose first bytes are the ones already scanned.
    fn closing_quote(&mut self, s: &str) -> Option<usize> {
        for (i, b) in s.bytes().enumerate().skip(self.scanned) {
            match b {
                _ if self.escaped => self.escaped = false,
                b'\\' => self.escaped = true,
                b'"' => return Some(i),
                _ => {}
            }
        }
        self.scanned = s.len();
        None
    }
}

/// Backslash escapes of a double-quoted value; `\$` is kept as a marker for [`expand`].
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some('$') => out.push_str("\\$"),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// Expands `$VAR` and `${VAR}` from `vars` (earlier lines) then `env`; unknown names expand to
/// nothing; `\$` is a literal `$`. `None` when the result would be longer than `budget` bytes.
fn expand(
    s: &str,
    vars: &BTreeMap<String, String>,
    env: &BTreeMap<String, String>,
    budget: usize,
) -> Option<String> {
    let lookup = |name: &str| {
        vars.get(name)
            .or_else(|| env.get(name))
            .map_or("", String::as_str)
    };
    let mut out = String::with_capacity(s.len().min(budget));
    let bytes = s.as_bytes();
    // Once a `${` has no `}` after it, no later one has: stop searching (linear, not quadratic).
    let mut unclosed = false;
    let mut i = 0;
    while i < s.len() {
        if out.len() > budget {
            return None;
        }
        if s[i..].starts_with("\\$") {
            out.push('$');
            i += 2;
            continue;
        }
        if bytes[i] == b'$' {
            if s[i + 1..].starts_with('{') {
                match (!unclosed).then(|| s[i + 2..].find('}')).flatten() {
                    Some(close) => {
                        out.push_str(lookup(&s[i + 2..i + 2 + close]));
                        i += close + 3;
                        continue;
                    }
                    None => unclosed = true,
                }
            } else {
                let len = s[i + 1..]
                    .bytes()
                    .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
                    .count();
                if len > 0 {
                    out.push_str(lookup(&s[i + 1..i + 1 + len]));
                    i += len + 1;
                    continue;
                }
            }
        }
        let c = s[i..].chars().next().unwrap_or_default();
        out.push(c);
        i += c.len_utf8();
    }
    (out.len() <= budget).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn syntax() {
        let text = "# comment\n\nA=1\nexport B = two words  # note\nC: 'lit $A # x'\nD=\"l1\\nl2 ${A}$B \\$A\"\nE=\"multi\nline\"\nF=\nG=$HOME/x\nA=3\n";
        let got = parse(text, &env(&[("HOME", "/home/u")])).unwrap();
        let want = env(&[
            ("A", "3"),
            ("B", "two words"),
            ("C", "lit $A # x"),
            ("D", "l1\nl2 1two words $A"),
            ("E", "multi\nline"),
            ("F", ""),
            ("G", "/home/u/x"),
        ]);
        assert_eq!(got, want);
    }

    /// Found while writing the fuzz target's bound (docs/fuzzing.md): each line doubling the
    /// value of the line before made a 200-byte file expand to 2^25 bytes (and 1 KiB to more
    /// memory than any machine has).
    #[test]
    fn dotenv_expansion_is_bounded() {
        let mut text = String::from("A=xx\n");
        for _ in 0..24 {
            text.push_str("A=$A$A\n");
        }
        let (line, why) = parse(&text, &env(&[])).unwrap_err();
        assert_eq!(line, 22, "{why}");
        assert_eq!(why, "the values expand to more than 4 MiB");
        // Expansion from the environment counts too.
        let big = "x".repeat(3 * 1024 * 1024);
        let err = parse("A=$BIG\nB=${BIG}\n", &env(&[("BIG", &big)])).unwrap_err();
        assert_eq!(err.0, 2);
        // Up to the limit is fine.
        let got = parse("A=$BIG\n", &env(&[("BIG", &big)])).unwrap();
        assert_eq!(got["A"].len(), big.len());
    }

    /// Worst cases for the scanners, a 1 MiB file each (docs/fuzzing.md: before the fix, each
    /// rescanned the text from its start and took minutes).
    #[test]
    fn dotenv_scans_are_linear() {
        let unclosed = format!("A={}\n", "${".repeat(512 * 1024));
        let got = parse(&unclosed, &env(&[])).unwrap();
        assert_eq!(got["A"], "${".repeat(512 * 1024));

        let mut open_quote = String::from("A=\"");
        open_quote.push_str(&"x\\\n".repeat(256 * 1024));
        assert_eq!(
            parse(&open_quote, &env(&[])).unwrap_err(),
            (1, "unterminated double quote".to_owned())
        );
        open_quote.push_str("\"\n");
        assert_eq!(
            parse(&open_quote, &env(&[])).unwrap()["A"].len(),
            2 * 256 * 1024
        );
    }

    #[test]
    fn errors_give_the_line() {
        assert_eq!(parse("A=1\nnoequals\n", &env(&[])).unwrap_err().0, 2);
        assert_eq!(parse("A='x\n", &env(&[])).unwrap_err().0, 1);
        assert_eq!(parse("A=\"x\n", &env(&[])).unwrap_err().0, 1);
        assert_eq!(parse("A B=1\n", &env(&[])).unwrap_err().0, 1);
    }
}
