//! Every validation rule of spec 5.1, D1, D10 and D12, and of our `hooks` section: the error
//! names the dotted key and the value.

use hook_config::{
    COMMAND_HOOK_NAMES, CommandEntry, ConfigErrorKind, HOOK_KEY, HookConfig, HookTarget,
    HttpHeader, TlsKeyPair,
};

/// Applies `change` to a default configuration and returns the validation error text.
fn err(change: impl FnOnce(&mut HookConfig)) -> String {
    let mut c = HookConfig::default();
    change(&mut c);
    let e = c.validate().expect_err("expected a validation error");
    assert_eq!(e.kind(), ConfigErrorKind::Invalid);
    assert!(e.to_string().starts_with(&format!("{}: ", e.key())), "{e}");
    e.to_string()
}

fn ok(change: impl FnOnce(&mut HookConfig)) {
    let mut c = HookConfig::default();
    change(&mut c);
    if let Err(e) = c.validate() {
        panic!("unexpected error: {e}");
    }
}

#[test]
fn defaults_are_valid() {
    ok(|_| {});
    assert_eq!(
        HookConfig::default().target().unwrap(),
        HookTarget::Disabled
    );
}

#[test]
fn d1_hook_target_is_checked_at_validation() {
    for bad in [
        "http_hook.sh",
        "HTTPfoo",
        "ftp://h/x",
        " http://h/x",
        "hooks/run.sh",
        "http:relative",
    ] {
        let text = err(|c| c.common.post_disconnect_hook = bad.into());
        assert!(text.starts_with(&format!("{HOOK_KEY}: {bad:?}")), "{text}");
    }
    for good in ["", "http://h/x", "HTTPS://h/x", "/usr/local/bin/hook"] {
        ok(|c| c.common.post_disconnect_hook = good.into());
    }
    let mut c = HookConfig::default();
    c.common.post_disconnect_hook = "HTTP://h.example/x".into();
    assert!(matches!(c.target().unwrap(), HookTarget::Http(_)));
}

#[test]
fn http_timeout_must_be_finite_and_positive() {
    for (value, shown) in [
        (0.0, "0"),
        (-1.0, "-1"),
        (f64::NAN, "NaN"),
        (f64::INFINITY, "inf"),
    ] {
        let text = err(|c| c.http.timeout = value);
        assert_eq!(
            text,
            format!(
                "http.timeout: invalid timeout: {shown}: must be a finite number of seconds > 0"
            )
        );
    }
    ok(|c| c.http.timeout = 0.001);
}

#[test]
fn d10_negative_retry_values_are_rejected() {
    assert_eq!(
        err(|c| c.http.retry_wait_min = -1),
        "http.retry_wait_min: invalid value -1: must be >= 0"
    );
    assert_eq!(
        err(|c| c.http.retry_wait_max = -2),
        "http.retry_wait_max: invalid value -2: must be >= 0"
    );
    assert_eq!(
        err(|c| c.http.retry_max = -3),
        "http.retry_max: invalid value -3: must be >= 0"
    );
    ok(|c| {
        c.http.retry_wait_min = 0;
        c.http.retry_wait_max = 0;
        c.http.retry_max = 0;
    });
}

#[test]
fn certificate_paths_follow_is_file_input_valid() {
    for bad in ["", ".", "..", "./", "a/..", "a/../.."] {
        assert_eq!(
            err(|c| c.http.ca_certificates = vec!["/ok.pem".into(), bad.into()]),
            format!(
                "http.ca_certificates[1]: invalid CA certificate path {bad:?}: it names no file"
            )
        );
        assert_eq!(
            err(|c| c.http.certificates = vec![TlsKeyPair::new(bad, "/k.pem")]),
            format!(
                "http.certificates[0].cert: invalid certificate path {bad:?}: it names no file"
            )
        );
        assert_eq!(
            err(|c| c.http.certificates = vec![TlsKeyPair::new("/c.pem", bad)]),
            format!("http.certificates[0].key: invalid key path {bad:?}: it names no file")
        );
    }
    let text = err(|c| c.http.ca_certificates = vec!["a\0b".into()]);
    assert!(text.starts_with("http.ca_certificates[0]: "), "{text}");
    ok(|c| {
        c.http.ca_certificates = vec!["../x.pem".into(), "ca.pem".into(), "/".into()];
        c.http.certificates = vec![TlsKeyPair::new("../c.pem", "k.pem")];
    });
}

#[test]
fn d10_header_names_must_be_tokens() {
    for bad in ["Bad Name", "X:Y", "X\r\nY", "Ünicode", "(x)"] {
        let text =
            err(|c| c.http.headers = vec![HttpHeader::new("X-Ok", "1"), HttpHeader::new(bad, "v")]);
        assert_eq!(
            text,
            format!("http.headers[1].key: {bad:?} is not a valid header name (RFC 9110 token)")
        );
    }
    ok(|c| c.http.headers = vec![HttpHeader::new("X-Api-Key_2!#$%&'*+.^`|~", "v")]);
}

