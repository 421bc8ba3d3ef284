//! The dependency promises: `hook-nats` holds no process or HTTP code, and nothing in the
//! workspace (any feature) pulls aws-lc.

use std::path::Path;
use std::process::Command;

/// `cargo tree --offline --prefix none` with `args`, run with the cargo that runs this test.
fn cargo_tree(args: &[&str]) -> String {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.toml");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args(["tree", "--offline", "--prefix", "none", "--manifest-path"])
        .arg(manifest)
        .args(args)
        .output()
        .expect("cargo tree");
    assert!(
        output.status.success(),
        "cargo tree {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn hook_nats_has_no_process_or_http_code() {
    let tree = cargo_tree(&["-e", "normal", "-p", "hook-nats", "--all-features"]);
    assert!(tree.lines().any(|l| l.starts_with("async-nats ")), "{tree}");
    for banned in [
        "hook-exec",
        "hook-http",
        "hyper",
        "hyper-util",
        "reqwest",
        "h2",
        "nix",
        "rustix",
        "aws-lc-rs",
        "aws-lc-sys",
        "openssl",
        "native-tls",
    ] {
        assert!(
            !tree.lines().any(|l| l.starts_with(&format!("{banned} "))),
            "hook-nats depends on {banned}:\n{tree}"
        );
    }
}

#[test]
fn nothing_in_the_workspace_pulls_aws_lc() {
    let tree = cargo_tree(&[
        "--workspace",
        "--all-features",
        "-e",
        "all",
        "--target",
        "all",
    ]);
    assert!(tree.lines().any(|l| l.starts_with("ring ")), "{tree}");
    assert!(
        !tree.lines().any(|l| l.starts_with("aws-lc")),
        "aws-lc in the tree:\n{tree}"
    );
}
