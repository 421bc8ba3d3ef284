//! Validation: every rule of spec 5.1 plus D1, D10 and D12, and sensible rules for `hooks`.
//!
//! Every error names the dotted key (`command.commands[1].env[0]`) and the value where that is not
//! a secret. Header values are never shown; URL passwords are redacted (D11).

use std::path::Path;
use std::time::Duration;

use hook_core::Protocol;

use crate::redact::{REDACTED, redact_url};
use crate::types::{
    CommandEntry, CommandSection, HookConfig, HooksSection, HttpClientsSection, HttpHeader,
    SpoolSection,
};
use crate::{ConfigError, HookTarget};

/// The hook names SFTPGo accepts in `command.commands[].hook` (besides `""`), in SFTPGo's order.
pub const COMMAND_HOOK_NAMES: [&str; 10] = [
    "fs_actions",
    "provider_actions",
    "startup",
    "post_connect",
    "post_disconnect",
    "check_password",
    "pre_login",
    "post_login",
    "external_auth",
    "keyboard_interactive",
];

/// The largest `hooks.queue_capacity` and `hooks.max_in_flight`: the most a dispatcher's queue
/// and slot semaphore can hold (tokio's semaphores refuse more permits than `usize::MAX >> 3`,
/// 2^61 - 1 on 64-bit targets).
pub const MAX_DISPATCHER_LIMIT: usize = usize::MAX >> 3;

/// The range of `command.timeout` and of a non-zero `command.commands[].timeout`, in seconds.
pub const COMMAND_TIMEOUT_RANGE: std::ops::RangeInclusive<i64> = 1..=300;

impl HookConfig {
    /// Checks every rule, in SFTPGo's order within a section: `common.post_disconnect_hook` (D1),
    /// then `http` (timeout, retry values, CA certificates, client certificates, headers), then
    /// `command` (global timeout, global env, then each command: path, timeout, env, args, hook),
    /// then `hooks`, then `nats`. The first error wins.
    ///
    /// ```
    /// use hook_config::HookConfig;
    ///
    /// let mut config = HookConfig::default();
    /// config.command.timeout = 0;
    /// let err = config.validate().unwrap_err();
    /// assert_eq!(err.to_string(), "command.timeout: invalid timeout 0: must be 1..=300");
    /// ```
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.target()?;
        self.http.validate()?;
        self.command.validate()?;
        self.hooks.validate()?;
        self.nats.validate()?;
        Ok(())
    }

    /// The parsed `common.post_disconnect_hook` (rules of D1).
    pub fn target(&self) -> Result<HookTarget, ConfigError> {
        HookTarget::parse(&self.common.post_disconnect_hook)
    }

    /// Makes relative `http.ca_certificates` and `http.certificates` paths (see
    /// [`HttpClientsSection::resolve_paths`]) and a relative `hooks.spool.dir` absolute against
    /// `config_dir`.
    pub fn resolve_paths(&mut self, config_dir: &Path) {
        self.http.resolve_paths(config_dir);
        self.hooks.spool.resolve_paths(config_dir);
        self.nats.resolve_paths(config_dir);
    }
}

