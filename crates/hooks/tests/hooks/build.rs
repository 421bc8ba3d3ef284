//! `build_hook`: the configured target picks the backend; errors name the key.

use hooks::{BuildErrorKind, HOOK_KEY, HookConfig, HookTarget, build_hook, build_hook_for_target};

fn config_with(hook: &str) -> HookConfig {
    let mut config = HookConfig::default();
    config.common.post_disconnect_hook = hook.into();
    config
}

#[test]
fn disabled_builds_nothing() {
    assert!(build_hook(&HookConfig::default()).unwrap().is_none());
    assert!(
        build_hook_for_target("--hook", &HookTarget::Disabled, &HookConfig::default())
            .unwrap()
            .is_none()
    );
}

#[test]
fn invalid_target_names_the_key_without_the_password() {
    let err = build_hook(&config_with("http_hook.sh")).unwrap_err();
    assert_eq!(err.kind(), BuildErrorKind::Config);
    assert_eq!(err.key(), HOOK_KEY);
    assert!(
        err.to_string()
            .starts_with("common.post_disconnect_hook: \"http_hook.sh\""),
        "{err}"
    );
    assert!(std::error::Error::source(&err).is_some());
    assert_eq!(err.config_error().unwrap().key(), HOOK_KEY);

    let err = build_hook(&config_with("http://u:s3cret@h:port/")).unwrap_err();
    assert!(!format!("{err} {err:?}").contains("s3cret"), "{err:?}");
}

#[test]
fn target_from_elsewhere_is_named_by_its_key() {
    let target = HookTarget::parse_for_key("--hook", "relative.sh").unwrap_err();
    assert_eq!(target.key(), "--hook");
    let err = hooks::BuildError::from(target);
    assert_eq!(err.key(), "--hook");
}

#[cfg(feature = "exec")]
#[test]
fn a_program_builds_the_exec_backend() {
    let hook = build_hook(&config_with("/bin/true"))
        .unwrap()
        .expect("a hook");
    assert!(format!("{hook:?}").contains("/bin/true"), "{hook:?}");
}

#[cfg(not(feature = "exec"))]
#[test]
fn a_program_without_the_exec_feature_is_a_clear_error() {
    let err = build_hook(&config_with("/bin/true")).unwrap_err();
    assert_eq!(err.kind(), BuildErrorKind::BackendDisabled);
    assert_eq!(err.key(), HOOK_KEY);
    assert!(
        err.to_string().contains("common.post_disconnect_hook")
            && err.to_string().contains("`exec` feature"),
        "{err}"
    );
}

#[cfg(feature = "http")]
#[test]
fn a_url_builds_the_http_backend_without_showing_the_password() {
    let hook = build_hook(&config_with("https://u:s3cret@hooks.example/x"))
        .unwrap()
        .expect("a hook");
    let debug = format!("{hook:?}");
    assert!(
        debug.contains("hooks.example") && !debug.contains("s3cret"),
        "{debug}"
    );
}

#[cfg(not(feature = "http"))]
#[test]
fn a_url_without_the_http_feature_is_a_clear_error() {
    let err = build_hook(&config_with("https://u:s3cret@hooks.example/x")).unwrap_err();
    assert_eq!(err.kind(), BuildErrorKind::BackendDisabled);
    assert_eq!(err.key(), HOOK_KEY);
    let text = err.to_string();
    assert!(
        text.contains("common.post_disconnect_hook") && text.contains("`http` feature"),
        "{text}"
    );
    assert!(!text.contains("s3cret"), "{text}");
}

#[cfg(not(feature = "http"))]
#[test]
fn a_cli_target_without_the_feature_names_the_flag() {
    let target = HookTarget::parse_for_key("--hook", "http://h/x").unwrap();
    let err = build_hook_for_target("--hook", &target, &HookConfig::default()).unwrap_err();
    assert_eq!(err.key(), "--hook");
    assert!(err.to_string().starts_with("--hook: "), "{err}");
}

/// Issue 11, item 6: the start-up validation a server runs (`build_hook`) reads the `http`
/// section's TLS files whatever the target, as SFTPGo fails to start on a bad `http` section.
#[test]
fn item6_start_up_refuses_bad_tls_files_whatever_the_target() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not PEM\n").unwrap();
    let missing = dir.path().join("missing.pem");
    let adir = dir.path().display().to_string();
    for target in ["", "/bin/true"] {
        for ca in [&empty, &garbage, &missing, std::path::Path::new(&adir)] {
            let mut config = config_with(target);
            config.http.ca_certificates = vec![ca.display().to_string()];
            let err = build_hook(&config).unwrap_err();
            assert_eq!(
                err.key(),
                "http.ca_certificates[0]",
                "{target:?} {ca:?}: {err}"
            );
            assert_eq!(
                hooks::validate_config(&config).unwrap_err().to_string(),
                err.to_string()
            );
            let err = build_hook_for_target("--hook", &HookTarget::Disabled, &config).unwrap_err();
            assert_eq!(err.key(), "http.ca_certificates[0]");
        }
        let mut config = config_with(target);
        config.http.certificates = vec![hooks::TlsKeyPair::new(
            garbage.display().to_string(),
            adir.clone(),
        )];
        let err = build_hook(&config).unwrap_err();
        assert!(err.key().starts_with("http.certificates[0]"), "{err}");
    }
}

/// Issue 11, item 6: a limit the dispatcher cannot hold is refused by the configuration's own
/// validation (the loader's), not only by `DispatcherOptions::from_config`.
#[test]
fn item6_dispatcher_limits_are_refused_by_the_sections_validation() {
    for (key, set) in [
        (
            "hooks.queue_capacity",
            (|c: &mut HookConfig, v| c.hooks.queue_capacity = v) as fn(&mut HookConfig, usize),
        ),
        ("hooks.max_in_flight", |c: &mut HookConfig, v| {
            c.hooks.max_in_flight = v
        }),
    ] {
        let mut config = config_with("/bin/true");
        set(&mut config, hooks::MAX_DISPATCHER_LIMIT + 1);
        assert_eq!(config.validate().unwrap_err().key(), key);
        assert_eq!(build_hook(&config).unwrap_err().key(), key);
        assert_eq!(hooks::validate_config(&config).unwrap_err().key(), key);
        set(&mut config, hooks::MAX_DISPATCHER_LIMIT);
        config.validate().unwrap();
        hooks::DispatcherOptions::from_config(&config.hooks).unwrap();
    }
}

/// A program target is checked at start-up as `hookctl check` always did.
#[test]
fn item6_start_up_refuses_a_missing_or_non_executable_program() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("plain.sh");
    std::fs::write(&plain, "#!/bin/sh\n").unwrap();
    for (program, why) in [
        ("/nonexistent/hook", "No such file"),
        (plain.to_str().unwrap(), "is not executable"),
        (dir.path().to_str().unwrap(), "is not a regular file"),
    ] {
        let err = build_hook(&config_with(program)).unwrap_err();
        assert_eq!(err.key(), HOOK_KEY);
        assert!(err.to_string().contains(why), "{err}");
    }
}
