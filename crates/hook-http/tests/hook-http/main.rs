//! Integration tests of hook-http.