impl HttpClientsSection {
    /// Checks the `http` section: `timeout` finite and `> 0`; `retry_wait_min`, `retry_wait_max`
    /// and `retry_max` not negative (D10); every certificate path valid by SFTPGo's rule (after a
    /// lexical clean, `""`, `.` and `..` are invalid); every effective header with a token name
    /// and a value and URL free of control characters (D10). Headers with an empty key or value
    /// are skipped, as SFTPGo drops them (see [`effective_headers`](Self::effective_headers)).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(self.timeout > 0.0 && Duration::try_from_secs_f64(self.timeout).is_ok()) {
            return Err(ConfigError::invalid(
                "http.timeout",
                format!(
                    "invalid timeout: {}: must be a finite number of seconds > 0",
                    self.timeout
                ),
            ));
        }
        for (key, value) in [
            ("http.retry_wait_min", self.retry_wait_min),
            ("http.retry_wait_max", self.retry_wait_max),
            ("http.retry_max", self.retry_max),
        ] {
            if value < 0 {
                return Err(ConfigError::invalid(
                    key,
                    format!("invalid value {value}: must be >= 0"),
                ));
            }
        }
        for (i, path) in self.ca_certificates.iter().enumerate() {
            check_file_input(
                &format!("http.ca_certificates[{i}]"),
                "CA certificate",
                path,
            )?;
        }
        for (i, pair) in self.certificates.iter().enumerate() {
            check_file_input(
                &format!("http.certificates[{i}].cert"),
                "certificate",
                &pair.cert,
            )?;
            check_file_input(&format!("http.certificates[{i}].key"), "key", &pair.key)?;
        }
        for (i, header) in self.headers.iter().enumerate() {
            if !header.is_effective() {
                continue;
            }
            if !is_token(&header.key) {
                return Err(ConfigError::invalid(
                    format!("http.headers[{i}].key"),
                    format!(
                        "{:?} is not a valid header name (RFC 9110 token)",
                        header.key
                    ),
                ));
            }
            if let Some(c) = header.value.bytes().find(|&b| is_forbidden_in_value(b)) {
                return Err(ConfigError::invalid(
                    format!("http.headers[{i}].value"),
                    format!(
                        "{REDACTED} (value of {:?}) contains {}",
                        header.key,
                        describe(c)
                    ),
                ));
            }
            if let Some(c) = header.url.bytes().find(|&b| b < 0x20 || b == 0x7f) {
                return Err(ConfigError::invalid(
                    format!("http.headers[{i}].url"),
                    format!("{:?} contains {}", redact_url(&header.url), describe(c)),
                ));
            }
        }
        Ok(())
    }

    /// The headers SFTPGo would send: entries with an empty key or an empty value are dropped
    /// silently, as SFTPGo does, and the others kept in order.
    ///
    /// ```
    /// use hook_config::{HttpClientsSection, HttpHeader};
    ///
    /// let mut http = HttpClientsSection::default();
    /// http.headers = vec![HttpHeader::new("X-A", "1"), HttpHeader::new("X-B", ""), HttpHeader::new("", "2")];
    /// let keys: Vec<_> = http.effective_headers().map(|h| h.key.as_str()).collect();
    /// assert_eq!(keys, ["X-A"]);
    /// ```
    pub fn effective_headers(&self) -> impl Iterator<Item = &HttpHeader> + '_ {
        self.headers.iter().filter(|h| h.is_effective())
    }

    /// Makes relative `ca_certificates` and `certificates` paths absolute: joined to `config_dir`
    /// (itself made absolute against the current directory) and cleaned lexically, as Go's
    /// `filepath.Join` does. Absolute paths are kept as they are.
    pub fn resolve_paths(&mut self, config_dir: &Path) {
        let base = std::path::absolute(config_dir).unwrap_or_else(|_| config_dir.to_path_buf());
        let resolve = |p: &mut String| {
            if !p.is_empty() && !Path::new(p.as_str()).is_absolute() {
                let joined = base.join(p.as_str());
                *p = clean_path(&joined.to_string_lossy());
            }
        };
        self.ca_certificates.iter_mut().for_each(resolve);
        for pair in &mut self.certificates {
            resolve(&mut pair.cert);
            resolve(&mut pair.key);
        }
    }
}

impl HttpHeader {
    /// Whether SFTPGo would use this entry: key and value both non-empty.
    pub fn is_effective(&self) -> bool {
        !self.key.is_empty() && !self.value.is_empty()
    }
}

