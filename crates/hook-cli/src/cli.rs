//! The command line, exactly as documented (other tools depend on it).

use std::path::PathBuf;

use clap::{ArgGroup, Args, Parser, Subcommand, ValueEnum};

/// Check an SFTPGo post-disconnect hook configuration and fire test events at it.
#[derive(Debug, Parser)]
#[command(name = "hookctl", version, about, long_about = None)]
pub(crate) struct Cli {
    /// Configuration directory; relative paths in the configuration resolve against it.
    #[arg(
        long,
        global = true,
        value_name = "DIR",
        env = "SFTPGO_CONFIG_DIR",
        default_value = "."
    )]
    pub(crate) config_dir: PathBuf,

    /// Configuration file, relative to DIR unless absolute. Default: the
    /// sftpgo.{json,yaml,yml,toml} found in DIR, else built-in defaults.
    #[arg(long, global = true, value_name = "FILE", env = "SFTPGO_CONFIG_FILE")]
    pub(crate) config_file: Option<PathBuf>,

    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Validate the configuration exactly as a server's start-up does (TLS files whatever the
    /// hook, dispatcher limits, the program) and print the effective settings (secrets
    /// redacted). Exit 0 when valid, 2 when not.
    Check,
    /// Fire N copies of a disconnect event through the Dispatcher and wait for all of them.
    /// Exit 0 when every event was delivered, 1 when any failed, 2 on a usage, configuration
    /// or start-up error. SIGINT or SIGTERM stops firing, shuts the dispatcher down within 1 s
    /// (killing the process groups of programs still running), prints the summary and exits 1;
    /// a second signal exits at once (128 + the signal).
    ///
    /// With a spool configured (hooks.spool.dir), all N events are first appended durably
    /// (fire_durable), "spooled=N" is printed on stderr, then they are delivered and hookctl
    /// waits until every one is delivered or dead (deferred ones are waited for).
    Fire(FireArgs),
    /// Inspect and manage the spool of hooks.spool.dir. Exit 2 when the spool is locked by a
    /// running process, missing or damaged.
    Spool {
        #[command(subcommand)]
        command: SpoolCommand,
    },
    /// Consume disconnect events from NATS JetStream (a durable pull consumer shared by every
    /// relay) and deliver each to the hook this configuration names (a program or an HTTP
    /// endpoint). Acks after the hook succeeded, NAKs transient failures with the hooks.spool
    /// redelivery schedule, terminates permanent ones. SIGTERM/SIGINT: stop pulling, finish and
    /// ack what is running, exit 0. Exit 2 on a usage, configuration or connection error.
    Relay(RelayArgs),
}

#[derive(Debug, Args)]
pub(crate) struct RelayArgs {
    /// The NATS servers to consume from: nats://HOST:PORT[,nats://HOST2:PORT...] (tls:// too);
    /// the nats section (stream, consumer, credentials, TLS) applies to this connection.
    #[arg(long, value_name = "URLS")]
    pub(crate) from: String,

    /// Hooks running at once (default: hooks.max_in_flight); also the pull batch size.
    #[arg(long, value_name = "C", value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) concurrency: Option<u64>,

    /// Exit after N events were handled (acked or terminated).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) max_events: Option<u64>,

    /// Exit when no message arrived for S seconds (and no hook is running).
    #[arg(long, value_name = "SECONDS")]
    pub(crate) idle_exit: Option<f64>,

    /// Serve the relay's and the dispatcher's metrics for Prometheus at
    /// http://ADDR:PORT/metrics (docs/metrics.md).
    #[arg(long, value_name = "ADDR:PORT")]
    pub(crate) metrics_address: Option<std::net::SocketAddr>,
}

/// `hookctl spool ...`
#[derive(Debug, Subcommand)]
pub(crate) enum SpoolCommand {
    /// Counts per state (pending, deferred, dead), bytes, oldest age.
    Status {
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// One line (or JSON object) per event: id, state, attempts, next attempt, last error, ip,
    /// protocol, username, duration_ms.
    List {
        /// Only events in this state (default: all, pending first).
        #[arg(long, value_enum, value_name = "STATE")]
        state: Option<StateArg>,
        /// One JSON object per line instead of text.
        #[arg(long)]
        json: bool,
    },
    /// What a restarted server does: deliver pending and due events, wait for them (and for
    /// deferred ones until --wait-max), print the summary line. Exit 0 when nothing is left
    /// pending or deferred, 1 otherwise.
    Replay {
        /// Seconds to wait for deferred events to fall due and be delivered (default 0).
        #[arg(long, value_name = "SECONDS", default_value_t = 0.0)]
        wait_max: f64,
    },
    /// Move dead events back to pending (they are delivered by the next start or replay).
    #[command(group(ArgGroup::new("which").required(true).args(["dead", "id"])))]
    Retry {
        /// Every dead event.
        #[arg(long)]
        dead: bool,
        /// These dead events (ids as `hookctl spool list` prints them).
        #[arg(long, value_name = "ID", num_args = 1..)]
        id: Vec<String>,
    },
    /// Remove events for good.
    #[command(group(ArgGroup::new("what").required(true).args(["dead", "all"])))]
    Purge {
        /// Every dead event.
        #[arg(long)]
        dead: bool,
        /// Every event, in every state.
        #[arg(long)]
        all: bool,
        /// Confirm (required).
        #[arg(long)]
        yes: bool,
    },
}

/// A spool state on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum StateArg {
    /// To be delivered now.
    Pending,
    /// Waiting for a redelivery.
    Deferred,
    /// Given up (expired or failed permanently).
    Dead,
}

#[derive(Debug, Args)]
pub(crate) struct FireArgs {
    /// Hook to fire at (overrides common.post_disconnect_hook): an http(s) URL or an absolute
    /// program path.
    #[arg(long, value_name = "HOOK")]
    pub(crate) hook: Option<String>,

    /// Client IP text, used verbatim.
    #[arg(long, value_name = "IP", default_value = "127.0.0.1")]
    pub(crate) ip: String,

    /// Protocol: SFTP, SCP, SSH, FTP, DAV, HTTP or OIDC (fired even where the default filter
    /// would skip it).
    #[arg(long, value_name = "PROTO", default_value = "SFTP")]
    pub(crate) protocol: String,

    /// Username (may be empty). "{n}" in NAME is replaced by the event's 0-based index.
    #[arg(long, value_name = "NAME", default_value = "")]
    pub(crate) username: String,

    /// Connection duration in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub(crate) duration_ms: u64,

    /// How many copies of the event to fire.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) events: u64,

    /// Hooks in flight at once (default: hooks.max_in_flight).
    #[arg(long, value_name = "C", value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) concurrency: Option<u64>,

    /// Print one JSON object per event on stdout.
    #[arg(long)]
    pub(crate) json: bool,
}
