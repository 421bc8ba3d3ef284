//! `SFTPGO_` environment overrides (spec 5.2 plus D12), in one place.
//!
//! The `config` crate's `Environment` source cannot express these rules: SFTPGo's names join the
//! prefix with `_` but nested keys with `__`, lists of structs take an index
//! (`SFTPGO_HTTP__HEADERS__3__KEY`) with a merge-and-compact rule, an empty value must count as
//! set (the zero value), and list items must be trimmed. So this module reads the variables
//! itself and applies them to the already-decoded file configuration:
//!
//! * scalars replace the file's value; integers, floats and booleans are read with viper's weak
//!   rules (`""` is the zero value), and a malformed value is an error naming the variable;
//! * string lists are split on `,`, items trimmed, empty items dropped (D12);
//! * indexed entries, for any index, are merged per index in ascending order: start from the
//!   existing element `i` if there is one, set the fields whose variables are present, keep the
//!   result only if it is complete (header: key and value; certificate: cert and key; command:
//!   path), replacing element `i` in place or else appending (so indices compact);
//! * other `SFTPGO_` variables belong to other SFTPGo sections and are ignored, except that a
//!   malformed name under one of our list prefixes, or an unknown `SFTPGO_HOOKS__` name, is an
//!   error (it can only be a typo).

use std::collections::BTreeMap;

use super::weak;
use crate::types::{CommandEntry, HookConfig, HttpHeader, TlsKeyPair};
use crate::{ConfigError, ConfigErrorKind};

/// The prefix of every variable SFTPGo reads.
pub(crate) const PREFIX: &str = "SFTPGO_";

const HEADERS: &str = "SFTPGO_HTTP__HEADERS";
const CERTIFICATES: &str = "SFTPGO_HTTP__CERTIFICATES";
const COMMANDS: &str = "SFTPGO_COMMAND__COMMANDS";
const HOOKS: &str = "SFTPGO_HOOKS__";
const NATS: &str = "SFTPGO_NATS__";
const NATS_CERTIFICATES: &str = "SFTPGO_NATS__CERTIFICATES";

const HEADER_FIELDS: &[&str] = &["KEY", "VALUE", "URL"];
const CERTIFICATE_FIELDS: &[&str] = &["CERT", "KEY"];
const COMMAND_FIELDS: &[&str] = &["PATH", "TIMEOUT", "ENV", "ARGS", "HOOK"];

/// Indexed fields of one list: index -> field -> (variable name, value).
type Indexed<'e> = BTreeMap<usize, BTreeMap<&'static str, (&'e str, &'e str)>>;

/// Applies every `SFTPGO_` override found in `env` to `config`.
pub(super) fn apply(
    config: &mut HookConfig,
    env: &BTreeMap<String, String>,
) -> Result<(), ConfigError> {
    let mut headers = Indexed::new();
    let mut certificates = Indexed::new();
    let mut commands = Indexed::new();
    let mut nats_certificates = Indexed::new();
    for (name, value) in env.range(PREFIX.to_owned()..) {
        if !name.starts_with(PREFIX) {
            break;
        }
        let (name, value) = (name.as_str(), value.as_str());
        if let Some(rest) = list_rest(name, HEADERS) {
            collect(&mut headers, name, rest, value, HEADERS, HEADER_FIELDS)?;
        } else if let Some(rest) = list_rest(name, CERTIFICATES) {
            collect(
                &mut certificates,
                name,
                rest,
                value,
                CERTIFICATES,
                CERTIFICATE_FIELDS,
            )?;
        } else if let Some(rest) = list_rest(name, COMMANDS) {
            collect(&mut commands, name, rest, value, COMMANDS, COMMAND_FIELDS)?;
        } else if let Some(rest) = list_rest(name, NATS_CERTIFICATES) {
            collect(
                &mut nats_certificates,
                name,
                rest,
                value,
                NATS_CERTIFICATES,
                CERTIFICATE_FIELDS,
            )?;
        } else if name.starts_with(NATS) {
            apply_nats(config, name, value)?;
        } else {
            apply_scalar(config, name, value)?;
        }
    }

    merge(
        &mut config.http.headers,
        headers,
        |h: &mut HttpHeader, field, _, value| {
            match field {
                "KEY" => h.key = value.to_owned(),
                "VALUE" => h.value = value.to_owned(),
                _ => h.url = value.to_owned(),
            }
            Ok(())
        },
        |h| !h.key.is_empty() && !h.value.is_empty(),
    )?;

    merge(
        &mut config.http.certificates,
        certificates,
        |c: &mut TlsKeyPair, field, _, value| {
            match field {
                "CERT" => c.cert = value.to_owned(),
                _ => c.key = value.to_owned(),
            }
            Ok(())
        },
        |c| !c.cert.is_empty() && !c.key.is_empty(),
    )?;

    merge(
        &mut config.nats.certificates,
        nats_certificates,
        |c: &mut TlsKeyPair, field, _, value| {
            match field {
                "CERT" => c.cert = value.to_owned(),
                _ => c.key = value.to_owned(),
            }
            Ok(())
        },
        |c| !c.cert.is_empty() && !c.key.is_empty(),
    )?;

    merge(
        &mut config.command.commands,
        commands,
        |c: &mut CommandEntry, field, var, value| {
            match field {
                "PATH" => c.path = value.to_owned(),
                "TIMEOUT" => {
                    let trimmed = value.trim();
                    c.timeout = if trimmed.is_empty() {
                        0
                    } else {
                        trimmed.parse::<i32>().map(i64::from).map_err(|_| {
                            malformed(
                                var,
                                value,
                                "an integer (32-bit, decimal)",
                                "command.commands[].timeout",
                            )
                        })?
                    };
                }
                "ENV" => c.env = weak::split_list(value),
                "ARGS" => c.args = weak::split_list(value),
                _ => c.hook = value.trim().to_owned(),
            }
            Ok(())
        },
        |c| !c.path.is_empty(),
    )?;
    Ok(())
}

