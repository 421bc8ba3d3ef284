//! From the `config` crate's value tree (a parsed file) to a [`HookConfig`], as viper decodes:
//! keys case-insensitive, weak typing (see [`weak`](super::weak)), `null` leaves the default,
//! unknown keys of SFTPGo's sections ignored. Errors name the dotted key and never print a string
//! value of the wrong type's contents beyond what is safe (maps and lists are named, not shown).

use config::{Map, Value, ValueKind};

use super::weak;
use crate::types::{CommandEntry, HookConfig, HttpHeader, TlsKeyPair};
use crate::{ConfigError, ConfigErrorKind};

type Table = Map<String, Value>;

/// Decodes the four sections from a parsed file's root table; everything else is ignored.
pub(super) fn decode(root: &Table) -> Result<HookConfig, ConfigError> {
    let mut config = HookConfig::default();
    if let Some(common) = section(root, "common")? {
        Fields::new(common, "common").set(
            "post_disconnect_hook",
            string,
            &mut config.common.post_disconnect_hook,
        )?;
    }
    if let Some(http) = section(root, "http")? {
        decode_http(&Fields::new(http, "http"), &mut config)?;
    }
    if let Some(command) = section(root, "command")? {
        decode_command(&Fields::new(command, "command"), &mut config)?;
    }
    if let Some(hooks) = section(root, "hooks")? {
        decode_hooks(&Fields::new(hooks, "hooks"), &mut config)?;
    }
    if let Some(nats) = section(root, "nats")? {
        decode_nats(&Fields::new(nats, "nats"), &mut config)?;
    }
    Ok(config)
}

/// One table of the file with its dotted key: reads a field by name (case-insensitive), converts
/// it and names it in errors. An absent or `null` field leaves the destination as it is.
struct Fields<'t> {
    table: &'t Table,
    key: String,
}

impl<'t> Fields<'t> {
    fn new(table: &'t Table, key: impl Into<String>) -> Self {
        Fields {
            table,
            key: key.into(),
        }
    }

    /// Sets `dst` from the field `name`, converted by `convert`.
    fn set<T>(
        &self,
        name: &str,
        convert: impl FnOnce(&Value, &str) -> Result<T, ConfigError>,
        dst: &mut T,
    ) -> Result<(), ConfigError> {
        if let Some(v) = lookup(self.table, &self.key, name)? {
            *dst = convert(v, &format!("{}.{name}", self.key))?;
        }
        Ok(())
    }

