//! `ftp-server`: serves a directory over FTP to one user and fires SFTPGo-compatible
//! post-disconnect hooks (see the library docs and README.md).

#![forbid(unsafe_code)]

use std::io::IsTerminal;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use ftp_server_example::{FtpServer, Settings};

/// Serve DIR over FTP to one user, firing the configured post-disconnect hook for every
/// control connection that ends. Stops on Ctrl-C or SIGTERM, draining the hooks.
#[derive(Debug, Parser)]
#[command(name = "ftp-server", version)]
struct Args {
    /// The directory to serve (as `/`).
    #[arg(long, value_name = "DIR")]
    root: PathBuf,
    /// The user allowed to log in.
    #[arg(long, value_name = "NAME")]
    user: String,
    /// A file whose first line is the user's password.
    #[arg(long, value_name = "FILE")]
    password_file: PathBuf,
    /// The address to listen on.
    #[arg(long, value_name = "IP", default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    address: IpAddr,
    /// The port to listen on (0: any free port; the bound one is printed).
    #[arg(long, value_name = "PORT", default_value_t = 2121)]
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
    /// Close a session idle for this many seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 600,
          value_parser = clap::value_parser!(u64).range(1..))]
    idle_timeout: u64,
    /// Serve the hooks' metrics for Prometheus at http://ADDR:PORT/metrics (docs/metrics.md).
    #[arg(long, value_name = "ADDR:PORT")]
    metrics_address: Option<SocketAddr>,
    /// Log at DEBUG instead of INFO.
    #[arg(long, short)]
    verbose: bool,
}

/// metrics-exporter-prometheus as the global recorder, serving `http://LISTEN/metrics`, with the
/// hooks' histogram buckets (as `examples/sftp-server/src/metrics.rs`).
fn install_metrics_exporter(listen: SocketAddr) -> Result<(), String> {
    use hooks::metrics::HISTOGRAM_BUCKETS;
    use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
    let error = |e: &dyn std::fmt::Display| format!("--metrics-address {listen}: {e}");
    let mut builder = PrometheusBuilder::new().with_http_listener(listen);
    for (name, buckets) in HISTOGRAM_BUCKETS {
        builder = builder
            .set_buckets_for_metric(Matcher::Full(name.into()), buckets)
            .map_err(|e| error(&e))?;
    }
    builder.install().map_err(|e| error(&e))
}

fn main() -> ExitCode {
    let args = Args::parse();
    init_logging(args.verbose);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("ftp-server: starting the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("ftp-server: {err}");
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

    let path = &args.password_file;
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let password = text.lines().next().unwrap_or_default().to_owned();
    if password.is_empty() {
        return Err(format!("{}: the first line (the password) is empty", path.display()).into());
    }
    let mut settings = Settings::new(
        SocketAddr::new(args.address, args.port),
        &args.root,
        &args.user,
        password,
    );
    settings.idle_timeout = Duration::from_secs(args.idle_timeout);

    // Before the dispatcher starts (in bind): it registers its metrics then.
    if let Some(listen) = args.metrics_address {
        install_metrics_exporter(listen)?;
    }
    let server = FtpServer::bind(settings, &config).await?;
    if server.dispatcher().is_none() {
        tracing::warn!("common.post_disconnect_hook is empty: no hook will run");
    }
    println!("listening on {}", server.local_addr()?);

    match server.run(stop_signal()).await {
        Some(report) => println!(
            "hooks: delivered={} failed={} abandoned={} refused={} elapsed_ms={}",
            report.delivered,
            report.failed,
            report.abandoned,
            report.refused,
            report.elapsed.as_millis()
        ),
        None => println!("hooks: none configured"),
    }
    Ok(())
}

/// One log format for everything: our `tracing` events, and libunftp's records, which go
/// slog -> `log` -> tracing-log's `LogTracer` (installed by `init`: the `tracing-log` feature).
/// libunftp also opens `tracing` spans whose fields are its whole session state; they are
/// left out below DEBUG, or every line would carry them.
fn init_logging(verbose: bool) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::{Layer, filter};

    let level = if verbose {
        filter::LevelFilter::DEBUG
    } else {
        filter::LevelFilter::INFO
    };
    let spans = filter::filter_fn(move |meta| {
        verbose || !(meta.is_span() && meta.target().starts_with("libunftp"))
    });
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_filter(level)
        .with_filter(spans);
    tracing_subscriber::registry().with(layer).init();
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
    tracing::info!("stopping: no new connections, letting sessions end, draining hooks");
}
