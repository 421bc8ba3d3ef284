//! Integration tests of the `hooks` facade: the Dispatcher (fire never waits, bounded queue and
//! in-flight limit, protocol filter, outcomes, shutdown) and `build_hook`.

mod build;
mod contexts;
mod duration;
#[cfg(feature = "exec")]
mod exec;
mod filter;
#[cfg(feature = "http")]
mod http;
mod limits;
mod logging;
#[cfg(all(feature = "metrics", feature = "http"))]
mod metrics;
mod outcome;
mod queue;
mod shutdown;
#[cfg(all(feature = "spool", feature = "http"))]
mod spool;
mod storm;
mod support;