impl CommandSection {
    /// Checks the `command` section in SFTPGo's order: the global timeout (`1..=300`), the global
    /// env (each entry has a `=`), then each command in order: path (non-empty), timeout (`0` or
    /// `1..=300`), env, args (no NUL byte) and hook (`""` or one of [`COMMAND_HOOK_NAMES`]).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !COMMAND_TIMEOUT_RANGE.contains(&self.timeout) {
            return Err(ConfigError::invalid(
                "command.timeout",
                format!("invalid timeout {}: must be 1..=300", self.timeout),
            ));
        }
        check_env_list("command.env", &self.env)?;
        for (i, entry) in self.commands.iter().enumerate() {
            check_command(i, entry)?;
        }
        Ok(())
    }

    /// The entry SFTPGo applies to program `path` run as hook `hook` (spec 3.3): the first entry
    /// of `commands`, in order, whose path equals `path` byte for byte and whose hook is `""` or
    /// `hook`, with its index in `commands`. Its timeout (or `timeout` when it is `0`), env (after
    /// `env`) and args apply.
    pub fn command_for(&self, path: &[u8], hook: &str) -> Option<(usize, &CommandEntry)> {
        self.commands
            .iter()
            .enumerate()
            .find(|(_, c)| c.path.as_bytes() == path && (c.hook.is_empty() || c.hook == hook))
    }
}

fn check_command(i: usize, entry: &CommandEntry) -> Result<(), ConfigError> {
    let key = |field: &str| format!("command.commands[{i}].{field}");
    if entry.path.is_empty() {
        return Err(ConfigError::invalid(
            key("path"),
            "invalid path \"\": must not be empty",
        ));
    }
    if entry.path.contains('\0') {
        return Err(ConfigError::invalid(
            key("path"),
            format!("{:?} contains a NUL byte", entry.path),
        ));
    }
    if entry.timeout != 0 && !COMMAND_TIMEOUT_RANGE.contains(&entry.timeout) {
        return Err(ConfigError::invalid(
            key("timeout"),
            format!(
                "invalid timeout {} for command {:?}: must be 0 (use command.timeout) or 1..=300",
                entry.timeout, entry.path
            ),
        ));
    }
    check_env_list(&key("env"), &entry.env)?;
    for (j, arg) in entry.args.iter().enumerate() {
        if arg.contains('\0') {
            return Err(ConfigError::invalid(
                format!("command.commands[{i}].args[{j}]"),
                format!("{arg:?} contains a NUL byte"),
            ));
        }
    }
    if !entry.hook.is_empty() && !COMMAND_HOOK_NAMES.contains(&entry.hook.as_str()) {
        return Err(ConfigError::invalid(
            key("hook"),
            format!(
                "invalid hook name {:?}, supported values: [{}]",
                entry.hook,
                COMMAND_HOOK_NAMES.join(", ")
            ),
        ));
    }
    Ok(())
}

/// SFTPGo's rule: splitting on the first `=` must give two parts (`A=`, `=x`, `A=b=c` are fine).
/// We also reject a NUL byte (the program could not be started), without showing the value.
fn check_env_list(key: &str, env: &[String]) -> Result<(), ConfigError> {
    for (i, entry) in env.iter().enumerate() {
        let Some((name, value)) = entry.split_once('=') else {
            return Err(ConfigError::invalid(
                format!("{key}[{i}]"),
                format!("{entry:?} has no '='"),
            ));
        };
        if name.contains('\0') || value.contains('\0') {
            return Err(ConfigError::invalid(
                format!("{key}[{i}]"),
                format!(
                    "the entry for {:?} contains a NUL byte",
                    name.replace('\0', "\\0")
                ),
            ));
        }
    }
    Ok(())
}

