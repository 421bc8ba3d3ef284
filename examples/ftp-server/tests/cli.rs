//! The `ftp-server` binary with the flags other tools pass it, stopped by SIGTERM or SIGINT:
//! it prints the bound port, fires the hook for a real `curl` session, logs libunftp's records
//! through tracing, and drains the hooks at the stop.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

mod common;

use hook_test_support::{record_script_body, wait_for_records, write_script};

#[test]
fn the_binary_serves_fires_the_hook_and_stops_gracefully_on_sigterm_and_sigint() {
    for signal in ["TERM", "INT"] {
        let dir = tempfile::tempdir().unwrap();
        let [root, config, records] = ["root", "config", "records"].map(|name| {
            let path = dir.path().join(name);
            std::fs::create_dir(&path).unwrap();
            path
        });
        let script = write_script(&config, "hook.sh", &record_script_body(&records, ""));
        std::fs::write(
            config.join("hooks.json"),
            format!(
                r#"{{"common": {{"post_disconnect_hook": "{}"}}}}"#,
                script.display()
            ),
        )
        .unwrap();
        let password_file = dir.path().join("password");
        std::fs::write(&password_file, "secret\nignored second line\n").unwrap();

        let (mut server, mut stdout, port) = common::spawn_and_read_port(
            Command::new(env!("CARGO_BIN_EXE_ftp-server"))
                .arg("--root")
                .arg(&root)
                .args(["--user", "alice", "--password-file"])
                .arg(&password_file)
                .args(["--address", "127.0.0.1", "--port", "0", "--config-dir"])
                .arg(&config)
                .args(["--config-file", "hooks.json", "--idle-timeout", "30", "-v"])
                .env_remove("SFTPGO_CONFIG_DIR")
                .env_remove("SFTPGO_CONFIG_FILE")
                .stderr(Stdio::piped()),
        );
        assert_ne!(port, 0, "the bound port is printed");

        let curl = Command::new("curl")
            .args(["-sS", "--max-time", "60"])
            .arg(format!("ftp://alice:secret@127.0.0.1:{port}/"))
            .stdin(Stdio::null())
            .output()
            .expect("curl");
        assert!(curl.status.success(), "{curl:?}");
        let seen = wait_for_records(&records, 1, Duration::from_secs(30));
        assert_eq!(seen[0].env("SFTPGO_CONNECTION_PROTOCOL"), Some("FTP"));
        assert_eq!(seen[0].env("SFTPGO_CONNECTION_USERNAME"), Some("alice"));

        let kill = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(server.id().to_string())
            .status()
            .unwrap();
        assert!(kill.success());
        let status = server.wait().unwrap();
        let mut rest = String::new();
        stdout.read_to_string(&mut rest).unwrap();
        let mut stderr = String::new();
        server
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        assert!(status.success(), "SIG{signal}: {status}; {stderr}");
        assert!(
            rest.contains("hooks: delivered=1 failed=0 abandoned=0 refused=0"),
            "SIG{signal}: {rest}"
        );
        // libunftp's own records (slog -> log -> tracing), in the same format as ours.
        assert!(
            stderr.contains("libunftp::server"),
            "libunftp's log is bridged: {stderr}"
        );
        assert!(stderr.contains("ftp_server_example"), "{stderr}");
        assert!(
            !stderr.contains("secret"),
            "the password never reaches the log"
        );
        assert_eq!(std::fs::read_dir(&records).unwrap().count(), 1);
    }
}
