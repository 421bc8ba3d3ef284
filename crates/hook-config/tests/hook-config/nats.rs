//! The `nats` section and `nats://` targets: defaults, file keys, `SFTPGO_NATS__*` variables,
//! validation naming the key, paths made absolute, secrets redacted.

use hook_config::{HookConfig, HookTarget, NatsSection, TlsKeyPair};

use crate::support::{dir_with_json, load_err, load_json, load_with};

#[test]
fn defaults_are_the_documented_ones() {
    let n = HookConfig::default().nats;
    assert_eq!(n.subject_prefix, "sftpgo.hooks.disconnect");
    assert_eq!(n.stream, "SFTPGO_HOOKS");
    assert!(n.create_stream);
    assert_eq!(n.replicas, 1);
    assert_eq!(n.duplicate_window, 120.0);
    assert_eq!(n.ack_timeout, 5.0);
    assert_eq!(n.consumer, "sftpgo-hooks-relay");
    assert_eq!(n.ack_wait, 30.0);
    assert!(n.credentials_file.is_empty() && n.token.is_empty() && !n.skip_tls_verify);
    assert_eq!(
        load_json("{}", &[]).unwrap().config.nats,
        NatsSection::default()
    );
}

#[test]
fn file_keys_and_relative_paths() {
    let dir = dir_with_json(
        r#"{"common": {"post_disconnect_hook": "nats://u:pw@n1:4222, tls://n2"},
            "nats": {"Subject_Prefix": "fleet.disc", "stream": "FLEET", "create_stream": "false",
            "replicas": "3", "duplicate_window": 60, "ack_timeout": "2.5", "token": "t",
            "credentials_file": "a.creds", "ca_certificates": "ca1.pem, /abs/ca2.pem",
            "certificates": {"cert": "c.pem", "key": "k.pem"}, "skip_tls_verify": 1,
            "consumer": "workers", "ack_wait": 10}}"#,
    );
    let l = load_with(dir.path(), None, &[]).unwrap();
    let n = &l.config.nats;
    let base = l.config_dir.display().to_string();
    assert_eq!(n.subject_prefix, "fleet.disc");
    assert_eq!(n.stream, "FLEET");
    assert!(!n.create_stream);
    assert_eq!(n.replicas, 3);
    assert_eq!(n.duplicate_window, 60.0);
    assert_eq!(n.ack_timeout, 2.5);
    assert_eq!(n.token, "t");
    assert_eq!(n.credentials_file, format!("{base}/a.creds"));
    assert_eq!(
        n.ca_certificates,
        [format!("{base}/ca1.pem"), "/abs/ca2.pem".into()]
    );
    assert_eq!(
        n.certificates,
        [TlsKeyPair::new(
            format!("{base}/c.pem"),
            format!("{base}/k.pem")
        )]
    );
    assert!(n.skip_tls_verify);
    assert_eq!(n.consumer, "workers");
    assert_eq!(n.ack_wait, 10.0);
    let HookTarget::Nats(servers) = l.config.target().unwrap() else {
        panic!("a NATS target")
    };
    assert_eq!(servers.urls().len(), 2);
    assert!(servers.requires_tls());
    assert_eq!(n.subject_for(hook_core::Protocol::Ftp), "fleet.disc.ftp");
}