impl HooksSection {
    /// Checks our `hooks` section: `queue_capacity` and `max_in_flight` `> 0` and at most
    /// [`MAX_DISPATCHER_LIMIT`]; `protocols` not
    /// empty, each one of SFTPGo's protocol names (exact case); `delivery_deadline` finite and
    /// `> 0`; `retry_after_max` (when set), `kill_grace` and `shutdown_deadline` finite and `>= 0`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (key, value) in [
            ("hooks.queue_capacity", self.queue_capacity),
            ("hooks.max_in_flight", self.max_in_flight),
        ] {
            if value == 0 {
                return Err(ConfigError::invalid(key, "invalid value 0: must be > 0"));
            }
            if value > MAX_DISPATCHER_LIMIT {
                return Err(ConfigError::invalid(
                    key,
                    format!(
                        "invalid value {value}: must be at most {MAX_DISPATCHER_LIMIT} (the most a dispatcher can hold)"
                    ),
                ));
            }
        }
        self.parsed_protocols()?;
        check_seconds("hooks.delivery_deadline", self.delivery_deadline, false)?;
        if let Some(cap) = self.retry_after_max {
            check_seconds("hooks.retry_after_max", cap, true)?;
        }
        check_seconds("hooks.kill_grace", self.kill_grace, true)?;
        check_seconds("hooks.shutdown_deadline", self.shutdown_deadline, true)?;
        self.spool.validate()?;
        Ok(())
    }

    /// `protocols` parsed as [`Protocol`]s, in order; errors name `hooks.protocols[i]`.
    pub fn parsed_protocols(&self) -> Result<Vec<Protocol>, ConfigError> {
        if self.protocols.is_empty() {
            return Err(ConfigError::invalid(
                "hooks.protocols",
                "empty: no event would fire (to disable the hook, leave common.post_disconnect_hook empty)",
            ));
        }
        self.protocols
            .iter()
            .enumerate()
            .map(|(i, p)| {
                p.parse::<Protocol>().map_err(|_| {
                    let all: Vec<&str> = Protocol::ALL.iter().map(|p| p.as_str()).collect();
                    ConfigError::invalid(
                        format!("hooks.protocols[{i}]"),
                        format!(
                            "{p:?} is not a protocol: expected one of {}",
                            all.join(", ")
                        ),
                    )
                })
            })
            .collect()
    }
}

impl SpoolSection {
    /// Checks `hooks.spool`: `dir` free of NUL bytes (empty: off); `max_bytes` at least 64 KiB;
    /// `redeliver_min`, `redeliver_max` and `max_age` finite and `> 0`, with `redeliver_max >=
    /// redeliver_min`. `min_free_bytes` and `dead_max` may be 0. The rules apply whether or not
    /// the spool is on, so a wrong value is found before it is switched on.
    ///
    /// ```
    /// use hook_config::SpoolSection;
    ///
    /// let mut spool = SpoolSection::default();
    /// spool.redeliver_max = 10.0;
    /// spool.redeliver_min = 30.0;
    /// assert_eq!(
    ///     spool.validate().unwrap_err().to_string(),
    ///     "hooks.spool.redeliver_max: invalid duration 10: must be >= hooks.spool.redeliver_min (30)"
    /// );
    /// ```
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.dir.contains('\0') {
            return Err(ConfigError::invalid(
                "hooks.spool.dir",
                format!("invalid directory {:?}: NUL byte", self.dir),
            ));
        }
        if self.max_bytes < SpoolSection::MIN_MAX_BYTES {
            return Err(ConfigError::invalid(
                "hooks.spool.max_bytes",
                format!(
                    "invalid value {}: must be >= {} (64 KiB)",
                    self.max_bytes,
                    SpoolSection::MIN_MAX_BYTES
                ),
            ));
        }
        check_seconds("hooks.spool.redeliver_min", self.redeliver_min, false)?;
        check_seconds("hooks.spool.redeliver_max", self.redeliver_max, false)?;
        if self.redeliver_max < self.redeliver_min {
            return Err(ConfigError::invalid(
                "hooks.spool.redeliver_max",
                format!(
                    "invalid duration {}: must be >= hooks.spool.redeliver_min ({})",
                    self.redeliver_max, self.redeliver_min
                ),
            ));
        }
        check_seconds("hooks.spool.max_age", self.max_age, false)?;
        Ok(())
    }

    /// Makes a relative `dir` absolute: joined to `config_dir` (itself made absolute against the
    /// current directory) and cleaned lexically. Empty (off) and absolute values are kept.
    pub fn resolve_paths(&mut self, config_dir: &Path) {
        if !self.dir.is_empty() && !Path::new(&self.dir).is_absolute() {
            let base = std::path::absolute(config_dir).unwrap_or_else(|_| config_dir.to_path_buf());
            self.dir = clean_path(&base.join(&self.dir).to_string_lossy());
        }
    }
}

