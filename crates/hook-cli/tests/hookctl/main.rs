//! `hookctl` end to end: the real binary, a configuration directory, a real script and a real
//! loopback endpoint. Checks the documented interface: exit codes, output, the summary line.

mod agreement;
mod check;
mod examples;
mod fire;
mod hardening;

mod spool;

mod fleet;
mod nats;
mod support;