    /// Sets `dst` from the list of tables `name`, each decoded by `entry` with its indexed key
    /// (`http.headers[2]`).
    fn set_entries<T>(
        &self,
        name: &str,
        entry: impl Fn(&Fields<'_>) -> Result<T, ConfigError>,
        dst: &mut Vec<T>,
    ) -> Result<(), ConfigError> {
        self.set(
            name,
            |v, key| {
                table_list(v, key)?
                    .into_iter()
                    .enumerate()
                    .map(|(i, table)| entry(&Fields::new(table, format!("{key}[{i}]"))))
                    .collect()
            },
            dst,
        )
    }
}

fn decode_http(t: &Fields<'_>, config: &mut HookConfig) -> Result<(), ConfigError> {
    let http = &mut config.http;
    t.set("timeout", float, &mut http.timeout)?;
    t.set("retry_wait_min", int, &mut http.retry_wait_min)?;
    t.set("retry_wait_max", int, &mut http.retry_wait_max)?;
    t.set("retry_max", int, &mut http.retry_max)?;
    t.set("ca_certificates", string_list, &mut http.ca_certificates)?;
    t.set_entries(
        "certificates",
        |e| {
            let mut pair = TlsKeyPair::default();
            e.set("cert", string, &mut pair.cert)?;
            e.set("key", string, &mut pair.key)?;
            Ok(pair)
        },
        &mut http.certificates,
    )?;
    t.set("skip_tls_verify", boolean, &mut http.skip_tls_verify)?;
    t.set_entries(
        "headers",
        |e| {
            let mut header = HttpHeader::default();
            e.set("key", string, &mut header.key)?;
            e.set("value", string, &mut header.value)?;
            e.set("url", string, &mut header.url)?;
            Ok(header)
        },
        &mut http.headers,
    )
}

fn decode_command(t: &Fields<'_>, config: &mut HookConfig) -> Result<(), ConfigError> {
    let command = &mut config.command;
    t.set("timeout", int, &mut command.timeout)?;
    t.set("env", string_list, &mut command.env)?;
    t.set_entries(
        "commands",
        |e| {
            let mut c = CommandEntry::default();
            e.set("path", string, &mut c.path)?;
            e.set("timeout", int, &mut c.timeout)?;
            e.set("env", string_list, &mut c.env)?;
            e.set("args", string_list, &mut c.args)?;
            e.set("hook", string, &mut c.hook)?;
            Ok(c)
        },
        &mut command.commands,
    )
}

const HOOKS_KEYS: [&str; 9] = [
    "queue_capacity",
    "max_in_flight",
    "protocols",
    "delivery_deadline",
    "retry_after_max",
    "kill_grace",
    "output_cap",
    "shutdown_deadline",
    "spool",
];

const SPOOL_KEYS: [&str; 7] = [
    "dir",
    "max_bytes",
    "min_free_bytes",
    "redeliver_min",
    "redeliver_max",
    "max_age",
    "dead_max",
];

/// An unknown key of one of our own tables is an error naming it.
fn check_known(t: &Fields<'_>, known: &[&str]) -> Result<(), ConfigError> {
    for name in t.table.keys() {
        if !known.iter().any(|k| k.eq_ignore_ascii_case(name)) {
            return Err(ConfigError::invalid(
                format!("{}.{name}", t.key),
                format!("unknown key; expected one of {}", known.join(", ")),
            ));
        }
    }
    Ok(())
}

/// Our own section: unlike SFTPGo's sections, an unknown key here is an error (a typo would
/// otherwise be silently ignored).
fn decode_hooks(t: &Fields<'_>, config: &mut HookConfig) -> Result<(), ConfigError> {
    check_known(t, &HOOKS_KEYS)?;
    let hooks = &mut config.hooks;
    t.set("queue_capacity", uint, &mut hooks.queue_capacity)?;
    t.set("max_in_flight", uint, &mut hooks.max_in_flight)?;
    t.set("protocols", string_list, &mut hooks.protocols)?;
    t.set("delivery_deadline", float, &mut hooks.delivery_deadline)?;
    t.set(
        "retry_after_max",
        |v, key| float(v, key).map(Some),
        &mut hooks.retry_after_max,
    )?;
    t.set("kill_grace", float, &mut hooks.kill_grace)?;
    t.set("output_cap", uint, &mut hooks.output_cap)?;
    t.set("shutdown_deadline", float, &mut hooks.shutdown_deadline)?;
    if let Some(spool) = lookup(t.table, "hooks", "spool")? {
        let ValueKind::Table(table) = &spool.kind else {
            return Err(type_error("hooks.spool", "a table", spool));
        };
        let s = Fields::new(table, "hooks.spool");
        check_known(&s, &SPOOL_KEYS)?;
        let spool = &mut hooks.spool;
        s.set("dir", string, &mut spool.dir)?;
        s.set("max_bytes", uint64, &mut spool.max_bytes)?;
        s.set("min_free_bytes", uint64, &mut spool.min_free_bytes)?;
        s.set("redeliver_min", float, &mut spool.redeliver_min)?;
        s.set("redeliver_max", float, &mut spool.redeliver_max)?;
        s.set("max_age", float, &mut spool.max_age)?;
        s.set("dead_max", uint, &mut spool.dead_max)?;
    }
    Ok(())
}

/// Every key of our `nats` section.
pub(super) const NATS_KEYS: [&str; 13] = [
    "subject_prefix",
    "stream",
    "create_stream",
    "replicas",
    "duplicate_window",
    "ack_timeout",
    "credentials_file",
    "token",
    "ca_certificates",
    "certificates",
    "skip_tls_verify",
    "consumer",
    "ack_wait",
];

/// Our `nats` section: an unknown key is an error, as in `hooks`. `nats.token` is a secret: a
/// value of the wrong type is named, not shown.
fn decode_nats(t: &Fields<'_>, config: &mut HookConfig) -> Result<(), ConfigError> {
    for name in t.table.keys() {
        if !NATS_KEYS.iter().any(|k| k.eq_ignore_ascii_case(name)) {
            return Err(ConfigError::invalid(
                format!("nats.{name}"),
                format!("unknown key; expected one of {}", NATS_KEYS.join(", ")),
            ));
        }
    }
    let nats = &mut config.nats;
    t.set("subject_prefix", string, &mut nats.subject_prefix)?;
    t.set("stream", string, &mut nats.stream)?;
    t.set("create_stream", boolean, &mut nats.create_stream)?;
    t.set("replicas", uint, &mut nats.replicas)?;
    t.set("duplicate_window", float, &mut nats.duplicate_window)?;
    t.set("ack_timeout", float, &mut nats.ack_timeout)?;
    t.set("credentials_file", string, &mut nats.credentials_file)?;
    t.set("token", string, &mut nats.token)?;
    t.set("ca_certificates", string_list, &mut nats.ca_certificates)?;
    t.set_entries(
        "certificates",
        |e| {
            let mut pair = TlsKeyPair::default();
            e.set("cert", string, &mut pair.cert)?;
            e.set("key", string, &mut pair.key)?;
            Ok(pair)
        },
        &mut nats.certificates,
    )?;
    t.set("skip_tls_verify", boolean, &mut nats.skip_tls_verify)?;
    t.set("consumer", string, &mut nats.consumer)?;
    t.set("ack_wait", float, &mut nats.ack_wait)
}

/// A top-level section: absent or `null` is `None`; anything but a table is an error.
fn section<'v>(root: &'v Table, name: &str) -> Result<Option<&'v Table>, ConfigError> {
    match lookup(root, "", name)? {
        None => Ok(None),
        Some(v) => match &v.kind {
            ValueKind::Table(t) => Ok(Some(t)),
            _ => Err(type_error(name, "a table", v)),
        },
    }
}

