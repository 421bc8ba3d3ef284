//! The `hooks.spool` section: defaults, file keys, `SFTPGO_HOOKS__SPOOL__*` variables, validation
//! naming the key, and the directory made absolute against the config dir.

use hook_config::{ConfigErrorKind, HookConfig, SpoolSection};

use crate::support::{dir_with_json, load_err, load_json, load_with};

#[test]
fn defaults_are_off_with_the_documented_bounds() {
    let s = HookConfig::default().hooks.spool;
    assert!(!s.enabled());
    assert_eq!(s.dir, "");
    assert_eq!(s.max_bytes, 256 * 1024 * 1024);
    assert_eq!(s.min_free_bytes, 64 * 1024 * 1024);
    assert_eq!(s.redeliver_min, 30.0);
    assert_eq!(s.redeliver_max, 3600.0);
    assert_eq!(s.max_age, 86_400.0);
    assert_eq!(s.dead_max, 100_000);
    assert_eq!(s.max_age(), std::time::Duration::from_secs(86_400));
    let l = load_json("{}", &[]).unwrap();
    assert_eq!(l.config.hooks.spool, SpoolSection::default());
}

#[test]
fn file_keys_load_weakly_typed_and_the_dir_is_made_absolute() {
    let dir = dir_with_json(
        r#"{"hooks": {"Spool": {"dir": "var/spool", "max_bytes": "65536", "min_free_bytes": 0,
            "redeliver_min": 0.05, "REDELIVER_MAX": "1.5", "max_age": 20, "dead_max": 7}}}"#,
    );
    let l = load_with(dir.path(), None, &[]).unwrap();
    let s = &l.config.hooks.spool;
    assert_eq!(s.dir, l.config_dir.join("var/spool").display().to_string());
    assert!(s.enabled());
    assert_eq!(s.max_bytes, 65_536);
    assert_eq!(s.min_free_bytes, 0);
    assert_eq!(s.redeliver_min, 0.05);
    assert_eq!(s.redeliver_max, 1.5);
    assert_eq!(s.max_age, 20.0);
    assert_eq!(s.dead_max, 7);
}

