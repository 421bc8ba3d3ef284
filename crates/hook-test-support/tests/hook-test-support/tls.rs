//! HTTPS and mutual TLS.
