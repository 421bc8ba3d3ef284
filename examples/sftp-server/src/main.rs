//! `sftp-server`: serves a directory over SFTP to one user and fires SFTPGo-compatible
//! post-disconnect hooks (see the library docs and README.md).

#![forbid(unsafe_code)]

use std::io::IsTerminal;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use sftp_server_example::{Settings, SftpServer, load_authorized_keys, load_host_key};

/// Serve DIR over SFTP to one user, firing the configured post-disconnect hook for every SSH
/// channel that ends. Stops on Ctrl-C or SIGTERM, draining the hooks.
#[derive(Debug, Parser)]
#[command(name = "sftp-server", version)]
struct Args {
    /// The directory to serve (as `/`).
    #[arg(long, value_name = "DIR")]
    root: PathBuf,
    /// The user allowed to log in.
    #[arg(long, value_name = "NAME")]
    user: String,
    /// An OpenSSH authorized_keys file: the public keys that may log in as the user.
    #[arg(long, value_name = "FILE")]
    authorized_keys: Option<PathBuf>,
    /// A file whose first line is the user's password (enables password authentication).
    #[arg(long, value_name = "FILE")]
    password_file: Option<PathBuf>,
    /// The server's private host key (OpenSSH format). Default: a new Ed25519 key per run.
    #[arg(long, value_name = "FILE")]
    host_key: Option<PathBuf>,
    /// The address to listen on.
    #[arg(long, value_name = "IP", default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    address: IpAddr,
    /// The port to listen on (0: any free port; the bound one is printed).
    #[arg(long, value_name = "PORT", default_value_t = 2022)]
    port: u16,
    /// The hook configuration's directory (sftpgo.{json,yaml,yml,toml}); relative paths in the
    /// configuration resolve against it.
    #[arg(
        long,
        value_name = "DIR",
        env = "SFTPGO_CONFIG_DIR",
        default_value = "."
    )]
    config_dir: PathBuf,
    /// The configuration file, relative to the config dir unless absolute.
    #[arg(long, value_name = "FILE", env = "SFTPGO_CONFIG_FILE")]
    config_file: Option<PathBuf>,
    /// Serve the hooks' metrics for Prometheus at http://ADDR:PORT/metrics (docs/metrics.md).
    #[arg(long, value_name = "ADDR:PORT")]
    metrics_address: Option<SocketAddr>,
    /// Log at DEBUG instead of INFO.
    #[arg(long, short)]
    verbose: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_max_level(if args.verbose {
            tracing::Level::DEBUG
        } else {
            tracing::Level::INFO
        })
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("sftp-server: starting the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("sftp-server: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    // The configuration, as SFTPGo loads it: the file in the config dir, then SFTPGO_ variables.
    let mut loader = hooks::Loader::new().config_dir(&args.config_dir);
    if let Some(file) = &args.config_file {
        loader = loader.config_file(file);
    }
    let config = loader.load()?.config;

    let mut settings = Settings::new(
        SocketAddr::new(args.address, args.port),
        &args.root,
        &args.user,
    );
    if let Some(path) = &args.authorized_keys {
        settings.authorized_keys = load_authorized_keys(path)?;
    }
    if let Some(path) = &args.password_file {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        settings.password = Some(text.lines().next().unwrap_or_default().to_owned());
    }
    if settings.authorized_keys.is_empty() && settings.password.is_none() {
        return Err("give --authorized-keys, --password-file or both".into());
    }
    if let Some(path) = &args.host_key {
        settings.host_key = Some(load_host_key(path)?);
    }

    // Before the server (and its dispatcher) starts, so every metric is described and counted.
    if let Some(listen) = args.metrics_address {
        sftp_server_example::install_metrics_exporter(listen)?;
        println!("metrics on http://{listen}/metrics");
    }
    let server = SftpServer::bind(settings, &config).await?;
    if server.dispatcher().is_none() {
        tracing::warn!("common.post_disconnect_hook is empty: no hook will run");
    }
    println!("listening on {}", server.local_addr()?);

    match server.run(stop_signal()).await {
        Some(report) => println!(
            "hooks: delivered={} failed={} abandoned={} refused={} elapsed_ms={} kept={}",
            report.delivered,
            report.failed,
            report.abandoned,
            report.refused,
            report.elapsed.as_millis(),
            report.kept
        ),
        None => println!("hooks: none configured"),
    }
    Ok(())
}

/// Completes on the first Ctrl-C (SIGINT) or SIGTERM.
async fn stop_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(err) => {
            tracing::warn!(%err, "cannot watch SIGTERM; stopping on Ctrl-C only");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("stopping: no new connections, disconnecting clients, draining hooks");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_address_takes_an_address_and_a_port() {
        let args = Args::try_parse_from([
            "sftp-server",
            "--root",
            "/srv",
            "--user",
            "alice",
            "--metrics-address",
            "127.0.0.1:9464",
        ])
        .unwrap();
        assert_eq!(
            args.metrics_address,
            Some("127.0.0.1:9464".parse().unwrap())
        );
        let err = Args::try_parse_from([
            "sftp-server",
            "--root",
            "/srv",
            "--user",
            "alice",
            "--metrics-address",
            "9464",
        ])
        .unwrap_err();
        assert!(err.to_string().contains("--metrics-address"), "{err}");
    }
}
