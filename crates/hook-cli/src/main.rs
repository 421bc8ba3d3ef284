//! `hookctl`: check an SFTPGo post-disconnect hook configuration, and fire test events (one, or a
//! storm) at the configured program or endpoint through the same `Dispatcher` a server uses.
//!
//! ```text
//! hookctl [--config-dir DIR] [--config-file FILE] check
//! hookctl [--config-dir DIR] [--config-file FILE] fire [--hook HOOK] [--ip IP] [--protocol PROTO]
//!         [--username NAME] [--duration-ms MS] [--events N] [--concurrency C] [--json]
//! hookctl [--config-dir DIR] [--config-file FILE] relay --from nats://HOST:PORT[,nats://HOST2:PORT...]
//!         [--concurrency C] [--max-events N] [--idle-exit SECONDS]
//! ```
//!
//! Exit status: 0 valid / every event delivered; 1 some event failed; 2 usage or configuration
//! error. The last line `fire` prints is always
//! `events=N failed=F elapsed_ms=X events_per_s=Y p50_ms=A p99_ms=B`; `relay` prints the same
//! line on exit (events = handled: acked or terminated; failed = terminated).

#![forbid(unsafe_code)]

mod check;
mod cli;
mod fire;
mod relay;
mod report;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    init_logging();
    let result = match &cli.command {
        cli::Command::Check => check::run(&cli),
        cli::Command::Fire(args) => fire::run(&cli, args),
        cli::Command::Relay(args) => relay::run(&cli, args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("hookctl: {err}");
            ExitCode::from(2)
        }
    }
}

/// Hook failures are logged at WARN by the backends; show them on stderr.
fn init_logging() {
    use std::io::IsTerminal;
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_max_level(tracing_subscriber::filter::LevelFilter::WARN)
        .with_target(false)
        .try_init();
}
