//! Every `SFTPGO_` override form of spec 5.2 plus D12.

use hook_config::{CommandEntry, ConfigErrorKind, HttpHeader, TlsKeyPair};

use crate::support::{load_err, load_json};

const FILE: &str = r#"{
    "common": {"post_disconnect_hook": "/usr/local/bin/from-file"},
    "http": {
        "timeout": 5, "retry_max": 4, "skip_tls_verify": true,
        "ca_certificates": ["/file/ca.pem"],
        "certificates": [{"cert": "/file/c.pem", "key": "/file/k.pem"}],
        "headers": [{"key": "Authorization", "value": "Bearer file", "url": "https://h/"}]
    },
    "command": {
        "timeout": 20, "env": ["FROM=file"],
        "commands": [{"path": "/usr/local/bin/from-file", "timeout": 7, "env": ["E=1"],
                      "args": ["--a"], "hook": "post_disconnect"}]
    }
}"#;

#[test]
fn scalars_override_the_file() {
    let l = load_json(
        FILE,
        &[
            (
                "SFTPGO_COMMON__POST_DISCONNECT_HOOK",
                "https://hooks.example.com/x",
            ),
            ("SFTPGO_HTTP__TIMEOUT", "2.5"),
            ("SFTPGO_HTTP__RETRY_WAIT_MIN", "1"),
            ("SFTPGO_HTTP__RETRY_WAIT_MAX", "0x10"),
            ("SFTPGO_HTTP__RETRY_MAX", "9"),
            ("SFTPGO_HTTP__SKIP_TLS_VERIFY", "false"),
            ("SFTPGO_COMMAND__TIMEOUT", "60"),
            ("SFTPGO_HOOKS__QUEUE_CAPACITY", "77"),
            ("SFTPGO_HOOKS__MAX_IN_FLIGHT", "3"),
            ("SFTPGO_HOOKS__DELIVERY_DEADLINE", "9.5"),
            ("SFTPGO_HOOKS__RETRY_AFTER_MAX", "15"),
            ("SFTPGO_HOOKS__KILL_GRACE", "0.25"),
            ("SFTPGO_HOOKS__OUTPUT_CAP", "1024"),
            ("SFTPGO_HOOKS__SHUTDOWN_DEADLINE", "4"),
        ],
    )
    .unwrap();
    let c = &l.config;
    assert_eq!(c.common.post_disconnect_hook, "https://hooks.example.com/x");
    assert_eq!(c.http.timeout, 2.5);
    assert_eq!(c.http.retry_wait_min, 1);
    assert_eq!(c.http.retry_wait_max, 16);
    assert_eq!(c.http.retry_max, 9);
    assert!(!c.http.skip_tls_verify);
    assert_eq!(c.command.timeout, 60);
    assert_eq!(c.hooks.queue_capacity, 77);
    assert_eq!(c.hooks.max_in_flight, 3);
    assert_eq!(c.hooks.delivery_deadline, 9.5);
    assert_eq!(c.hooks.retry_after_max, Some(15.0));
    assert_eq!(c.hooks.kill_grace, 0.25);
    assert_eq!(c.hooks.output_cap, 1024);
    assert_eq!(c.hooks.shutdown_deadline, 4.0);
    // Untouched keys keep the file's values.
    assert_eq!(c.command.env, ["FROM=file"]);
}

#[test]
fn malformed_scalars_are_errors_naming_the_variable() {
    for (var, value, key) in [
        ("SFTPGO_COMMAND__TIMEOUT", "abc", "command.timeout"),
        ("SFTPGO_COMMAND__TIMEOUT", " 30", "command.timeout"),
        ("SFTPGO_HTTP__TIMEOUT", "soon", "http.timeout"),
        ("SFTPGO_HTTP__RETRY_MAX", "1.5", "http.retry_max"),
        (
            "SFTPGO_HTTP__SKIP_TLS_VERIFY",
            "yes",
            "http.skip_tls_verify",
        ),
        ("SFTPGO_HOOKS__QUEUE_CAPACITY", "-1", "hooks.queue_capacity"),
        ("SFTPGO_HOOKS__KILL_GRACE", "2s", "hooks.kill_grace"),
    ] {
        let err = load_err(FILE, &[(var, value)]);
        assert_eq!(err.key(), var);
        assert_eq!(err.kind(), ConfigErrorKind::Parse);
        assert!(
            err.to_string()
                .starts_with(&format!("{var}: {value:?} is not ")),
            "{err}"
        );
        assert!(err.to_string().contains(key), "{err}");
    }
}

