//! Configuration files: the full SFTPGo file in three formats, discovery, formats, weak typing,
//! case-insensitive keys, ignored sections, certificate paths.

use std::path::Path;

use hook_config::{
    CommandEntry, ConfigErrorKind, HookConfig, HookTarget, HttpHeader, Loader, TlsKeyPair,
};

use crate::support::{dir_with_json, fixtures, load_err, load_json, load_with};

/// What `fixtures/full.{json,yaml,toml}` must load to, with `dir` the config dir.
fn expected_full(dir: &Path) -> HookConfig {
    let abs = |p: &str| dir.join(p).display().to_string();
    let mut c = HookConfig::default();
    c.common.post_disconnect_hook =
        "https://hooks:s3cret-pass@hooks.example.com/sftpgo/disconnect?src=sftpgo".into();
    c.http.timeout = 7.5;
    c.http.retry_wait_min = 1;
    c.http.retry_wait_max = 10;
    c.http.retry_max = 5;
    c.http.ca_certificates = vec![abs("certs/ca.pem"), "/etc/ssl/extra-ca.pem".into()];
    c.http.certificates = vec![TlsKeyPair::new(
        abs("certs/client.crt"),
        abs("certs/client.key"),
    )];
    c.http.skip_tls_verify = false;
    c.http.headers = vec![
        HttpHeader::new("Authorization", "Bearer tok-s3cret").for_url("https://hooks.example.com/"),
        HttpHeader::new("X-Dropped", ""),
    ];
    c.command.timeout = 45;
    c.command.env = vec!["LANG=C.UTF-8".into(), "HOOK_MODE=prod".into()];
    let mut first = CommandEntry::new("/usr/local/bin/on-disconnect");
    first.timeout = 10;
    first.env = vec!["EXTRA=1".into()];
    first.args = vec!["--json".into(), String::new()];
    first.hook = "post_disconnect".into();
    c.command.commands = vec![first, CommandEntry::new("/usr/local/bin/check-password")];
    c.hooks.queue_capacity = 500;
    c.hooks.max_in_flight = 16;
    c.hooks.protocols = ["SFTP", "SCP", "SSH", "FTP", "DAV"]
        .map(String::from)
        .to_vec();
    c.hooks.delivery_deadline = 90.0;
    c.hooks.retry_after_max = Some(45.5);
    c.hooks.kill_grace = 0.5;
    c.hooks.output_cap = 4096;
    c.hooks.shutdown_deadline = 12.0;
    c
}

#[test]
fn full_sftpgo_file_loads_identically_in_json_yaml_and_toml() {
    let dir = fixtures();
    let mut loaded = Vec::new();
    for file in ["full.json", "full.yaml", "full.toml"] {
        let l = load_with(&dir, Some(file), &[]).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(l.config_file.as_deref(), Some(dir.join(file).as_path()));
        assert_eq!(l.config, expected_full(&dir), "{file}");
        loaded.push(l.config);
    }
    assert_eq!(loaded[0], loaded[1]);
    assert_eq!(loaded[1], loaded[2]);
    let target = loaded[0].target().unwrap();
    assert!(matches!(target, HookTarget::Http(_)));
    // The header with an empty value is kept in the list but is not effective.
    let effective: Vec<_> = loaded[0]
        .http
        .effective_headers()
        .map(|h| h.key.as_str())
        .collect();
    assert_eq!(effective, ["Authorization"]);
}

#[test]
fn no_file_gives_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let l = load_with(dir.path(), None, &[]).unwrap();
    assert_eq!(l.config_file, None);
    assert_eq!(l.config, HookConfig::default());
    assert_eq!(l.config_dir, std::path::absolute(dir.path()).unwrap());
    assert!(l.env_files.is_empty());
}

#[test]
fn default_file_is_found_in_vipers_extension_order() {
    let cases: &[(&[&str], &str)] = &[
        (&["sftpgo.yml"], "sftpgo.yml"),
        (&["sftpgo.yaml", "sftpgo.json"], "sftpgo.json"),
        (&["sftpgo.yaml", "sftpgo.toml"], "sftpgo.toml"),
        (&["sftpgo.yml", "sftpgo.yaml"], "sftpgo.yaml"),
    ];
    for (files, chosen) in cases {
        let dir = tempfile::tempdir().unwrap();
        for file in *files {
            let body = match file.rsplit('.').next().unwrap() {
                "json" => format!(r#"{{"common": {{"post_disconnect_hook": "/bin/{file}"}}}}"#),
                "toml" => format!("[common]\npost_disconnect_hook = \"/bin/{file}\"\n"),
                _ => format!("common:\n  post_disconnect_hook: /bin/{file}\n"),
            };
            std::fs::write(dir.path().join(file), body).unwrap();
        }
        let l = load_with(dir.path(), None, &[]).unwrap();
        assert_eq!(
            l.config.common.post_disconnect_hook,
            format!("/bin/{chosen}"),
            "{files:?}"
        );
        assert_eq!(l.config_file.unwrap().file_name().unwrap(), *chosen);
    }
}

#[test]
fn a_default_file_in_a_format_we_do_not_read_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("sftpgo.hcl"), "common {}\n").unwrap();
    let err = load_with(dir.path(), None, &[]).unwrap_err();
    assert!(err.to_string().contains("sftpgo.hcl"), "{err}");
    assert!(
        err.to_string().contains("unsupported configuration format"),
        "{err}"
    );
}

