use crate::support::*;
use hook_test_support::write_script;

#[test]
fn valid_configuration_prints_settings_with_secrets_redacted() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "sftpgo.json",
        r#"{"common": {"post_disconnect_hook": "https://user:pa55word@hooks.example.com/x"},
            "http": {"headers": [{"key": "X-Api-Key", "value": "t0ps3cret", "url": ""}]},
            "sftpd": {"bindings": [{"port": 2022}]}}"#,
    );
    let out = hookctl(dir.path(), &["check"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("configuration: valid\n"), "{text}");
    assert!(
        text.contains("hook target: http https://user:xxxxx@hooks.example.com/x"),
        "{text}"
    );
    assert!(text.contains("http.headers[0].value = \"xxxxx\""), "{text}");
    assert!(text.contains("http.timeout = 20.0"), "{text}");
    assert!(text.contains("command.timeout = 30"), "{text}");
    assert!(text.contains("hooks.queue_capacity = 10000"), "{text}");
    let all = format!("{text}{}", stderr(&out));
    assert!(
        !all.contains("pa55word") && !all.contains("t0ps3cret"),
        "{all}"
    );
}

#[test]
fn no_file_means_defaults_and_disabled() {
    let dir = tempfile::tempdir().unwrap();
    let out = hookctl(dir.path(), &["check"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("config file: none (built-in defaults)"),
        "{text}"
    );
    assert!(text.contains("hook target: disabled"), "{text}");
}

#[test]
fn invalid_configuration_exits_2_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "sftpgo.yaml", "command:\n  timeout: 0\n");
    let out = hookctl(dir.path(), &["check"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("command.timeout"), "{}", stderr(&out));
    assert!(stdout(&out).is_empty());
}

#[test]
fn environment_overrides_the_file() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "sftpgo.toml", "[command]\ntimeout = 10\n");
    let out = hookctl(
        dir.path(),
        &["check"],
        &[("SFTPGO_COMMAND__TIMEOUT", "301")],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("command.timeout"), "{}", stderr(&out));
    let out = hookctl(dir.path(), &["check"], &[("SFTPGO_COMMAND__TIMEOUT", "42")]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("command.timeout = 42"));
}

#[test]
fn config_dir_and_file_flags_and_variables() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("etc")).unwrap();
    write(
        &dir.path().join("etc"),
        "other.json",
        r#"{"command": {"timeout": 7}}"#,
    );
    let out = hookctl(
        dir.path(),
        &[
            "--config-dir",
            "etc",
            "--config-file",
            "other.json",
            "check",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("command.timeout = 7"));
    let out = hookctl(
        dir.path(),
        &["check"],
        &[
            ("SFTPGO_CONFIG_DIR", "etc"),
            ("SFTPGO_CONFIG_FILE", "other.json"),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("command.timeout = 7"));
    let out = hookctl(dir.path(), &["--config-file", "missing.json", "check"], &[]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn program_target_must_exist_and_be_executable() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.sh");
    let env = [(
        "SFTPGO_COMMON__POST_DISCONNECT_HOOK",
        missing.to_str().unwrap(),
    )];
    let out = hookctl(dir.path(), &["check"], &env);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("common.post_disconnect_hook"),
        "{}",
        stderr(&out)
    );

    let plain = dir.path().join("plain.sh");
    std::fs::write(&plain, "#!/bin/sh\n").unwrap();
    let env = [(
        "SFTPGO_COMMON__POST_DISCONNECT_HOOK",
        plain.to_str().unwrap(),
    )];
    let out = hookctl(dir.path(), &["check"], &env);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("not executable"), "{}", stderr(&out));

    let ok = write_script(dir.path(), "ok.sh", "#!/bin/sh\nexit 0\n");
    let env = [("SFTPGO_COMMON__POST_DISCONNECT_HOOK", ok.to_str().unwrap())];
    let out = hookctl(dir.path(), &["check"], &env);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("hook target: program"));
}

#[test]
fn relative_hook_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let out = hookctl(
        dir.path(),
        &["check"],
        &[("SFTPGO_COMMON__POST_DISCONNECT_HOOK", "hook.sh")],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("common.post_disconnect_hook: \"hook.sh\""),
        "{}",
        stderr(&out)
    );
}
