//! Construction errors and accessors.

use std::time::Duration;

use hook_config::{CommandEntry, CommandSection, ConfigErrorKind, HooksSection};
use hook_exec::ExecHook;

#[test]
fn from_config_rejects_what_cannot_run_naming_the_key() {
    let hooks = HooksSection::default();
    let ok = CommandSection::default();

    let err = ExecHook::from_config("relative/hook.sh", &ok, &hooks).unwrap_err();
    assert_eq!(err.key(), "common.post_disconnect_hook");
    assert_eq!(err.kind(), ConfigErrorKind::Invalid);

    for bad in [0, 301, -1] {
        let mut c = CommandSection::default();
        c.timeout = bad;
        let err = ExecHook::from_config("/bin/true", &c, &hooks).unwrap_err();
        assert_eq!(err.key(), "command.timeout", "{err}");
        assert!(
            err.to_string().contains(&format!("invalid timeout {bad}")),
            "{err}"
        );
    }

    let mut c = CommandSection::default();
    c.env = vec!["A=1".into(), "NOEQUALS".into()];
    let err = ExecHook::from_config("/bin/true", &c, &hooks).unwrap_err();
    assert_eq!(err.key(), "command.env[1]");

    let mut c = CommandSection::default();
    let mut e = CommandEntry::new("/bin/true");
    e.timeout = 301;
    c.commands = vec![CommandEntry::new("/other"), e];
    let err = ExecHook::from_config("/bin/true", &c, &hooks).unwrap_err();
    assert_eq!(err.key(), "command.commands[1].timeout");

    let mut c = CommandSection::default();
    let mut e = CommandEntry::new("/bin/true");
    e.args = vec!["ok".into(), "nul\0".into()];
    c.commands = vec![e];
    let err = ExecHook::from_config("/bin/true", &c, &hooks).unwrap_err();
    assert_eq!(err.key(), "command.commands[0].args[1]");

    let mut h = HooksSection::default();
    h.kill_grace = -1.0;
    let err = ExecHook::from_config("/bin/true", &ok, &h).unwrap_err();
    assert_eq!(err.key(), "hooks.kill_grace");
    h.kill_grace = f64::NAN;
    assert_eq!(
        ExecHook::from_config("/bin/true", &ok, &h)
            .unwrap_err()
            .key(),
        "hooks.kill_grace"
    );
}

#[test]
fn builder_validates_and_accessors_report_the_resolution() {
    assert_eq!(
        ExecHook::builder("hook.sh").build().unwrap_err().key(),
        "program"
    );
    assert_eq!(
        ExecHook::builder("/h")
            .timeout(Duration::ZERO)
            .build()
            .unwrap_err()
            .key(),
        "timeout"
    );
    assert_eq!(
        ExecHook::builder("/h")
            .env("A=B", "c")
            .build()
            .unwrap_err()
            .key(),
        "env[0]"
    );
    assert_eq!(
        ExecHook::builder("/h")
            .env("A", "c\0")
            .build()
            .unwrap_err()
            .key(),
        "env[0]"
    );
    assert_eq!(
        ExecHook::builder("/h")
            .arg("x")
            .arg("\0")
            .build()
            .unwrap_err()
            .key(),
        "args[1]"
    );

    let mut h = HooksSection::default();
    h.kill_grace = 0.25;
    h.output_cap = 100;
    let mut c = CommandSection::default();
    c.env = vec!["SECRET_TOKEN=hunter2".into(), "LANG=C".into()];
    let hook = ExecHook::from_config("/usr/bin/hook", &c, &h).unwrap();
    assert_eq!(hook.kill_grace(), Duration::from_millis(250));
    assert_eq!(hook.output_cap(), 100);
    assert_eq!(hook.timeout(), Duration::from_secs(30));
    assert_eq!(
        hook.env_keys().collect::<Vec<_>>(),
        ["SECRET_TOKEN", "LANG"]
    );
    let debug = format!("{hook:?}");
    assert!(
        debug.contains("SECRET_TOKEN") && !debug.contains("hunter2"),
        "{debug}"
    );
    // Clone is cheap and shares the configuration.
    let copy = hook.clone();
    assert_eq!(format!("{copy:?}"), debug);
    assert_eq!(copy.program(), hook.program());
}