#[test]
fn absolute_and_dotted_dirs() {
    let l = load_json(r#"{"hooks": {"spool": {"dir": "/var/lib/x/spool"}}}"#, &[]).unwrap();
    assert_eq!(l.config.hooks.spool.dir, "/var/lib/x/spool");
    let dir = dir_with_json(r#"{"hooks": {"spool": {"dir": "./a/../spool/"}}}"#);
    let l = load_with(dir.path(), None, &[]).unwrap();
    assert_eq!(
        l.config.hooks.spool.dir,
        l.config_dir.join("spool").display().to_string()
    );
}

#[test]
fn variables_override_the_file() {
    let dir = dir_with_json(r#"{"hooks": {"spool": {"dir": "from-file", "dead_max": 3}}}"#);
    let l = load_with(
        dir.path(),
        None,
        &[
            ("SFTPGO_HOOKS__SPOOL__DIR", "/srv/spool"),
            ("SFTPGO_HOOKS__SPOOL__MAX_BYTES", "1048576"),
            ("SFTPGO_HOOKS__SPOOL__MIN_FREE_BYTES", "0x1000"),
            ("SFTPGO_HOOKS__SPOOL__REDELIVER_MIN", "0.25"),
            ("SFTPGO_HOOKS__SPOOL__REDELIVER_MAX", "2"),
            ("SFTPGO_HOOKS__SPOOL__MAX_AGE", "60.5"),
            ("SFTPGO_HOOKS__SPOOL__DEAD_MAX", "10"),
        ],
    )
    .unwrap();
    let s = &l.config.hooks.spool;
    assert_eq!(s.dir, "/srv/spool");
    assert_eq!(s.max_bytes, 1_048_576);
    assert_eq!(s.min_free_bytes, 4096);
    assert_eq!(s.redeliver_min, 0.25);
    assert_eq!(s.redeliver_max, 2.0);
    assert_eq!(s.max_age, 60.5);
    assert_eq!(s.dead_max, 10);

    // An empty value counts as set: the dir empty switches the spool off.
    let l = load_with(dir.path(), None, &[("SFTPGO_HOOKS__SPOOL__DIR", "")]).unwrap();
    assert!(!l.config.hooks.spool.enabled());
}

#[test]
fn malformed_and_unknown_variables_name_the_variable() {
    for (var, value, key) in [
        (
            "SFTPGO_HOOKS__SPOOL__MAX_BYTES",
            "-1",
            "hooks.spool.max_bytes",
        ),
        ("SFTPGO_HOOKS__SPOOL__MAX_AGE", "1d", "hooks.spool.max_age"),
        ("SFTPGO_HOOKS__SPOOL__DEAD_MAX", "x", "hooks.spool.dead_max"),
    ] {
        let err = load_err("{}", &[(var, value)]);
        assert_eq!(err.kind(), ConfigErrorKind::Parse, "{var}");
        assert_eq!(err.key(), var);
        assert!(err.to_string().contains(key), "{err}");
    }
    let err = load_err("{}", &[("SFTPGO_HOOKS__SPOOL__DIRECTORY", "/x")]);
    assert_eq!(err.key(), "SFTPGO_HOOKS__SPOOL__DIRECTORY");
    assert!(
        err.to_string().contains("SFTPGO_HOOKS__SPOOL__DIR,"),
        "{err}"
    );
}

#[test]
fn unknown_or_mistyped_file_keys_name_the_key() {
    let err = load_err(r#"{"hooks": {"spool": {"max_byte": 5}}}"#, &[]);
    assert_eq!(err.key(), "hooks.spool.max_byte");
    assert!(
        err.to_string().contains("expected one of dir, max_bytes"),
        "{err}"
    );
    let err = load_err(r#"{"hooks": {"spool": "/var/spool"}}"#, &[]);
    assert_eq!(
        err.to_string(),
        r#"hooks.spool: expected a table, found the string "/var/spool""#
    );
    let err = load_err(r#"{"hooks": {"spool": {"max_bytes": -5}}}"#, &[]);
    assert_eq!(err.key(), "hooks.spool.max_bytes");
    let err = load_err(r#"{"hooks": {"spool": {"redeliver_min": "soon"}}}"#, &[]);
    assert_eq!(err.key(), "hooks.spool.redeliver_min");
}

fn spool_err(f: impl FnOnce(&mut SpoolSection)) -> String {
    let mut c = HookConfig::default();
    f(&mut c.hooks.spool);
    c.validate().unwrap_err().to_string()
}

#[test]
fn validation_names_the_key() {
    assert_eq!(
        spool_err(|s| s.max_bytes = 65_535),
        "hooks.spool.max_bytes: invalid value 65535: must be >= 65536 (64 KiB)"
    );
    for (value, shown) in [(0.0, "0"), (f64::NAN, "NaN"), (-1.0, "-1")] {
        for (key, set) in [
            (
                "hooks.spool.redeliver_min",
                (|s: &mut SpoolSection, v| s.redeliver_min = v) as fn(&mut SpoolSection, f64),
            ),
            ("hooks.spool.redeliver_max", |s, v| s.redeliver_max = v),
            ("hooks.spool.max_age", |s, v| s.max_age = v),
        ] {
            assert_eq!(
                spool_err(|s| set(s, value)),
                format!("{key}: invalid duration {shown}: must be a finite number of seconds > 0")
            );
        }
    }
    assert_eq!(
        spool_err(|s| {
            s.redeliver_min = 5.0;
            s.redeliver_max = 1.0;
        }),
        "hooks.spool.redeliver_max: invalid duration 1: must be >= hooks.spool.redeliver_min (5)"
    );
    assert_eq!(
        spool_err(|s| s.dir = "/a\0b".into()),
        r#"hooks.spool.dir: invalid directory "/a\0b": NUL byte"#
    );
    let mut c = HookConfig::default();
    c.hooks.spool.min_free_bytes = 0;
    c.hooks.spool.dead_max = 0;
    c.hooks.spool.max_bytes = 65_536;
    c.hooks.spool.redeliver_min = 2.0;
    c.hooks.spool.redeliver_max = 2.0;
    c.validate().unwrap();
}
