//! Integration tests of the test-support crate: the recorder over real loopback sockets.

mod http;
mod misbehaving;
mod tls;