#[test]
fn every_variable_overrides_the_file() {
    let env = [
        ("SFTPGO_NATS__SUBJECT_PREFIX", "a.b"),
        ("SFTPGO_NATS__STREAM", "S"),
        ("SFTPGO_NATS__CREATE_STREAM", "false"),
        ("SFTPGO_NATS__REPLICAS", "3"),
        ("SFTPGO_NATS__DUPLICATE_WINDOW", "30"),
        ("SFTPGO_NATS__ACK_TIMEOUT", "1.5"),
        ("SFTPGO_NATS__CREDENTIALS_FILE", "/x.creds"),
        ("SFTPGO_NATS__TOKEN", "tok"),
        ("SFTPGO_NATS__CA_CERTIFICATES", "/a.pem, /b.pem,"),
        ("SFTPGO_NATS__SKIP_TLS_VERIFY", "true"),
        ("SFTPGO_NATS__CONSUMER", "c"),
        ("SFTPGO_NATS__ACK_WAIT", "7"),
        ("SFTPGO_NATS__CERTIFICATES__0__CERT", "/c.pem"),
        ("SFTPGO_NATS__CERTIFICATES__0__KEY", "/k.pem"),
    ];
    let l = load_json(r#"{"nats": {"stream": "FILE", "replicas": 1}}"#, &env).unwrap();
    let n = &l.config.nats;
    assert_eq!(
        (
            n.subject_prefix.as_str(),
            n.stream.as_str(),
            n.create_stream,
            n.replicas
        ),
        ("a.b", "S", false, 3)
    );
    assert_eq!(
        (n.duplicate_window, n.ack_timeout, n.ack_wait),
        (30.0, 1.5, 7.0)
    );
    assert_eq!(
        (n.credentials_file.as_str(), n.token.as_str()),
        ("/x.creds", "tok")
    );
    assert_eq!(n.ca_certificates, ["/a.pem", "/b.pem"]);
    assert!(n.skip_tls_verify);
    assert_eq!(n.consumer, "c");
    assert_eq!(n.certificates, [TlsKeyPair::new("/c.pem", "/k.pem")]);
}

#[test]
fn bad_values_fail_at_load_naming_the_key_or_variable() {
    for (json, env, starts) in [
        (
            r#"{"nats": {"replicas": 0}}"#,
            vec![],
            "nats.replicas: invalid value 0",
        ),
        (
            r#"{"nats": {"ack_timeout": 0}}"#,
            vec![],
            "nats.ack_timeout: invalid duration 0",
        ),
        (
            r#"{"nats": {"stream": "a.b"}}"#,
            vec![],
            "nats.stream: \"a.b\" is not a JetStream name",
        ),
        (
            r#"{"nats": {"subject_prefix": "a.*"}}"#,
            vec![],
            "nats.subject_prefix: \"a.*\"",
        ),
        (
            r#"{"nats": {"strem": "x"}}"#,
            vec![],
            "nats.strem: unknown key",
        ),
        (
            r#"{"nats": {"replicas": "three"}}"#,
            vec![],
            "nats.replicas: expected an integer",
        ),
        (
            r#"{"nats": {"certificates": [{"cert": "a", "key": "b"}, {"cert": "c", "key": "d"}]}}"#,
            vec![],
            "nats.certificates: 2 pairs given",
        ),
        (
            "{}",
            vec![("SFTPGO_NATS__ACK_WAIT", "soon")],
            "SFTPGO_NATS__ACK_WAIT: \"soon\" is not a number (sets nats.ack_wait)",
        ),
        (
            "{}",
            vec![("SFTPGO_NATS__STREAMS", "x")],
            "SFTPGO_NATS__STREAMS: unknown variable",
        ),
        (
            "{}",
            vec![("SFTPGO_COMMON__POST_DISCONNECT_HOOK", "nats://h/p")],
            "common.post_disconnect_hook: \"nats://h/p\": a NATS server URL has no path",
        ),
    ] {
        let err = load_err(json, &env).to_string();
        assert!(err.starts_with(starts), "{err}");
    }
}

#[test]
fn secrets_are_redacted_in_debug_redacted_and_errors() {
    let env = [
        ("SFTPGO_NATS__TOKEN", "t0ken-s3cret"),
        (
            "SFTPGO_COMMON__POST_DISCONNECT_HOOK",
            "nats://a:pw1-s3cret@h1,nats://b:pw2-s3cret@h2",
        ),
    ];
    let l = load_json("{}", &env).unwrap();
    let shown = format!("{:?} {:?}", l.config, l.config.redacted());
    assert!(!shown.contains("s3cret"), "{shown}");
    assert_eq!(
        l.config.redacted().common.post_disconnect_hook,
        "nats://a:xxxxx@h1,nats://b:xxxxx@h2"
    );
    assert_eq!(l.config.redacted().nats.token, "xxxxx");
    let err = load_err(
        "{}",
        &[(
            "SFTPGO_COMMON__POST_DISCONNECT_HOOK",
            "nats://a:pw1-s3cret@h1,nats://b:pw2-s3cret@h2/x",
        )],
    )
    .to_string();
    assert!(!err.contains("s3cret"), "{err}");
}