#[test]
fn explicit_file_is_relative_to_the_config_dir_unless_absolute() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    std::fs::write(dir.path().join("sub/hooks.YML"), "command:\n  timeout: 7\n").unwrap();
    // A default file that must not be picked when a file is given.
    std::fs::write(
        dir.path().join("sftpgo.json"),
        r#"{"command": {"timeout": 8}}"#,
    )
    .unwrap();
    let l = load_with(dir.path(), Some("sub/hooks.YML"), &[]).unwrap();
    assert_eq!(l.config.command.timeout, 7);

    let other = tempfile::tempdir().unwrap();
    let abs = dir.path().join("sub/hooks.YML");
    let l = load_with(other.path(), Some(abs.to_str().unwrap()), &[]).unwrap();
    assert_eq!(l.config.command.timeout, 7);
    assert_eq!(l.config_file.as_deref(), Some(abs.as_path()));
}

#[test]
fn unsupported_extension_missing_file_and_syntax_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("sftpgo.ini"), "[common]\n").unwrap();
    let err = load_with(dir.path(), Some("sftpgo.ini"), &[]).unwrap_err();
    assert!(err.to_string().contains("sftpgo.ini"), "{err}");
    assert!(
        err.to_string()
            .contains("unsupported configuration format \"ini\""),
        "{err}"
    );

    let err = load_with(dir.path(), Some("missing.json"), &[]).unwrap_err();
    assert_eq!(err.kind(), ConfigErrorKind::Io);
    assert!(err.to_string().contains("missing.json"), "{err}");

    for (file, body) in [
        ("bad.json", "{\"command\": {\"timeout\": }"),
        ("bad.yaml", "command:\n  timeout: [1\n"),
        ("bad.toml", "[command]\ntimeout = \n"),
    ] {
        std::fs::write(dir.path().join(file), body).unwrap();
        let err = load_with(dir.path(), Some(file), &[]).unwrap_err();
        assert_eq!(err.kind(), ConfigErrorKind::Parse, "{file}");
        assert!(err.to_string().contains(file), "{file}: {err}");
        assert!(err.to_string().contains("cannot parse"), "{file}: {err}");
    }
}

#[test]
fn unknown_sections_and_keys_of_sftpgo_sections_are_ignored() {
    let l = load_json(
        r#"{
            "sftpd": {"bindings": [{"port": 2022}]},
            "made_up_section": {"anything": [1, {"x": null}]},
            "common": {"idle_timeout": "not an int", "post_disconnect_hook": "/bin/true"},
            "http": {"future_key": {"a": 1}},
            "command": {"other": true, "timeout": 5}
        }"#,
        &[],
    )
    .unwrap();
    assert_eq!(l.config.common.post_disconnect_hook, "/bin/true");
    assert_eq!(l.config.command.timeout, 5);
}

#[test]
fn unknown_key_in_our_hooks_section_is_an_error() {
    let err = load_err(r#"{"hooks": {"queue_capacty": 5}}"#, &[]);
    assert_eq!(err.key(), "hooks.queue_capacty");
    assert!(err.to_string().contains("unknown key"), "{err}");
}

#[test]
fn keys_are_case_insensitive() {
    let l = load_json(
        r#"{"COMMAND": {"Timeout": 9, "COMMANDS": [{"Path": "/x", "HOOK": "startup"}]},
            "Http": {"Headers": [{"KEY": "X-A", "Value": "1"}]}}"#,
        &[],
    )
    .unwrap();
    assert_eq!(l.config.command.timeout, 9);
    assert_eq!(l.config.command.commands[0].path, "/x");
    assert_eq!(l.config.command.commands[0].hook, "startup");
    assert_eq!(l.config.http.headers[0].key, "X-A");
    assert_eq!(l.config.http.headers[0].value, "1");
}

