//! `hookctl` end to end: the real binary, a configuration directory, a real script and a real
//! loopback endpoint. Checks the documented interface: exit codes, output, the summary line.

mod check;
mod examples;
mod fire;
mod fleet;
mod nats;
mod support;