#[test]
fn bool_forms_follow_go_parse_bool() {
    for (value, want) in [
        ("1", true),
        ("t", true),
        ("TRUE", true),
        ("0", false),
        ("F", false),
    ] {
        let l = load_json("{}", &[("SFTPGO_HTTP__SKIP_TLS_VERIFY", value)]).unwrap();
        assert_eq!(l.config.http.skip_tls_verify, want, "{value}");
    }
}

#[test]
fn d12_comma_lists_are_trimmed_and_empty_items_dropped() {
    let l = load_json(
        FILE,
        &[
            ("SFTPGO_COMMAND__ENV", "A=1, B=2 ,, C= 3 ,"),
            ("SFTPGO_HTTP__CA_CERTIFICATES", " /x/ca1.pem ,/x/ca2.pem,"),
            ("SFTPGO_HOOKS__PROTOCOLS", "SFTP, FTP"),
        ],
    )
    .unwrap();
    assert_eq!(l.config.command.env, ["A=1", "B=2", "C= 3"]);
    assert_eq!(l.config.http.ca_certificates, ["/x/ca1.pem", "/x/ca2.pem"]);
    assert_eq!(l.config.hooks.protocols, ["SFTP", "FTP"]);
}

#[test]
fn empty_values_count_as_set() {
    // int -> 0 -> the timeout rule fails.
    let err = load_err(FILE, &[("SFTPGO_COMMAND__TIMEOUT", "")]);
    assert_eq!(
        err.to_string(),
        "command.timeout: invalid timeout 0: must be 1..=300"
    );
    let err = load_err(FILE, &[("SFTPGO_HTTP__TIMEOUT", "")]);
    assert_eq!(
        err.to_string(),
        "http.timeout: invalid timeout: 0: must be a finite number of seconds > 0"
    );
    // list -> empty; bool -> false; int -> 0; string -> empty (hook disabled).
    let l = load_json(
        FILE,
        &[
            ("SFTPGO_COMMAND__ENV", ""),
            ("SFTPGO_HTTP__CA_CERTIFICATES", ""),
            ("SFTPGO_HTTP__SKIP_TLS_VERIFY", ""),
            ("SFTPGO_HTTP__RETRY_MAX", ""),
            ("SFTPGO_COMMON__POST_DISCONNECT_HOOK", ""),
            ("SFTPGO_HOOKS__RETRY_AFTER_MAX", ""),
        ],
    )
    .unwrap();
    assert!(l.config.command.env.is_empty());
    assert!(l.config.http.ca_certificates.is_empty());
    assert!(!l.config.http.skip_tls_verify);
    assert_eq!(l.config.http.retry_max, 0);
    assert!(!l.config.target().unwrap().is_enabled());
    assert_eq!(l.config.hooks.retry_after_max, None);
}

#[test]
fn indexed_headers_at_index_0_and_12() {
    let l = load_json(
        "{}",
        &[
            ("SFTPGO_HTTP__HEADERS__0__KEY", "X-First"),
            ("SFTPGO_HTTP__HEADERS__0__VALUE", "one"),
            ("SFTPGO_HTTP__HEADERS__12__KEY", "X-Twelfth"),
            ("SFTPGO_HTTP__HEADERS__12__VALUE", "twelve"),
            ("SFTPGO_HTTP__HEADERS__12__URL", "https://h/hook"),
        ],
    )
    .unwrap();
    assert_eq!(
        l.config.http.headers,
        [
            HttpHeader::new("X-First", "one"),
            HttpHeader::new("X-Twelfth", "twelve").for_url("https://h/hook"),
        ]
    );
}

