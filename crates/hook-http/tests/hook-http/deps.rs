//! The dependency promises: no process code (`hook-exec`), no OpenSSL/native-tls, no aws-lc.

#[test]
fn manifest_pulls_no_exec_backend_and_no_other_tls_stack() {
    let manifest = include_str!("../../Cargo.toml");
    let deps = manifest
        .split("[dependencies]")
        .nth(1)
        .and_then(|rest| rest.split("\n[").next())
        .expect("a [dependencies] table");
    assert!(
        deps.contains("hook-core") && deps.contains("reqwest"),
        "{deps}"
    );
    for banned in [
        "hook-exec",
        "native-tls",
        "aws-lc",
        "openssl",
        "default-tls",
        "\"rustls\"",
    ] {
        assert!(
            !deps.contains(banned),
            "{banned} in [dependencies]:\n{deps}"
        );
    }
    assert!(
        deps.contains("rustls-no-provider") && deps.contains("\"ring\""),
        "{deps}"
    );
}
