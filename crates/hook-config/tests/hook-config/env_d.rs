//! `<config dir>/env.d/`: dotenv files merged into the loader's variables, never overriding a
//! variable already set, never touching the process environment.

use hook_config::ConfigErrorKind;

use crate::support::{dir_with_json, load_with};

#[test]
fn env_d_files_set_variables_without_overriding_set_ones() {
    let dir = dir_with_json(r#"{"command": {"timeout": 20}}"#);
    let env_d = dir.path().join("env.d");
    std::fs::create_dir(&env_d).unwrap();
    std::fs::write(
        env_d.join("10-hooks.env"),
        "# hook settings\nSFTPGO_COMMAND__TIMEOUT=12\nexport SFTPGO_HTTP__RETRY_MAX=7\n\
         SFTPGO_COMMAND__COMMANDS__3__PATH=\"/usr/local/bin/hook\"\n\
         SFTPGO_COMMAND__COMMANDS__3__ARGS='a, b'\nHOOK_CONFIG_TEST_ONLY_ENV_D_VAR=1\n",
    )
    .unwrap();
    std::fs::write(
        env_d.join("20-more.env"),
        "SFTPGO_COMMAND__TIMEOUT=99\nSFTPGO_HTTP__RETRY_WAIT_MIN=${BASE}\n",
    )
    .unwrap();
    std::fs::create_dir(env_d.join("30-a-directory")).unwrap();

    let l = load_with(
        dir.path(),
        None,
        &[("SFTPGO_HTTP__RETRY_MAX", "2"), ("BASE", "4")],
    )
    .unwrap();
    // Set by the first file (the second file does not override it), beating the config file.
    assert_eq!(l.config.command.timeout, 12);
    // Already set in the environment: env.d does not override it.
    assert_eq!(l.config.http.retry_max, 2);
    // Expansion from the environment.
    assert_eq!(l.config.http.retry_wait_min, 4);
    assert_eq!(l.config.command.commands[0].path, "/usr/local/bin/hook");
    assert_eq!(l.config.command.commands[0].args, ["a", "b"]);
    let names: Vec<_> = l
        .env_files
        .iter()
        .map(|p| p.file_name().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["10-hooks.env", "20-more.env"]);
    // The process environment was not modified.
    assert!(std::env::var_os("HOOK_CONFIG_TEST_ONLY_ENV_D_VAR").is_none());
}

#[test]
fn oversized_env_d_file_is_an_error_naming_it() {
    let dir = dir_with_json("{}");
    let env_d = dir.path().join("env.d");
    std::fs::create_dir(&env_d).unwrap();
    let mut big = String::from("SFTPGO_COMMAND__TIMEOUT=5\n");
    big.push_str(&format!("# {}\n", "x".repeat(1024 * 1024)));
    std::fs::write(env_d.join("big.env"), big).unwrap();
    let err = load_with(dir.path(), None, &[]).unwrap_err();
    assert_eq!(err.kind(), ConfigErrorKind::Io);
    assert!(err.to_string().contains("big.env"), "{err}");
    assert!(err.to_string().contains("1 MiB"), "{err}");
}

#[test]
fn exactly_one_mib_is_accepted() {
    let dir = dir_with_json("{}");
    let env_d = dir.path().join("env.d");
    std::fs::create_dir(&env_d).unwrap();
    let head = "SFTPGO_COMMAND__TIMEOUT=5\n# ";
    let body = format!("{head}{}\n", "x".repeat(1024 * 1024 - head.len() - 1));
    assert_eq!(body.len(), 1024 * 1024);
    std::fs::write(env_d.join("max.env"), body).unwrap();
    assert_eq!(
        load_with(dir.path(), None, &[])
            .unwrap()
            .config
            .command
            .timeout,
        5
    );
}

#[test]
fn env_d_syntax_error_names_file_and_line() {
    let dir = dir_with_json("{}");
    let env_d = dir.path().join("env.d");
    std::fs::create_dir(&env_d).unwrap();
    std::fs::write(env_d.join("bad.env"), "A=1\nthis line has no equals\n").unwrap();
    let err = load_with(dir.path(), None, &[]).unwrap_err();
    assert_eq!(err.kind(), ConfigErrorKind::Parse);
    assert!(err.to_string().contains("bad.env:2:"), "{err}");
}

#[test]
fn env_d_expansion_past_4_mib_is_an_error_naming_file_and_line() {
    let dir = dir_with_json("{}");
    let env_d = dir.path().join("env.d");
    std::fs::create_dir(&env_d).unwrap();
    // 170 bytes that would expand to 2^25 bytes (and 1 KiB to far more than any memory).
    let mut text = String::from("A=xx\n");
    for _ in 0..24 {
        text.push_str("A=$A$A\n");
    }
    std::fs::write(env_d.join("bomb.env"), text).unwrap();
    let err = load_with(dir.path(), None, &[]).unwrap_err();
    assert_eq!(err.kind(), ConfigErrorKind::Parse);
    let shown = err.to_string();
    assert!(
        shown.ends_with("bomb.env:22: the values expand to more than 4 MiB"),
        "{shown}"
    );
}
