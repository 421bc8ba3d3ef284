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