#[test]
fn d10_header_values_have_no_cr_lf_nul_and_are_redacted() {
    for (value, what) in [
        ("a\rb", "a CR"),
        ("a\nb", "a LF"),
        ("a\0b", "a NUL byte"),
        ("a\x01", "the control character 0x01"),
    ] {
        let secret = format!("s3cret{value}");
        let text = err(|c| c.http.headers = vec![HttpHeader::new("Authorization", secret.clone())]);
        assert_eq!(
            text,
            format!("http.headers[0].value: xxxxx (value of \"Authorization\") contains {what}")
        );
        assert!(!text.contains("s3cret"));
    }
    ok(|c| c.http.headers = vec![HttpHeader::new("X", "tab\tand ünïcode")]);
}

#[test]
fn d10_header_urls_have_no_control_characters_and_passwords_are_redacted() {
    let text =
        err(|c| c.http.headers = vec![HttpHeader::new("X", "v").for_url("https://u:pw123@h/\n")]);
    assert_eq!(
        text,
        "http.headers[0].url: \"https://u:xxxxx@h/\\n\" contains a LF"
    );
    let text = err(|c| c.http.headers = vec![HttpHeader::new("X", "v").for_url("https://h/\r")]);
    assert_eq!(text, "http.headers[0].url: \"https://h/\\r\" contains a CR");
}

#[test]
fn headers_with_an_empty_key_or_value_are_dropped_not_validated() {
    let mut c = HookConfig::default();
    c.http.headers = vec![
        HttpHeader::new("Bad Name", ""),
        HttpHeader::new("", "bad\r\nvalue"),
        HttpHeader::new("X-Kept", "1"),
    ];
    c.validate().unwrap();
    let kept: Vec<_> = c.http.effective_headers().map(|h| h.key.as_str()).collect();
    assert_eq!(kept, ["X-Kept"]);
}

#[test]
fn command_timeout_range() {
    assert_eq!(
        err(|c| c.command.timeout = 0),
        "command.timeout: invalid timeout 0: must be 1..=300"
    );
    assert_eq!(
        err(|c| c.command.timeout = 301),
        "command.timeout: invalid timeout 301: must be 1..=300"
    );
    assert_eq!(
        err(|c| c.command.timeout = -5),
        "command.timeout: invalid timeout -5: must be 1..=300"
    );
    ok(|c| c.command.timeout = 1);
    ok(|c| c.command.timeout = 300);
}

#[test]
fn command_env_entries_need_an_equals_sign() {
    assert_eq!(
        err(|c| c.command.env = vec!["A=1".into(), "FOO".into()]),
        "command.env[1]: \"FOO\" has no '='"
    );
    ok(|c| {
        c.command.env = vec![
            "A=".into(),
            "=x".into(),
            "A=b=c".into(),
            "SFTPGO_X=1".into(),
        ]
    });
    let text = err(|c| c.command.env = vec!["TOKEN=se\0cret".into()]);
    assert_eq!(
        text,
        "command.env[0]: the entry for \"TOKEN\" contains a NUL byte"
    );
}

#[test]
fn each_command_path_timeout_env_and_hook_are_checked() {
    let entry = |path: &str| CommandEntry::new(path);
    assert_eq!(
        err(|c| c.command.commands = vec![entry("/a"), entry("")]),
        "command.commands[1].path: invalid path \"\": must not be empty"
    );
    for bad in [301, -1] {
        assert_eq!(
            err(|c| {
                let mut e = entry("/a");
                e.timeout = bad;
                c.command.commands = vec![entry("/ok"), e];
            }),
            format!(
                "command.commands[1].timeout: invalid timeout {bad} for command \"/a\": must be 0 (use command.timeout) or 1..=300"
            )
        );
    }
    assert_eq!(
        err(|c| {
            let mut e = entry("/a");
            e.env = vec!["X=1".into(), "FOO".into()];
            c.command.commands = vec![entry("/ok"), e];
        }),
        "command.commands[1].env[1]: \"FOO\" has no '='"
    );
    for bad in ["post-disconnect", "data_retention", "POST_DISCONNECT"] {
        assert_eq!(
            err(|c| {
                let mut e = entry("/a");
                e.hook = bad.into();
                c.command.commands = vec![e];
            }),
            format!(
                "command.commands[0].hook: invalid hook name {bad:?}, supported values: [fs_actions, provider_actions, startup, post_connect, post_disconnect, check_password, pre_login, post_login, external_auth, keyboard_interactive]"
            )
        );
    }
    let text = err(|c| {
        let mut e = entry("/a");
        e.args = vec!["ok".into(), "b\0d".into()];
        c.command.commands = vec![e];
    });
    assert!(text.starts_with("command.commands[0].args[1]: "), "{text}");
    ok(|c| {
        c.command.commands = COMMAND_HOOK_NAMES
            .iter()
            .chain([&""])
            .map(|h| {
                let mut e = entry("/a");
                e.hook = (*h).into();
                e.timeout = 300;
                e.args = vec![String::new()];
                e
            })
            .collect();
    });
}

