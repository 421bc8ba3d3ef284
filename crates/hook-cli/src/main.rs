//! `hookctl`: check an SFTPGo post-disconnect hook configuration, and fire test events (one, or a
//! storm) at the configured program or endpoint through the same `Dispatcher` a server uses.
//!
//! ```text
//! hookctl [--config-dir DIR] [--config-file FILE] check
//! hookctl [--config-dir DIR] [--config-file FILE] fire [--hook HOOK] [--ip IP] [--protocol PROTO]
//!         [--username NAME] [--duration-ms MS] [--events N] [--concurrency C] [--json]
//! hookctl spool status [--json]
//! hookctl spool list [--state pending|deferred|dead] [--json]
//! hookctl spool replay [--wait-max SECONDS]
//! hookctl spool retry (--dead | --id ID...)
//! hookctl spool purge (--dead | --all) --yes
//! hookctl [--config-dir DIR] [--config-file FILE] relay --from nats://HOST:PORT[,nats://HOST2:PORT...]
//!         [--concurrency C] [--max-events N] [--idle-exit SECONDS] [--metrics-address ADDR:PORT]
//! ```
//!
//! `"{n}"` in `--username` is replaced by the event's 0-based index. With a spool configured
//! (`hooks.spool.dir`), `fire` appends all N events durably first, prints `spooled=N` on stderr,
//! then delivers and waits until every event is delivered or dead.
//!
//! Exit status: 0 valid / every event delivered; 1 some event failed, or `fire` was interrupted
//! by SIGINT or SIGTERM (it stops firing, shuts the dispatcher down with a 1 s deadline, killing
//! the process groups of programs still running, and prints the summary); 2 usage,
//! configuration or start-up error (including threads that cannot be created; for `spool`
//! subcommands also: the spool is locked by a running process, missing or damaged); 128 + the
//! signal number when a second signal makes `fire` exit at once. The last line `fire` prints
//! (but on a second signal) is always
//! `events=N failed=F elapsed_ms=X events_per_s=Y p50_ms=A p99_ms=B`; `relay` prints the same
//! line on exit (events = handled: acked or terminated; failed = terminated).

#![forbid(unsafe_code)]

mod check;
mod cli;
mod fire;
mod relay;
mod report;
mod runtime;
mod spool;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    init_logging();
    let result = match &cli.command {
        cli::Command::Check => check::run(&cli),
        cli::Command::Fire(args) => fire::run(&cli, args),
        cli::Command::Spool { command } => spool::run(&cli, command),
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
