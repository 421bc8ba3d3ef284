//! hook-spool through its public API, on real files in temporary directories.

mod bounds;
mod corruption;
mod enospc;
mod kill;
mod lifecycle;

use std::time::Duration;

use hook_core::{DisconnectEvent, Protocol};
use hook_spool::{OpenReport, Spool, SpoolOptions};

pub(crate) fn event(n: u64) -> DisconnectEvent {
    DisconnectEvent::new(
        format!("192.0.2.{}", n % 250),
        Protocol::ALL[(n % 4) as usize],
        format!("user{n}"),
        Duration::from_millis(n * 7),
    )
}

pub(crate) fn options(dir: &std::path::Path) -> SpoolOptions {
    let mut options = SpoolOptions::new(dir);
    options.min_free_bytes = 0;
    options.ballast_bytes = 0;
    options.ack_flush_interval = Duration::from_millis(5);
    options
}

pub(crate) fn open(dir: &std::path::Path) -> (Spool, OpenReport) {
    Spool::open(options(dir)).expect("open the spool")
}
