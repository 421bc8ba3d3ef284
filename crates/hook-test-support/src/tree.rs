//! [`cargo_tree`]: the workspace's dependency graph, for tests that hold dependency promises.

use std::path::Path;
use std::process::Command;

/// `cargo tree --locked --prefix none --manifest-path <workspace>/Cargo.toml ARGS`, run with the
/// cargo that runs the test (`$CARGO`), its output as text: one `name vX.Y.Z ...` per line.
/// `--locked` rather than `--offline`: an `--all-features` tree may need the manifests of opt-in
/// features, which cargo then downloads. Panics with cargo's stderr when it fails.
///
/// ```no_run
/// let tree = hook_test_support::cargo_tree(&["-e", "normal", "-p", "hook-core"]);
/// assert!(tree.lines().any(|l| l.starts_with("async-trait ")));
/// ```
pub fn cargo_tree(args: &[&str]) -> String {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.toml");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args(["tree", "--locked", "--prefix", "none", "--manifest-path"])
        .arg(manifest)
        .args(args)
        .output()
        .expect("cargo tree");
    assert!(
        output.status.success(),
        "cargo tree {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("cargo tree prints UTF-8")
}
