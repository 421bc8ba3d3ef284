//! The bundled examples in `examples/hooks/` work as documented.

use std::path::PathBuf;

use crate::support::*;

fn examples_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/hooks")
        .canonicalize()
        .unwrap()
}

#[test]
fn the_example_configuration_is_valid() {
    let dir = examples_dir();
    let out = hookctl(&dir, &["check"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    // Query values are redacted like passwords (issue 11, item 9); the names stay.
    assert!(
        text.contains("hook target: http http://127.0.0.1:8080/hooks/disconnect?source=xxxxx"),
        "{text}"
    );
    assert!(text.contains("http.headers[0].value = \"xxxxx\""), "{text}");
    assert!(!text.contains("change-me"), "{text}");
}

#[test]
fn print_env_shows_the_four_variables_and_nothing_inherited() {
    let dir = examples_dir();
    let hook = dir.join("print-env.sh");
    let out = hookctl(
        &dir,
        &[
            "fire",
            "--hook",
            hook.to_str().unwrap(),
            "--username",
            "alice",
            "--duration-ms",
            "1500",
        ],
        &[("SECRET_OF_THE_PARENT", "leak")],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    for line in [
        "  HOOK_LOG=/tmp/sftpgo-disconnects.log",
        "  SFTPGO_CONNECTION_DURATION=1500",
        "  SFTPGO_CONNECTION_IP=127.0.0.1",
        "  SFTPGO_CONNECTION_PROTOCOL=SFTP",
        "  SFTPGO_CONNECTION_USERNAME=alice",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in {text}"
        );
    }
    assert!(
        !text.contains("SECRET_OF_THE_PARENT") && !text.contains("  PATH="),
        "{text}"
    );
}

#[test]
fn log_disconnect_appends_one_line_per_event() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("disconnects.log");
    write(
        dir.path(),
        "sftpgo.json",
        &format!(
            r#"{{"command": {{"env": ["HOOK_LOG={}"]}}}}"#,
            log.display()
        ),
    );
    let hook = examples_dir().join("log-disconnect.sh");
    let out = hookctl(
        dir.path(),
        &[
            "fire",
            "--hook",
            hook.to_str().unwrap(),
            "--username",
            "bob",
            "--protocol",
            "FTP",
            "--ip",
            "192.0.2.9",
            "--duration-ms",
            "42",
            "--events",
            "3",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    for line in lines {
        assert!(
            line.ends_with(" protocol=FTP user=bob ip=192.0.2.9 duration_ms=42"),
            "{line:?}"
        );
    }
}