/// Finds `name` in `table` ignoring ASCII case, as viper does. `null` counts as absent. Two keys
/// that differ only in case are an error (viper would pick one at random).
fn lookup<'v>(
    table: &'v Table,
    parent: &str,
    name: &str,
) -> Result<Option<&'v Value>, ConfigError> {
    let mut found: Option<(&String, &Value)> = None;
    for (k, v) in table {
        if k.eq_ignore_ascii_case(name) {
            if let Some((first, _)) = found {
                let key = if parent.is_empty() {
                    name.to_owned()
                } else {
                    format!("{parent}.{name}")
                };
                return Err(ConfigError::invalid(
                    key,
                    format!("given twice, as {first:?} and {k:?} (keys are case-insensitive)"),
                ));
            }
            found = Some((k, v));
        }
    }
    Ok(found
        .map(|(_, v)| v)
        .filter(|v| !matches!(v.kind, ValueKind::Nil)))
}

fn describe(v: &Value) -> String {
    match &v.kind {
        ValueKind::Nil => "null".to_owned(),
        ValueKind::Boolean(b) => format!("the boolean {b}"),
        ValueKind::I64(n) => format!("the integer {n}"),
        ValueKind::I128(n) => format!("the integer {n}"),
        ValueKind::U64(n) => format!("the integer {n}"),
        ValueKind::U128(n) => format!("the integer {n}"),
        ValueKind::Float(f) => format!("the number {f}"),
        ValueKind::String(s) => format!("the string {s:?}"),
        ValueKind::Table(_) => "a table".to_owned(),
        ValueKind::Array(_) => "a list".to_owned(),
    }
}

/// A value of the wrong type. Under `http.headers` a string is not shown: it may be a header
/// line written as text (`"Authorization: Bearer ..."`), value included (D11).
fn type_error(key: &str, expected: &str, v: &Value) -> ConfigError {
    let found = match &v.kind {
        ValueKind::String(_) if key.starts_with("http.headers") || key == "nats.token" => {
            "a string (not shown: it may hold a header value)".to_owned()
        }
        _ => describe(v),
    };
    ConfigError::new(
        ConfigErrorKind::Parse,
        key,
        format!("expected {expected}, found {found}"),
    )
}

/// A string; numbers and booleans become text as Go's weak decoding writes them (`true` is `"1"`).
fn string(v: &Value, key: &str) -> Result<String, ConfigError> {
    Ok(match &v.kind {
        ValueKind::String(s) => s.clone(),
        ValueKind::Boolean(b) => if *b { "1" } else { "0" }.to_owned(),
        ValueKind::I64(n) => n.to_string(),
        ValueKind::I128(n) => n.to_string(),
        ValueKind::U64(n) => n.to_string(),
        ValueKind::U128(n) => n.to_string(),
        ValueKind::Float(f) => weak::float_to_string(*f),
        ValueKind::Nil | ValueKind::Table(_) | ValueKind::Array(_) => {
            return Err(type_error(key, "a string", v));
        }
    })
}