/// `SFTPGO_HTTP__HEADERS__3__KEY` with list `SFTPGO_HTTP__HEADERS` gives `Some("3__KEY")`; the
/// bare list name (or the list name followed by anything else) gives `Some("")`-like input that
/// [`collect`] rejects.
fn list_rest<'n>(name: &'n str, list: &str) -> Option<&'n str> {
    let rest = name.strip_prefix(list)?;
    if rest.is_empty() {
        return Some(rest);
    }
    rest.strip_prefix("__")
}

fn collect<'e>(
    into: &mut Indexed<'e>,
    name: &'e str,
    rest: &str,
    value: &'e str,
    list: &str,
    fields: &[&'static str],
) -> Result<(), ConfigError> {
    let bad = || {
        ConfigError::invalid(
            name,
            format!(
                "not a valid variable name: expected {list}__<index>__{} (index: 0, 1, 2, ...)",
                fields.join("|")
            ),
        )
    };
    let (index, field) = rest.split_once("__").ok_or_else(bad)?;
    let canonical = !index.is_empty()
        && index.bytes().all(|b| b.is_ascii_digit())
        && (index == "0" || !index.starts_with('0'));
    if !canonical {
        return Err(bad());
    }
    let index: usize = index.parse().map_err(|_| bad())?;
    let field = fields
        .iter()
        .copied()
        .find(|f| *f == field)
        .ok_or_else(bad)?;
    into.entry(index).or_default().insert(field, (name, value));
    Ok(())
}