#[test]
fn sftpgo_validation_order_first_error_wins() {
    let mut c = HookConfig::default();
    c.command.timeout = 0;
    c.command.env = vec!["FOO".into()];
    let mut bad = CommandEntry::new("");
    bad.timeout = 999;
    c.command.commands = vec![bad];
    assert_eq!(c.validate().unwrap_err().key(), "command.timeout");
    c.command.timeout = 30;
    assert_eq!(c.validate().unwrap_err().key(), "command.env[0]");
    c.command.env.clear();
    assert_eq!(c.validate().unwrap_err().key(), "command.commands[0].path");
    c.command.commands[0].path = "/p".into();
    c.command.commands[0].env = vec!["FOO".into()];
    c.command.commands[0].hook = "nope".into();
    assert_eq!(
        c.validate().unwrap_err().key(),
        "command.commands[0].timeout"
    );
    c.command.commands[0].timeout = 0;
    assert_eq!(
        c.validate().unwrap_err().key(),
        "command.commands[0].env[0]"
    );
    c.command.commands[0].env.clear();
    assert_eq!(c.validate().unwrap_err().key(), "command.commands[0].hook");
}

#[test]
fn hooks_section_rules() {
    assert_eq!(
        err(|c| c.hooks.queue_capacity = 0),
        "hooks.queue_capacity: invalid value 0: must be > 0"
    );
    assert_eq!(
        err(|c| c.hooks.max_in_flight = 0),
        "hooks.max_in_flight: invalid value 0: must be > 0"
    );
    assert!(err(|c| c.hooks.protocols.clear()).starts_with("hooks.protocols: empty"));
    assert_eq!(
        err(|c| c.hooks.protocols = vec!["SFTP".into(), "sftp".into()]),
        "hooks.protocols[1]: \"sftp\" is not a protocol: expected one of SFTP, SCP, SSH, FTP, DAV, HTTP, OIDC"
    );
    for (value, shown) in [(0.0, "0"), (f64::NAN, "NaN"), (-1.0, "-1")] {
        assert_eq!(
            err(|c| c.hooks.delivery_deadline = value),
            format!(
                "hooks.delivery_deadline: invalid duration {shown}: must be a finite number of seconds > 0"
            )
        );
    }
    for (value, shown) in [(-0.5, "-0.5"), (f64::INFINITY, "inf")] {
        assert_eq!(
            err(|c| c.hooks.kill_grace = value),
            format!(
                "hooks.kill_grace: invalid duration {shown}: must be a finite number of seconds >= 0"
            )
        );
        assert_eq!(
            err(|c| c.hooks.retry_after_max = Some(value)),
            format!(
                "hooks.retry_after_max: invalid duration {shown}: must be a finite number of seconds >= 0"
            )
        );
        assert_eq!(
            err(|c| c.hooks.shutdown_deadline = value),
            format!(
                "hooks.shutdown_deadline: invalid duration {shown}: must be a finite number of seconds >= 0"
            )
        );
    }
    ok(|c| {
        c.hooks.kill_grace = 0.0;
        c.hooks.shutdown_deadline = 0.0;
        c.hooks.retry_after_max = Some(0.0);
        c.hooks.output_cap = 0;
        c.hooks.protocols = vec!["DAV".into(), "OIDC".into()];
    });
    let mut c = HookConfig::default();
    c.hooks.protocols = vec!["FTP".into(), "HTTP".into()];
    assert_eq!(
        c.hooks.parsed_protocols().unwrap(),
        [hook_core::Protocol::Ftp, hook_core::Protocol::Http]
    );
}

#[test]
fn command_for_matches_path_and_hook_in_order() {
    let mut c = HookConfig::default();
    let mut other = CommandEntry::new("/h");
    other.hook = "check_password".into();
    other.timeout = 5;
    let mut any = CommandEntry::new("/h");
    any.timeout = 6;
    c.command.commands = vec![other, any];
    assert_eq!(
        c.command
            .command_for(b"/h", "post_disconnect")
            .unwrap()
            .1
            .timeout,
        6
    );
    assert_eq!(
        c.command
            .command_for(b"/h", "check_password")
            .unwrap()
            .1
            .timeout,
        5
    );
    assert!(c.command.command_for(b"/h2", "post_disconnect").is_none());
    assert_eq!(c.command.command_for(b"/h", "").unwrap().0, 1);
}