#[test]
fn indexed_certificates_at_index_0_and_12() {
    let l = load_json(
        "{}",
        &[
            ("SFTPGO_HTTP__CERTIFICATES__0__CERT", "/c0.pem"),
            ("SFTPGO_HTTP__CERTIFICATES__0__KEY", "/k0.pem"),
            ("SFTPGO_HTTP__CERTIFICATES__12__CERT", "c12.pem"),
            ("SFTPGO_HTTP__CERTIFICATES__12__KEY", "k12.pem"),
        ],
    )
    .unwrap();
    let dir = &l.config_dir;
    assert_eq!(
        l.config.http.certificates,
        [
            TlsKeyPair::new("/c0.pem", "/k0.pem"),
            TlsKeyPair::new(
                dir.join("c12.pem").display().to_string(),
                dir.join("k12.pem").display().to_string()
            ),
        ]
    );
}

#[test]
fn indexed_commands_at_index_0_and_12_with_hook() {
    let l = load_json(
        "{}",
        &[
            ("SFTPGO_COMMAND__COMMANDS__0__PATH", "/bin/zero"),
            ("SFTPGO_COMMAND__COMMANDS__12__PATH", "/bin/twelve"),
            ("SFTPGO_COMMAND__COMMANDS__12__TIMEOUT", " 15 "),
            ("SFTPGO_COMMAND__COMMANDS__12__ENV", "A=1, B=2,,"),
            ("SFTPGO_COMMAND__COMMANDS__12__ARGS", "arg1, arg2 ,"),
            ("SFTPGO_COMMAND__COMMANDS__12__HOOK", "post_disconnect"),
        ],
    )
    .unwrap();
    let mut twelve = CommandEntry::new("/bin/twelve");
    twelve.timeout = 15;
    twelve.env = vec!["A=1".into(), "B=2".into()];
    twelve.args = vec!["arg1".into(), "arg2".into()];
    twelve.hook = "post_disconnect".into();
    assert_eq!(
        l.config.command.commands,
        [CommandEntry::new("/bin/zero"), twelve]
    );
}

#[test]
fn hook_variable_is_validated() {
    let err = load_err(
        FILE,
        &[("SFTPGO_COMMAND__COMMANDS__0__HOOK", "post-disconnect")],
    );
    assert_eq!(err.key(), "command.commands[0].hook");
    assert!(err.to_string().contains("\"post-disconnect\""), "{err}");
}

#[test]
fn indexed_variables_merge_into_an_existing_entry() {
    let l = load_json(
        FILE,
        &[
            ("SFTPGO_HTTP__HEADERS__0__VALUE", "Bearer env"),
            ("SFTPGO_HTTP__CERTIFICATES__0__KEY", "/env/k.pem"),
            ("SFTPGO_COMMAND__COMMANDS__0__TIMEOUT", "9"),
            ("SFTPGO_COMMAND__COMMANDS__0__ARGS", "--b"),
        ],
    )
    .unwrap();
    let c = &l.config;
    assert_eq!(
        c.http.headers,
        [HttpHeader::new("Authorization", "Bearer env").for_url("https://h/")]
    );
    assert_eq!(
        c.http.certificates,
        [TlsKeyPair::new("/file/c.pem", "/env/k.pem")]
    );
    let cmd = &c.command.commands[0];
    assert_eq!(cmd.path, "/usr/local/bin/from-file");
    assert_eq!(cmd.timeout, 9);
    assert_eq!(cmd.env, ["E=1"]);
    assert_eq!(cmd.args, ["--b"]);
    assert_eq!(cmd.hook, "post_disconnect");
}

#[test]
fn an_index_past_the_file_list_is_appended() {
    let l = load_json(
        FILE,
        &[
            ("SFTPGO_HTTP__HEADERS__5__KEY", "X-B"),
            ("SFTPGO_HTTP__HEADERS__5__VALUE", "b"),
        ],
    )
    .unwrap();
    let keys: Vec<_> = l
        .config
        .http
        .headers
        .iter()
        .map(|h| h.key.as_str())
        .collect();
    assert_eq!(keys, ["Authorization", "X-B"]);
}

