//! The `SFTPGO_` variable parser: the input is `NAME=VALUE` lines (a line without `=` is a name
//! with an empty value), applied to the default configuration, then validated.
//!
//! Properties: no panic; the overrides never leave an incomplete list entry (a header without key
//! or value, a certificate without cert or key, a command without path) and never add more
//! entries than distinct indices were given.
#![no_main]

use std::collections::{BTreeMap, BTreeSet};

use hook_config::HookConfig;
use hook_config::fuzzing::apply_sftpgo_env;
use libfuzzer_sys::fuzz_target;

/// The distinct indices given for one list (`SFTPGO_HTTP__HEADERS__<i>__...`).
fn indices(env: &BTreeMap<String, String>, list: &str) -> usize {
    let prefix = format!("{list}__");
    env.keys()
        .filter_map(|k| k.strip_prefix(&prefix)?.split_once("__").map(|(i, _)| i))
        .collect::<BTreeSet<_>>()
        .len()
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let env: BTreeMap<String, String> = text
        .split('\n')
        .map(|line| {
            let (k, v) = line.split_once('=').unwrap_or((line, ""));
            (k.to_owned(), v.to_owned())
        })
        .collect();
    let mut config = HookConfig::default();
    if apply_sftpgo_env(&mut config, &env).is_err() {
        return;
    }
    let http = &config.http;
    assert!(
        http.headers
            .iter()
            .all(|h| !h.key.is_empty() && !h.value.is_empty())
    );
    assert!(
        http.certificates
            .iter()
            .all(|c| !c.cert.is_empty() && !c.key.is_empty())
    );
    assert!(config.command.commands.iter().all(|c| !c.path.is_empty()));
    assert!(http.headers.len() <= indices(&env, "SFTPGO_HTTP__HEADERS"));
    assert!(http.certificates.len() <= indices(&env, "SFTPGO_HTTP__CERTIFICATES"));
    assert!(config.command.commands.len() <= indices(&env, "SFTPGO_COMMAND__COMMANDS"));
    if config.validate().is_ok() {
        config.target().expect("a valid configuration has a target");
    }
});
