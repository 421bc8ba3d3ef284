//! Integration tests of `hook-config`: files in three formats, every validation rule, every
//! `SFTPGO_` override form, `env.d`, and secrets kept out of errors and `Debug`.

mod validation;

#[cfg(feature = "load")]
mod env_d;
#[cfg(feature = "load")]
mod env_overrides;
#[cfg(feature = "load")]
mod files;
#[cfg(feature = "load")]
mod nats;
mod secrets;
#[cfg(feature = "load")]
mod spool;
#[cfg(feature = "load")]
mod support;