#[test]
fn spec_compaction_example_headers_0_8_incomplete_9() {
    let l = load_json(
        "{}",
        &[
            ("SFTPGO_HTTP__HEADERS__0__KEY", "X-Zero"),
            ("SFTPGO_HTTP__HEADERS__0__VALUE", "0"),
            ("SFTPGO_HTTP__HEADERS__8__KEY", "X-Eight"),
            ("SFTPGO_HTTP__HEADERS__9__KEY", "X-Nine"),
            ("SFTPGO_HTTP__HEADERS__9__VALUE", "9"),
        ],
    )
    .unwrap();
    assert_eq!(
        l.config.http.headers,
        [
            HttpHeader::new("X-Zero", "0"),
            HttpHeader::new("X-Nine", "9")
        ]
    );
}

#[test]
fn incomplete_entries_are_not_kept_and_leave_an_existing_entry_unchanged() {
    let l = load_json(
        FILE,
        &[
            ("SFTPGO_HTTP__HEADERS__0__VALUE", ""),
            ("SFTPGO_HTTP__CERTIFICATES__3__CERT", "/only-cert.pem"),
            ("SFTPGO_COMMAND__COMMANDS__1__ARGS", "no-path"),
        ],
    )
    .unwrap();
    let c = &l.config;
    assert_eq!(
        c.http.headers,
        [HttpHeader::new("Authorization", "Bearer file").for_url("https://h/")]
    );
    assert_eq!(c.http.certificates.len(), 1);
    assert_eq!(c.command.commands.len(), 1);
}

#[test]
fn empty_indexed_values_count_as_set() {
    let l = load_json(
        FILE,
        &[
            ("SFTPGO_HTTP__HEADERS__0__URL", ""),
            ("SFTPGO_COMMAND__COMMANDS__0__TIMEOUT", ""),
            ("SFTPGO_COMMAND__COMMANDS__0__ENV", ""),
            ("SFTPGO_COMMAND__COMMANDS__0__HOOK", ""),
        ],
    )
    .unwrap();
    assert_eq!(l.config.http.headers[0].url, "");
    let cmd = &l.config.command.commands[0];
    assert_eq!((cmd.timeout, cmd.env.len(), cmd.hook.as_str()), (0, 0, ""));
}

#[test]
fn malformed_indexed_variables_are_errors_naming_the_variable() {
    for var in [
        "SFTPGO_HTTP__HEADERS",
        "SFTPGO_HTTP__HEADERS__x__KEY",
        "SFTPGO_HTTP__HEADERS__01__KEY",
        "SFTPGO_HTTP__HEADERS__0__NAME",
        "SFTPGO_HTTP__HEADERS__0",
        "SFTPGO_HTTP__CERTIFICATES__0__URL",
        "SFTPGO_COMMAND__COMMANDS__-1__PATH",
        "SFTPGO_COMMAND__COMMANDS__99999999999999999999999__PATH",
    ] {
        let err = load_err("{}", &[(var, "x")]);
        assert_eq!(err.key(), var);
        assert!(
            err.to_string().contains("not a valid variable name"),
            "{err}"
        );
    }
    let err = load_err(
        "{}",
        &[
            ("SFTPGO_COMMAND__COMMANDS__0__PATH", "/p"),
            ("SFTPGO_COMMAND__COMMANDS__0__TIMEOUT", "ten"),
        ],
    );
    assert_eq!(err.key(), "SFTPGO_COMMAND__COMMANDS__0__TIMEOUT");
    assert!(err.to_string().contains("\"ten\""), "{err}");
    let err = load_err("{}", &[("SFTPGO_HOOKS__QUEUE_CAPACTY", "1")]);
    assert_eq!(err.key(), "SFTPGO_HOOKS__QUEUE_CAPACTY");
}

#[test]
fn other_sections_and_other_spellings_are_ignored() {
    let l = load_json(
        FILE,
        &[
            ("SFTPGO_SFTPD__BINDINGS__0__PORT", "x"),
            ("SFTPGO_COMMON__IDLE_TIMEOUT", "not-a-number"),
            ("SFTPGO_HTTPD__BINDINGS__0__PORT", "8080"),
            ("sftpgo_command__timeout", "abc"),
            ("SFTPGO_HTTP__HEADERSX", "1"),
            ("SFTPGO_DATA_PROVIDER__DRIVER", "sqlite"),
        ],
    )
    .unwrap();
    assert_eq!(l.config.command.timeout, 20);
}
