//! `hookctl check`: load, validate and print the effective settings.

use std::error::Error;
use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

use hooks::{HookTarget, LoadedConfig};

use crate::cli::Cli;

/// Loads the configuration the way a server would: files, `env.d`, `SFTPGO_` variables.
pub(crate) fn load(cli: &Cli) -> Result<LoadedConfig, Box<dyn Error>> {
    let mut loader = hooks::Loader::new().config_dir(&cli.config_dir);
    if let Some(file) = &cli.config_file {
        loader = loader.config_file(file);
    }
    loader
        .load()
        .map_err(|e| format!("invalid configuration: {e}").into())
}

/// A program target must exist, be a regular file and be executable.
pub(crate) fn check_program(key: &str, path: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| format!("{key}: program {shown:?}: {e}"))?;
    if !meta.is_file() {
        return Err(format!("{key}: program {shown:?} is not a regular file"));
    }
    if meta.permissions().mode() & 0o111 == 0 {
        return Err(format!("{key}: program {shown:?} is not executable"));
    }
    Ok(())
}

pub(crate) fn run(cli: &Cli) -> Result<ExitCode, Box<dyn Error>> {
    let loaded = load(cli)?;
    let target = loaded.config.target()?;
    if let HookTarget::Program(path) = &target {
        check_program(hooks::HOOK_KEY, path).map_err(|e| format!("invalid configuration: {e}"))?;
    }
    // Build the backend too: certificates and keys are read and parsed here.
    hooks::build_hook(&loaded.config).map_err(|e| format!("invalid configuration: {e}"))?;
    print!("{}", describe(&loaded, &target));
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
