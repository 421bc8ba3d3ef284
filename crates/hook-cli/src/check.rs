//! `hookctl check`: load, validate and print the effective settings.

use std::error::Error;
use std::fmt::Write as _;
use std::io::Write as _;
use std::process::ExitCode;

use hooks::{HookTarget, LoadedConfig};

use crate::cli::Cli;

/// Loads the configuration the way a server would: files, `env.d`, `SFTPGO_` variables.
pub(crate) fn load(cli: &Cli) -> Result<LoadedConfig, Box<dyn Error>> {
    let mut loader = hooks::Loader::new().config_dir(&cli.config_dir);
    if let Some(file) = &cli.config_file {
        loader = loader.config_file(file);
    }
    loader.load().map_err(invalid)
}

/// A configuration error, as `check` and `fire` both report it (word for word).
pub(crate) fn invalid(err: impl std::fmt::Display) -> Box<dyn Error> {
    format!("invalid configuration: {err}").into()
}

pub(crate) fn run(cli: &Cli) -> Result<ExitCode, Box<dyn Error>> {
    let loaded = load(cli)?;
    let target = loaded.config.target().map_err(invalid)?;
    // A server's start-up validation, all of it (hooks::validate_config: the sections, the TLS
    // files whatever the target, the dispatcher limits, the program), then the backend built as
    // a server builds it.
    hooks::DispatcherOptions::from_config(&loaded.config.hooks).map_err(invalid)?;
    hooks::build_hook(&loaded.config).map_err(invalid)?;
    let mut out = std::io::stdout().lock();
    out.write_all(describe(&loaded, &target).as_bytes())?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// The effective settings, one `key = value` line each, secrets redacted.
fn describe(loaded: &LoadedConfig, target: &HookTarget) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "configuration: valid");
    let _ = writeln!(out, "config dir: {}", loaded.config_dir.display());
    match &loaded.config_file {
        Some(file) => {
            let _ = writeln!(out, "config file: {}", file.display());
        }
        None => {
            let _ = writeln!(out, "config file: none (built-in defaults)");
        }
    }
    for file in &loaded.env_files {
        let _ = writeln!(out, "env.d file: {}", file.display());
    }
    let kind = match target {
        HookTarget::Http(_) => "http",
        HookTarget::Program(_) => "program",
        HookTarget::Nats(_) => "nats",
        _ => "disabled",
    };
    let _ = writeln!(out, "hook target: {kind} {target}");
    let value = serde_json::to_value(loaded.config.redacted()).unwrap_or_default();
    flatten("", &value, &mut out);
    out
}

fn flatten(prefix: &str, value: &serde_json::Value, out: &mut String) {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        Value::Array(items) if !items.is_empty() && items.iter().any(Value::is_object) => {
            for (i, v) in items.iter().enumerate() {
                flatten(&format!("{prefix}[{i}]"), v, out);
            }
        }
        other => {
            let _ = writeln!(out, "{prefix} = {other}");
        }
    }
}
