//! The dependency promises: `hook-nats` holds no process or HTTP code, and nothing in the
//! workspace (any feature) pulls aws-lc.

use hook_test_support::cargo_tree;

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