fn merge<T: Clone + Default>(
    list: &mut Vec<T>,
    indexed: Indexed<'_>,
    set: impl Fn(&mut T, &'static str, &str, &str) -> Result<(), ConfigError>,
    complete: impl Fn(&T) -> bool,
) -> Result<(), ConfigError> {
    for (index, fields) in indexed {
        let existed = index < list.len();
        let mut item = if existed {
            list[index].clone()
        } else {
            T::default()
        };
        for (field, (var, value)) in fields {
            set(&mut item, field, var, value)?;
        }
        if complete(&item) {
            if existed {
                list[index] = item;
            } else {
                list.push(item);
            }
        }
    }
    Ok(())
}

fn malformed(var: &str, value: &str, expected: &str, key: &str) -> ConfigError {
    ConfigError::new(
        ConfigErrorKind::Parse,
        var,
        format!("{value:?} is not {expected} (sets {key})"),
    )
}

fn int(var: &str, value: &str, key: &str) -> Result<i64, ConfigError> {
    weak::parse_int(value).ok_or_else(|| malformed(var, value, "an integer", key))
}

fn uint(var: &str, value: &str, key: &str) -> Result<usize, ConfigError> {
    let n = weak::parse_int(value).and_then(|n| usize::try_from(n).ok());
    n.ok_or_else(|| malformed(var, value, "a non-negative integer", key))
}

fn uint64(var: &str, value: &str, key: &str) -> Result<u64, ConfigError> {
    let n = weak::parse_int(value).and_then(|n| u64::try_from(n).ok());
    n.ok_or_else(|| malformed(var, value, "a non-negative integer", key))
}

fn float(var: &str, value: &str, key: &str) -> Result<f64, ConfigError> {
    weak::parse_float(value).ok_or_else(|| malformed(var, value, "a number", key))
}

fn boolean(var: &str, value: &str, key: &str) -> Result<bool, ConfigError> {
    weak::parse_bool(value).ok_or_else(|| malformed(var, value, "a boolean", key))
}

/// Every scalar and string-list variable, with the key it sets.
pub(crate) const SCALARS: [(&str, &str); 24] = [
    (
        "SFTPGO_COMMON__POST_DISCONNECT_HOOK",
        "common.post_disconnect_hook",
    ),
    ("SFTPGO_HTTP__TIMEOUT", "http.timeout"),
    ("SFTPGO_HTTP__RETRY_WAIT_MIN", "http.retry_wait_min"),
    ("SFTPGO_HTTP__RETRY_WAIT_MAX", "http.retry_wait_max"),
    ("SFTPGO_HTTP__RETRY_MAX", "http.retry_max"),
    ("SFTPGO_HTTP__CA_CERTIFICATES", "http.ca_certificates"),
    ("SFTPGO_HTTP__SKIP_TLS_VERIFY", "http.skip_tls_verify"),
    ("SFTPGO_COMMAND__TIMEOUT", "command.timeout"),
    ("SFTPGO_COMMAND__ENV", "command.env"),
    ("SFTPGO_HOOKS__QUEUE_CAPACITY", "hooks.queue_capacity"),
    ("SFTPGO_HOOKS__MAX_IN_FLIGHT", "hooks.max_in_flight"),
    ("SFTPGO_HOOKS__PROTOCOLS", "hooks.protocols"),
    ("SFTPGO_HOOKS__DELIVERY_DEADLINE", "hooks.delivery_deadline"),
    ("SFTPGO_HOOKS__RETRY_AFTER_MAX", "hooks.retry_after_max"),
    ("SFTPGO_HOOKS__KILL_GRACE", "hooks.kill_grace"),
    ("SFTPGO_HOOKS__OUTPUT_CAP", "hooks.output_cap"),
    ("SFTPGO_HOOKS__SHUTDOWN_DEADLINE", "hooks.shutdown_deadline"),
    ("SFTPGO_HOOKS__SPOOL__DIR", "hooks.spool.dir"),
    ("SFTPGO_HOOKS__SPOOL__MAX_BYTES", "hooks.spool.max_bytes"),
    (
        "SFTPGO_HOOKS__SPOOL__MIN_FREE_BYTES",
        "hooks.spool.min_free_bytes",
    ),
    (
        "SFTPGO_HOOKS__SPOOL__REDELIVER_MIN",
        "hooks.spool.redeliver_min",
    ),
    (
        "SFTPGO_HOOKS__SPOOL__REDELIVER_MAX",
        "hooks.spool.redeliver_max",
    ),
    ("SFTPGO_HOOKS__SPOOL__MAX_AGE", "hooks.spool.max_age"),
    ("SFTPGO_HOOKS__SPOOL__DEAD_MAX", "hooks.spool.dead_max"),
];

/// Every variable of our `nats` section but the indexed `SFTPGO_NATS__CERTIFICATES__<i>__CERT|KEY`,
/// with the key it sets.
pub(crate) const NATS_SCALARS: [(&str, &str); 12] = [
    ("SFTPGO_NATS__SUBJECT_PREFIX", "nats.subject_prefix"),
    ("SFTPGO_NATS__STREAM", "nats.stream"),
    ("SFTPGO_NATS__CREATE_STREAM", "nats.create_stream"),
    ("SFTPGO_NATS__REPLICAS", "nats.replicas"),
    ("SFTPGO_NATS__DUPLICATE_WINDOW", "nats.duplicate_window"),
    ("SFTPGO_NATS__ACK_TIMEOUT", "nats.ack_timeout"),
    ("SFTPGO_NATS__CREDENTIALS_FILE", "nats.credentials_file"),
    ("SFTPGO_NATS__TOKEN", "nats.token"),
    ("SFTPGO_NATS__CA_CERTIFICATES", "nats.ca_certificates"),
    ("SFTPGO_NATS__SKIP_TLS_VERIFY", "nats.skip_tls_verify"),
    ("SFTPGO_NATS__CONSUMER", "nats.consumer"),
    ("SFTPGO_NATS__ACK_WAIT", "nats.ack_wait"),
];

fn apply_nats(c: &mut HookConfig, var: &str, value: &str) -> Result<(), ConfigError> {
    let Some((_, key)) = NATS_SCALARS.iter().find(|(name, _)| *name == var) else {
        let known: Vec<&str> = NATS_SCALARS.iter().map(|(n, _)| *n).collect();
        return Err(ConfigError::invalid(
            var,
            format!(
                "unknown variable; expected one of {}, or {NATS_CERTIFICATES}__<index>__CERT|KEY",
                known.join(", ")
            ),
        ));
    };
    let key = *key;
    let n = &mut c.nats;
    match key {
        "nats.subject_prefix" => n.subject_prefix = value.to_owned(),
        "nats.stream" => n.stream = value.to_owned(),
        "nats.create_stream" => n.create_stream = boolean(var, value, key)?,
        "nats.replicas" => n.replicas = uint(var, value, key)?,
        "nats.duplicate_window" => n.duplicate_window = float(var, value, key)?,
        "nats.ack_timeout" => n.ack_timeout = float(var, value, key)?,
        "nats.credentials_file" => n.credentials_file = value.to_owned(),
        "nats.token" => n.token = value.to_owned(),
        "nats.ca_certificates" => n.ca_certificates = weak::split_list(value),
        "nats.skip_tls_verify" => n.skip_tls_verify = boolean(var, value, key)?,
        "nats.consumer" => n.consumer = value.to_owned(),
        _ => n.ack_wait = float(var, value, key)?,
    }
    Ok(())
}

fn apply_scalar(c: &mut HookConfig, var: &str, value: &str) -> Result<(), ConfigError> {
    let Some((_, key)) = SCALARS.iter().find(|(name, _)| *name == var) else {
        if var.starts_with(HOOKS) {
            let known: Vec<&str> = SCALARS
                .iter()
                .map(|(n, _)| *n)
                .filter(|n| n.starts_with(HOOKS))
                .collect();
            return Err(ConfigError::invalid(
                var,
                format!("unknown variable; expected one of {}", known.join(", ")),
            ));
        }
        return Ok(());
    };
    let key = *key;
    match key {
        "common.post_disconnect_hook" => c.common.post_disconnect_hook = value.to_owned(),
        "http.timeout" => c.http.timeout = float(var, value, key)?,
        "http.retry_wait_min" => c.http.retry_wait_min = int(var, value, key)?,
        "http.retry_wait_max" => c.http.retry_wait_max = int(var, value, key)?,
        "http.retry_max" => c.http.retry_max = int(var, value, key)?,
        "http.ca_certificates" => c.http.ca_certificates = weak::split_list(value),
        "http.skip_tls_verify" => c.http.skip_tls_verify = boolean(var, value, key)?,
        "command.timeout" => c.command.timeout = int(var, value, key)?,
        "command.env" => c.command.env = weak::split_list(value),
        "hooks.queue_capacity" => c.hooks.queue_capacity = uint(var, value, key)?,
        "hooks.max_in_flight" => c.hooks.max_in_flight = uint(var, value, key)?,
        "hooks.protocols" => c.hooks.protocols = weak::split_list(value),
        "hooks.delivery_deadline" => c.hooks.delivery_deadline = float(var, value, key)?,
        "hooks.retry_after_max" => {
            c.hooks.retry_after_max = if value.is_empty() {
                None
            } else {
                Some(float(var, value, key)?)
            };
        }
        "hooks.kill_grace" => c.hooks.kill_grace = float(var, value, key)?,
        "hooks.output_cap" => c.hooks.output_cap = uint(var, value, key)?,
        "hooks.shutdown_deadline" => c.hooks.shutdown_deadline = float(var, value, key)?,
        "hooks.spool.dir" => c.hooks.spool.dir = value.to_owned(),
        "hooks.spool.max_bytes" => c.hooks.spool.max_bytes = uint64(var, value, key)?,
        "hooks.spool.min_free_bytes" => c.hooks.spool.min_free_bytes = uint64(var, value, key)?,
        "hooks.spool.redeliver_min" => c.hooks.spool.redeliver_min = float(var, value, key)?,
        "hooks.spool.redeliver_max" => c.hooks.spool.redeliver_max = float(var, value, key)?,
        "hooks.spool.max_age" => c.hooks.spool.max_age = float(var, value, key)?,
        _ => c.hooks.spool.dead_max = uint(var, value, key)?,
    }
    Ok(())
}
