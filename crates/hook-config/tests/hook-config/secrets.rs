//! Secrets (URL passwords, header values) never appear in errors or `Debug` output (D11).

use hook_config::{HookConfig, HookTarget, HttpHeader};

#[test]
fn debug_of_a_configuration_hides_header_values_and_url_passwords() {
    let mut c = HookConfig::default();
    c.common.post_disconnect_hook = "https://u:hook-pw-1@h.example/x".into();
    c.http.headers = vec![
        HttpHeader::new("Authorization", "Bearer hdr-secret-2").for_url("https://v:url-pw-3@h/"),
    ];
    let shown = format!("{c:?} {c:#?} {:?}", c.target().unwrap());
    for secret in ["hook-pw-1", "hdr-secret-2", "url-pw-3"] {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }
    assert!(shown.contains("Authorization"));
    let HookTarget::Http(url) = c.target().unwrap() else {
        panic!("not http")
    };
    assert_eq!(url.to_string(), "https://u:xxxxx@h.example/x");
}

#[test]
fn errors_hide_header_values_and_url_passwords() {
    let mut c = HookConfig::default();
    c.common.post_disconnect_hook = "http://u:hook-pw-1@h:port/".into();
    let text = c.validate().unwrap_err().to_string();
    assert!(text.starts_with("common.post_disconnect_hook: "), "{text}");
    assert!(!text.contains("hook-pw-1"), "{text}");

    c.common.post_disconnect_hook.clear();
    c.http.headers = vec![HttpHeader::new("X-Token", "hdr-secret-2\r\n")];
    let text = c.validate().unwrap_err().to_string();
    assert!(!text.contains("hdr-secret-2"), "{text}");

    c.http.headers = vec![HttpHeader::new("X-Token", "ok").for_url("https://v:url-pw-3@h/\0")];
    let text = c.validate().unwrap_err().to_string();
    assert!(!text.contains("url-pw-3"), "{text}");
}

#[cfg(feature = "load")]
#[test]
fn loader_debug_and_load_errors_hide_secrets() {
    use crate::support::{dir_with_json, load_with};
    use hook_config::Loader;

    let loader = Loader::new().env_vars([("SFTPGO_HTTP__HEADERS__0__VALUE", "env-secret-4")]);
    assert!(!format!("{loader:?}").contains("env-secret-4"));

    // A TOML syntax error quotes the offending line: it must not reach the error.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("sftpgo.toml"),
        "[[http.headers]]\nkey = \"A\"\nvalue = \"toml-secret-5\nurl = \"\"\n",
    )
    .unwrap();
    let text = load_with(dir.path(), None, &[]).unwrap_err().to_string();
    assert!(!text.contains("toml-secret-5"), "{text}");

    // A header value of the wrong type is described, not shown.
    let dir = dir_with_json(r#"{"http": {"headers": [{"key": "A", "value": ["json-secret-6"]}]}}"#);
    let err = load_with(dir.path(), None, &[]).unwrap_err();
    assert_eq!(err.key(), "http.headers[0].value");
    assert!(!err.to_string().contains("json-secret-6"), "{err}");

    // Headers written as strings instead of tables: the strings are described, not shown.
    for json in [
        r#"{"http": {"headers": ["Authorization: Bearer json-secret-9"]}}"#,
        r#"{"http": {"headers": "Authorization: Bearer json-secret-9"}}"#,
    ] {
        let err = load_with(dir_with_json(json).path(), None, &[]).unwrap_err();
        assert!(err.key().starts_with("http.headers"), "{err}");
        assert!(err.to_string().contains("a string"), "{err}");
        assert!(!err.to_string().contains("json-secret-9"), "{err}");
    }

    // A loaded configuration's Debug.
    let dir = dir_with_json(
        r#"{"common": {"post_disconnect_hook": "https://u:hook-pw-7@h/"},
            "http": {"headers": [{"key": "A", "value": "json-secret-8"}]}}"#,
    );
    let loaded = load_with(dir.path(), None, &[]).unwrap();
    let shown = format!("{loaded:?}");
    assert!(
        !shown.contains("hook-pw-7") && !shown.contains("json-secret-8"),
        "{shown}"
    );
}