fn check_seconds(key: &str, value: f64, zero_ok: bool) -> Result<(), ConfigError> {
    let in_range = if zero_ok { value >= 0.0 } else { value > 0.0 };
    if in_range && Duration::try_from_secs_f64(value).is_ok() {
        return Ok(());
    }
    let bound = if zero_ok { ">= 0" } else { "> 0" };
    Err(ConfigError::invalid(
        key,
        format!("invalid duration {value}: must be a finite number of seconds {bound}"),
    ))
}

/// SFTPGo's `IsFileInputValid`: after a lexical clean, `""`, `.` and `..` are invalid. We also
/// reject a NUL byte, which no file name can hold.
pub(crate) fn check_file_input(key: &str, what: &str, path: &str) -> Result<(), ConfigError> {
    let cleaned = clean_path(path);
    if cleaned == "." || cleaned == ".." {
        return Err(ConfigError::invalid(
            key,
            format!("invalid {what} path {path:?}: it names no file"),
        ));
    }
    if path.contains('\0') {
        return Err(ConfigError::invalid(
            key,
            format!("invalid {what} path {path:?}: NUL byte"),
        ));
    }
    Ok(())
}

/// Go's `filepath.Clean` for `/`-separated paths: the shortest equivalent path by purely lexical
/// processing (`""` becomes `.`).
pub(crate) fn clean_path(path: &str) -> String {
    if path.is_empty() {
        return ".".to_owned();
    }
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|p| *p != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            other => parts.push(other),
        }
    }
    let body = parts.join("/");
    match (rooted, body.is_empty()) {
        (true, _) => format!("/{body}"),
        (false, true) => ".".to_owned(),
        (false, false) => body,
    }
}

/// RFC 9110 `token`: one or more `tchar`.
fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'!' | b'#'
                        | b'$'
                        | b'%'
                        | b'&'
                        | b'\''
                        | b'*'
                        | b'+'
                        | b'-'
                        | b'.'
                        | b'^'
                        | b'_'
                        | b'`'
                        | b'|'
                        | b'~'
                )
        })
}

/// Bytes a header value cannot carry: CR, LF, NUL (D10) and the other controls but HTAB, which
/// no HTTP client would send either.
fn is_forbidden_in_value(b: u8) -> bool {
    (b < 0x20 && b != b'\t') || b == 0x7f
}

fn describe(b: u8) -> String {
    match b {
        b'\r' => "a CR".to_owned(),
        b'\n' => "a LF".to_owned(),
        0 => "a NUL byte".to_owned(),
        other => format!("the control character 0x{other:02x}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::HOOK_KEY;

    #[test]
    fn clean_matches_go() {
        for (input, want) in [
            ("", "."),
            (".", "."),
            ("./", "."),
            ("..", ".."),
            ("a/..", "."),
            ("a/../..", ".."),
            ("../x.pem", "../x.pem"),
            ("/..", "/"),
            ("/a/./b//c/", "/a/b/c"),
            ("a/b/../../../c", "../c"),
        ] {
            assert_eq!(clean_path(input), want, "{input:?}");
        }
    }

    #[test]
    fn tokens() {
        assert!(is_token("X-Api-Key"));
        assert!(is_token("a!#$%&'*+-.^_`|~9"));
        for bad in ["", "a b", "a:b", "a\r", "é", "(x)"] {
            assert!(!is_token(bad), "{bad:?}");
        }
    }

    #[test]
    fn hook_key_is_checked_first() {
        let mut c = HookConfig::default();
        c.common.post_disconnect_hook = "rel".into();
        c.command.timeout = 0;
        assert_eq!(c.validate().unwrap_err().key(), HOOK_KEY);
    }
}
