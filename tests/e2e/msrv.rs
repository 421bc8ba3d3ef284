//! The workspace's `rust-version` is the truth about what the dependency tree needs: no
//! dependency (of any member, any platform, dev and build dependencies included) declares a
//! `rust-version` above the workspace's.

use std::process::Command;

/// "1.90" / "1.88.0" -> (1, 90, 0).
fn version(text: &str) -> (u64, u64, u64) {
    let mut parts = text.split('.').map(|p| p.parse::<u64>().unwrap_or(0));
    (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    )
}

#[test]
fn no_dependency_needs_a_newer_rust_than_the_workspace_declares() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let metadata = |offline: bool| {
        let mut command = Command::new(&cargo);
        command
            .args(["metadata", "--format-version", "1", "--locked"])
            .arg("--manifest-path")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.toml"));
        if offline {
            command.arg("--offline");
        }
        command.output().expect("run cargo metadata")
    };
    // Offline first (everything is downloaded once the workspace built); the registry otherwise.
    let mut out = metadata(true);
    if !out.status.success() {
        out = metadata(false);
    }
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("metadata JSON");
    let members: Vec<&str> = meta["workspace_members"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m.as_str())
        .collect();
    let packages = meta["packages"].as_array().unwrap();
    let mut workspace = None;
    let mut too_new = Vec::new();
    let mut highest = ("none".to_owned(), (0, 0, 0));
    for package in packages {
        let id = package["id"].as_str().unwrap_or_default();
        let name = package["name"].as_str().unwrap_or_default();
        let Some(rust_version) = package["rust_version"].as_str() else {
            continue;
        };
        if members.contains(&id) {
            // Every member inherits the workspace's rust-version.
            match &workspace {
                None => workspace = Some(rust_version.to_owned()),
                Some(w) => assert_eq!(w, rust_version, "member {name} has its own rust-version"),
            }
        } else {
            let v = version(rust_version);
            if v > highest.1 {
                highest = (format!("{name} {}", package["version"]), v);
            }
            too_new.push((name.to_owned(), rust_version.to_owned(), v));
        }
    }
    let workspace = workspace.expect("the workspace declares a rust-version");
    let ws = version(&workspace);
    let offenders: Vec<String> = too_new
        .iter()
        .filter(|(_, _, v)| *v > ws)
        .map(|(name, text, _)| format!("{name} needs {text}"))
        .collect();
    assert!(
        offenders.is_empty(),
        "the workspace says rust-version {workspace}, but {}; raise [workspace.package] rust-version",
        offenders.join(", ")
    );
    // And it is not higher than needed without a reason: the highest dependency sets it.
    assert_eq!(
        ws, highest.1,
        "rust-version {workspace} is above what any dependency needs (highest: {})",
        highest.0
    );
}
