//! End-to-end tests: real clients and real hooks, from a configuration file to what the hook
//! script or the loopback endpoint received. One module per subject.

mod ftp;
mod msrv;
mod sftp;
mod spool_kill;