/// An integer: floats are truncated toward zero, booleans are 1/0, strings are read by Go's
/// `ParseInt(s, 0, 64)` (`""` is 0).
fn int(v: &Value, key: &str) -> Result<i64, ConfigError> {
    let out = match &v.kind {
        ValueKind::I64(n) => Some(*n),
        ValueKind::I128(n) => i64::try_from(*n).ok(),
        ValueKind::U64(n) => i64::try_from(*n).ok(),
        ValueKind::U128(n) => i64::try_from(*n).ok(),
        ValueKind::Float(f) if f.is_finite() && f.abs() < 9.2e18 => Some(f.trunc() as i64),
        ValueKind::Float(_) => None,
        ValueKind::Boolean(b) => Some(i64::from(*b)),
        ValueKind::String(s) => weak::parse_int(s),
        ValueKind::Nil | ValueKind::Table(_) | ValueKind::Array(_) => None,
    };
    out.ok_or_else(|| type_error(key, "an integer", v))
}

/// A non-negative integer (our own section).
fn uint(v: &Value, key: &str) -> Result<usize, ConfigError> {
    let n = int(v, key)?;
    usize::try_from(n).map_err(|_| type_error(key, "a non-negative integer", v))
}

/// A non-negative 64-bit integer (byte counts of our own section).
fn uint64(v: &Value, key: &str) -> Result<u64, ConfigError> {
    let n = int(v, key)?;
    u64::try_from(n).map_err(|_| type_error(key, "a non-negative integer", v))
}

/// A float: integers and booleans convert, strings are read by `ParseFloat` (`""` is 0).
fn float(v: &Value, key: &str) -> Result<f64, ConfigError> {
    let out = match &v.kind {
        ValueKind::Float(f) => Some(*f),
        ValueKind::I64(n) => Some(*n as f64),
        ValueKind::I128(n) => Some(*n as f64),
        ValueKind::U64(n) => Some(*n as f64),
        ValueKind::U128(n) => Some(*n as f64),
        ValueKind::Boolean(b) => Some(if *b { 1.0 } else { 0.0 }),
        ValueKind::String(s) => weak::parse_float(s),
        ValueKind::Nil | ValueKind::Table(_) | ValueKind::Array(_) => None,
    };
    out.ok_or_else(|| type_error(key, "a number", v))
}

/// A boolean: numbers are true when non-zero, strings are read by `ParseBool` (`""` is false).
fn boolean(v: &Value, key: &str) -> Result<bool, ConfigError> {
    let out = match &v.kind {
        ValueKind::Boolean(b) => Some(*b),
        ValueKind::I64(n) => Some(*n != 0),
        ValueKind::I128(n) => Some(*n != 0),
        ValueKind::U64(n) => Some(*n != 0),
        ValueKind::U128(n) => Some(*n != 0),
        ValueKind::Float(f) => Some(*f != 0.0),
        ValueKind::String(s) => weak::parse_bool(s),
        ValueKind::Nil | ValueKind::Table(_) | ValueKind::Array(_) => None,
    };
    out.ok_or_else(|| type_error(key, "a boolean", v))
}

/// A list of strings: a list (each item weakly a string), or one string split on `,` with items
/// trimmed and empty items dropped (D12, as for environment variables), or another scalar as a
/// one-item list.
fn string_list(v: &Value, key: &str) -> Result<Vec<String>, ConfigError> {
    match &v.kind {
        ValueKind::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| string(item, &format!("{key}[{i}]")))
            .collect(),
        ValueKind::String(s) => Ok(weak::split_list(s)),
        ValueKind::Table(_) => Err(type_error(key, "a list of strings", v)),
        _ => Ok(vec![string(v, key)?]),
    }
}

/// A list of tables; a single table counts as a one-item list (viper's weak rule).
fn table_list<'v>(v: &'v Value, key: &str) -> Result<Vec<&'v Table>, ConfigError> {
    match &v.kind {
        ValueKind::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| match &item.kind {
                ValueKind::Table(t) => Ok(t),
                _ => Err(type_error(&format!("{key}[{i}]"), "a table", item)),
            })
            .collect(),
        ValueKind::Table(t) => Ok(vec![t]),
        _ => Err(type_error(key, "a list of tables", v)),
    }
}