#[test]
fn a_key_given_twice_in_different_case_is_an_error() {
    let err = load_err(r#"{"command": {"timeout": 9, "TIMEOUT": 10}}"#, &[]);
    assert_eq!(err.key(), "command.timeout");
    assert!(err.to_string().contains("given twice"), "{err}");
}

#[test]
fn values_are_weakly_typed_as_viper_decodes_them() {
    let l = load_json(
        r#"{
            "common": {"post_disconnect_hook": "/bin/hook"},
            "http": {"timeout": "2.5", "retry_wait_min": "0x3", "retry_wait_max": 12.9,
                     "retry_max": true, "skip_tls_verify": "1",
                     "ca_certificates": "/a.pem, /b.pem,,",
                     "certificates": {"cert": "/c.pem", "key": "/k.pem"}},
            "command": {"timeout": "30", "env": "A=1, B=2,",
                        "commands": [{"path": "/x", "timeout": "", "args": [1, 2.5, true]}]},
            "hooks": {"queue_capacity": "010", "delivery_deadline": 3, "kill_grace": "0"}
        }"#,
        &[],
    )
    .unwrap();
    let c = &l.config;
    assert_eq!(c.http.timeout, 2.5);
    assert_eq!(c.http.retry_wait_min, 3);
    assert_eq!(
        c.http.retry_wait_max, 12,
        "floats are truncated, as Go converts them"
    );
    assert_eq!(c.http.retry_max, 1);
    assert!(c.http.skip_tls_verify);
    assert_eq!(c.http.ca_certificates, ["/a.pem", "/b.pem"]);
    assert_eq!(c.http.certificates, [TlsKeyPair::new("/c.pem", "/k.pem")]);
    assert_eq!(c.command.timeout, 30);
    assert_eq!(c.command.env, ["A=1", "B=2"]);
    assert_eq!(c.command.commands[0].timeout, 0);
    assert_eq!(c.command.commands[0].args, ["1", "2.5", "1"]);
    assert_eq!(
        c.hooks.queue_capacity, 8,
        "Go's ParseInt with base 0 reads 010 as octal"
    );
    assert_eq!(c.hooks.delivery_deadline, 3.0);
    assert_eq!(c.hooks.kill_grace, 0.0);

    for (bool_text, want) in [
        ("true", true),
        ("True", true),
        ("t", true),
        ("0", false),
        ("", false),
    ] {
        let json = format!(r#"{{"http": {{"skip_tls_verify": "{bool_text}"}}}}"#);
        assert_eq!(
            load_json(&json, &[]).unwrap().config.http.skip_tls_verify,
            want,
            "{bool_text}"
        );
    }
}

#[test]
fn null_leaves_the_default() {
    let l = load_json(r#"{"command": {"timeout": null}, "http": null}"#, &[]).unwrap();
    assert_eq!(l.config.command.timeout, 30);
    assert_eq!(l.config.http.timeout, 20.0);
}

#[test]
fn type_errors_name_the_key() {
    for (json, key, text) in [
        (
            r#"{"command": {"timeout": "abc"}}"#,
            "command.timeout",
            "expected an integer, found the string \"abc\"",
        ),
        (
            r#"{"command": {"timeout": [1]}}"#,
            "command.timeout",
            "expected an integer, found a list",
        ),
        (
            r#"{"http": {"timeout": "fast"}}"#,
            "http.timeout",
            "expected a number",
        ),
        (
            r#"{"http": {"skip_tls_verify": "yes"}}"#,
            "http.skip_tls_verify",
            "expected a boolean",
        ),
        (
            r#"{"http": {"headers": [{"key": "A"}, 3]}}"#,
            "http.headers[1]",
            "expected a table",
        ),
        (
            r#"{"http": {"headers": "x"}}"#,
            "http.headers",
            "expected a list of tables",
        ),
        (
            r#"{"command": {"env": {"A": "1"}}}"#,
            "command.env",
            "expected a list of strings",
        ),
        (
            r#"{"command": {"commands": [{"args": [[1]]}]}}"#,
            "command.commands[0].args[0]",
            "expected a string",
        ),
        (r#"{"command": 5}"#, "command", "expected a table"),
        (
            r#"{"hooks": {"output_cap": -1}}"#,
            "hooks.output_cap",
            "expected a non-negative integer",
        ),
    ] {
        let err = load_err(json, &[]);
        assert_eq!(err.key(), key, "{json}");
        assert_eq!(err.kind(), ConfigErrorKind::Parse, "{json}");
        assert!(err.to_string().contains(text), "{json}: {err}");
    }
}

#[test]
fn relative_certificate_paths_are_resolved_against_the_config_dir() {
    let dir = dir_with_json(
        r#"{"http": {"ca_certificates": ["ca.pem", "../shared/ca.pem", "/abs/ca.pem", "./x/../y.pem"],
                     "certificates": [{"cert": "c.pem", "key": "/k.pem"}]}}"#,
    );
    let l = load_with(dir.path(), None, &[]).unwrap();
    let base = std::path::absolute(dir.path()).unwrap();
    let parent = base.parent().unwrap();
    assert_eq!(
        l.config.http.ca_certificates,
        [
            base.join("ca.pem").display().to_string(),
            parent.join("shared/ca.pem").display().to_string(),
            "/abs/ca.pem".to_owned(),
            base.join("y.pem").display().to_string(),
        ]
    );
    assert_eq!(
        l.config.http.certificates[0].cert,
        base.join("c.pem").display().to_string()
    );
    assert_eq!(l.config.http.certificates[0].key, "/k.pem");
    // The resolved configuration still validates.
    l.config.validate().unwrap();
}

#[test]
fn process_environment_is_the_default() {
    // Reads the real environment (which a test must never modify): with no SFTPGO_ hook
    // variables set, the file's values stand.
    if std::env::vars().any(|(k, _)| k.starts_with("SFTPGO_")) {
        return;
    }
    let dir = dir_with_json(r#"{"command": {"timeout": 11}}"#);
    let l = Loader::new().config_dir(dir.path()).load().unwrap();
    assert_eq!(l.config.command.timeout, 11);
}

/// Issue 11, item 7: a configuration file is read with a bound, whatever its format, and must be
/// a regular file; the error names the file.
#[test]
fn item7_configuration_files_are_bounded_and_regular() {
    let dir = tempfile::tempdir().unwrap();
    let limit = hook_config::MAX_CONFIG_FILE_SIZE as usize;
    for (file, head, tail) in [
        ("big.json", "{\"pad\": \"", "\"}"),
        ("big.yaml", "pad: \"", "\"\n"),
        ("big.toml", "pad = \"", "\"\n"),
    ] {
        // Exactly at the limit: read.
        let pad = "x".repeat(limit - head.len() - tail.len());
        std::fs::write(dir.path().join(file), format!("{head}{pad}{tail}")).unwrap();
        load_with(dir.path(), Some(file), &[]).unwrap();
        // One byte more: refused before parsing.
        std::fs::write(dir.path().join(file), format!("{head}{pad}x{tail}")).unwrap();
        let err = load_with(dir.path(), Some(file), &[]).unwrap_err();
        assert_eq!(err.kind(), ConfigErrorKind::Io, "{file}");
        assert!(err.to_string().contains(file), "{file}: {err}");
        assert!(err.to_string().contains("larger than"), "{file}: {err}");
        std::fs::remove_file(dir.path().join(file)).unwrap();
    }
    std::fs::create_dir(dir.path().join("dir.json")).unwrap();
    let err = load_with(dir.path(), Some("dir.json"), &[]).unwrap_err();
    assert!(
        err.to_string().contains("dir.json") && err.to_string().contains("not a regular file"),
        "{err}"
    );
}

/// Issue 11, item 7: go-yaml's excessive-aliasing rule, through the loader.
#[test]
fn item7_a_yaml_alias_bomb_is_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut bomb = String::from(
        "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    for (name, prev) in [
        ("b", "a"),
        ("c", "b"),
        ("d", "c"),
        ("e", "d"),
        ("f", "e"),
        ("g", "f"),
        ("h", "g"),
        ("i", "h"),
    ] {
        let refs = vec![format!("*{prev}"); 9].join(",");
        bomb.push_str(&format!("{name}: &{name} [{refs}]\n"));
    }
    assert_eq!(bomb.len(), 342);
    std::fs::write(dir.path().join("sftpgo.yaml"), &bomb).unwrap();
    let err = load_with(dir.path(), None, &[]).unwrap_err();
    assert_eq!(err.kind(), ConfigErrorKind::Parse);
    assert!(err.to_string().contains("sftpgo.yaml"), "{err}");
    assert!(err.to_string().contains("excessive aliasing"), "{err}");
    // Aliases as SFTPGo users write them still load.
    std::fs::write(
        dir.path().join("sftpgo.yaml"),
        "x-env: &env [A=1]\ncommand:\n  env: *env\n",
    )
    .unwrap();
    let loaded = load_with(dir.path(), None, &[]).unwrap();
    assert_eq!(loaded.config.command.env, ["A=1"]);
}
