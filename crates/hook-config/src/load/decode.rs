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
    if let Some(common) = section(root, "common")?
        && let Some(v) = lookup(common, "common", "post_disconnect_hook")?
    {
        config.common.post_disconnect_hook = string(v, "common.post_disconnect_hook")?;
    }
    if let Some(http) = section(root, "http")? {
        decode_http(http, &mut config)?;
    }
    if let Some(command) = section(root, "command")? {
        decode_command(command, &mut config)?;
    }
    if let Some(hooks) = section(root, "hooks")? {
        decode_hooks(hooks, &mut config)?;
    }
    Ok(config)
}

fn decode_http(t: &Table, config: &mut HookConfig) -> Result<(), ConfigError> {
    let http = &mut config.http;
    if let Some(v) = lookup(t, "http", "timeout")? {
        http.timeout = float(v, "http.timeout")?;
    }
    if let Some(v) = lookup(t, "http", "retry_wait_min")? {
        http.retry_wait_min = int(v, "http.retry_wait_min")?;
    }
    if let Some(v) = lookup(t, "http", "retry_wait_max")? {
        http.retry_wait_max = int(v, "http.retry_wait_max")?;
    }
    if let Some(v) = lookup(t, "http", "retry_max")? {
        http.retry_max = int(v, "http.retry_max")?;
    }
    if let Some(v) = lookup(t, "http", "ca_certificates")? {
        http.ca_certificates = string_list(v, "http.ca_certificates")?;
    }
    if let Some(v) = lookup(t, "http", "certificates")? {
        http.certificates = table_list(v, "http.certificates")?
            .into_iter()
            .enumerate()
            .map(|(i, entry)| {
                let parent = format!("http.certificates[{i}]");
                let mut pair = TlsKeyPair::default();
                if let Some(v) = lookup(entry, &parent, "cert")? {
                    pair.cert = string(v, &format!("{parent}.cert"))?;
                }
                if let Some(v) = lookup(entry, &parent, "key")? {
                    pair.key = string(v, &format!("{parent}.key"))?;
                }
                Ok(pair)
            })
            .collect::<Result<_, ConfigError>>()?;
    }
    if let Some(v) = lookup(t, "http", "skip_tls_verify")? {
        http.skip_tls_verify = boolean(v, "http.skip_tls_verify")?;
    }
    if let Some(v) = lookup(t, "http", "headers")? {
        http.headers = table_list(v, "http.headers")?
            .into_iter()
            .enumerate()
            .map(|(i, entry)| {
                let parent = format!("http.headers[{i}]");
                let mut header = HttpHeader::default();
                if let Some(v) = lookup(entry, &parent, "key")? {
                    header.key = string(v, &format!("{parent}.key"))?;
                }
                if let Some(v) = lookup(entry, &parent, "value")? {
                    header.value = string(v, &format!("{parent}.value"))?;
                }
                if let Some(v) = lookup(entry, &parent, "url")? {
                    header.url = string(v, &format!("{parent}.url"))?;
                }
                Ok(header)
            })
            .collect::<Result<_, ConfigError>>()?;
    }
    Ok(())
}

fn decode_command(t: &Table, config: &mut HookConfig) -> Result<(), ConfigError> {
    let command = &mut config.command;
    if let Some(v) = lookup(t, "command", "timeout")? {
        command.timeout = int(v, "command.timeout")?;
    }
    if let Some(v) = lookup(t, "command", "env")? {
        command.env = string_list(v, "command.env")?;
    }
    if let Some(v) = lookup(t, "command", "commands")? {
        command.commands = table_list(v, "command.commands")?
            .into_iter()
            .enumerate()
            .map(|(i, entry)| {
                let parent = format!("command.commands[{i}]");
                let key = |field: &str| format!("{parent}.{field}");
                let mut c = CommandEntry::default();
                if let Some(v) = lookup(entry, &parent, "path")? {
                    c.path = string(v, &key("path"))?;
                }
                if let Some(v) = lookup(entry, &parent, "timeout")? {
                    c.timeout = int(v, &key("timeout"))?;
                }
                if let Some(v) = lookup(entry, &parent, "env")? {
                    c.env = string_list(v, &key("env"))?;
                }
                if let Some(v) = lookup(entry, &parent, "args")? {
                    c.args = string_list(v, &key("args"))?;
                }
                if let Some(v) = lookup(entry, &parent, "hook")? {
                    c.hook = string(v, &key("hook"))?;
                }
                Ok(c)
            })
            .collect::<Result<_, ConfigError>>()?;
    }
    Ok(())
}

const HOOKS_KEYS: [&str; 8] = [
    "queue_capacity",
    "max_in_flight",
    "protocols",
    "delivery_deadline",
    "retry_after_max",
    "kill_grace",
    "output_cap",
    "shutdown_deadline",
];

/// Our own section: unlike SFTPGo's sections, an unknown key here is an error (a typo would
/// otherwise be silently ignored).
fn decode_hooks(t: &Table, config: &mut HookConfig) -> Result<(), ConfigError> {
    for name in t.keys() {
        if !HOOKS_KEYS.iter().any(|k| k.eq_ignore_ascii_case(name)) {
            return Err(ConfigError::invalid(
                format!("hooks.{name}"),
                format!("unknown key; expected one of {}", HOOKS_KEYS.join(", ")),
            ));
        }
    }
    let hooks = &mut config.hooks;
    if let Some(v) = lookup(t, "hooks", "queue_capacity")? {
        hooks.queue_capacity = uint(v, "hooks.queue_capacity")?;
    }
    if let Some(v) = lookup(t, "hooks", "max_in_flight")? {
        hooks.max_in_flight = uint(v, "hooks.max_in_flight")?;
    }
    if let Some(v) = lookup(t, "hooks", "protocols")? {
        hooks.protocols = string_list(v, "hooks.protocols")?;
    }
    if let Some(v) = lookup(t, "hooks", "delivery_deadline")? {
        hooks.delivery_deadline = float(v, "hooks.delivery_deadline")?;
    }
    if let Some(v) = lookup(t, "hooks", "retry_after_max")? {
        hooks.retry_after_max = Some(float(v, "hooks.retry_after_max")?);
    }
    if let Some(v) = lookup(t, "hooks", "kill_grace")? {
        hooks.kill_grace = float(v, "hooks.kill_grace")?;
    }
    if let Some(v) = lookup(t, "hooks", "output_cap")? {
        hooks.output_cap = uint(v, "hooks.output_cap")?;
    }
    if let Some(v) = lookup(t, "hooks", "shutdown_deadline")? {
        hooks.shutdown_deadline = float(v, "hooks.shutdown_deadline")?;
    }
    Ok(())
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
        ValueKind::String(_) if key.starts_with("http.headers") => {
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
