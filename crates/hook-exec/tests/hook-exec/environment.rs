//! Spec 3.1/3.2: argv, the cleared environment, its order and override rules.

use std::time::Duration;

use hook_config::{CommandEntry, CommandSection, HooksSection};
use hook_core::{DisconnectEvent, ErrorKind, Hook, HookStatus, Protocol};
use hook_exec::ExecHook;

use crate::{dump_script, dumped_args, dumped_env, event};

#[tokio::test]
async fn child_sees_exactly_the_configured_env_in_go_order_and_args_with_empty_strings() {
    let dir = tempfile::tempdir().unwrap();
    let program = dump_script(dir.path());
    let mut command = CommandSection::default();
    command.env = [
        "B=global-b",
        "A=global-a",
        "SFTPGO_CONNECTION_IP=6.6.6.6",
        "EMPTY=",
        "X=1=2",
    ]
    .map(String::from)
    .to_vec();
    let mut entry = CommandEntry::new(program.to_str().unwrap());
    entry.env = [
        "A=entry-a",
        "C=entry-c",
        "SFTPGO_CONNECTION_USERNAME=mallory",
    ]
    .map(String::from)
    .to_vec();
    entry.args = ["one", "", "two words", ""].map(String::from).to_vec();
    command.commands.push(entry);
    let hook = ExecHook::from_config(&program, &command, &HooksSection::default()).unwrap();

    let delivery = hook.on_disconnect(&event()).await.unwrap();
    assert_eq!(delivery.status(), Some(HookStatus::Exit(0)));
    assert_eq!(delivery.attempts(), 1);

    // Go's dedupEnv: each key once, last value, at the position of its last occurrence; the
    // four variables come last and beat the configured ones. Not sorted (std would sort).
    assert_eq!(
        dumped_env(dir.path()),
        [
            "B=global-b",
            "EMPTY=",
            "X=1=2",
            "A=entry-a",
            "C=entry-c",
            "SFTPGO_CONNECTION_IP=203.0.113.9",
            "SFTPGO_CONNECTION_USERNAME=alice",
            "SFTPGO_CONNECTION_DURATION=1234",
            "SFTPGO_CONNECTION_PROTOCOL=SFTP",
        ]
    );
    assert_eq!(dumped_args(dir.path()), ["one", "", "two words", ""]);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("arg0")).unwrap(),
        program.to_str().unwrap()
    );
}

#[tokio::test]
async fn nothing_is_inherited_from_the_parent() {
    // The test process has PATH (cargo sets it) and usually HOME; the child must see neither.
    assert!(
        std::env::var_os("PATH").is_some(),
        "the test needs a PATH in its own environment"
    );
    let dir = tempfile::tempdir().unwrap();
    let program = dump_script(dir.path());
    let hook = ExecHook::from_config(
        &program,
        &CommandSection::default(),
        &HooksSection::default(),
    )
    .unwrap();
    let event = DisconnectEvent::new("::1", Protocol::Ftp, "", Duration::from_micros(999));
    hook.on_disconnect(&event).await.unwrap();
    assert_eq!(
        dumped_env(dir.path()),
        [
            "SFTPGO_CONNECTION_IP=::1",
            "SFTPGO_CONNECTION_USERNAME=",
            "SFTPGO_CONNECTION_DURATION=0",
            "SFTPGO_CONNECTION_PROTOCOL=FTP",
        ]
    );
    assert_eq!(dumped_args(dir.path()), Vec::<String>::new());
}

#[tokio::test]
async fn builder_env_keeps_insertion_order_and_last_value() {
    let dir = tempfile::tempdir().unwrap();
    let program = dump_script(dir.path());
    let hook = ExecHook::builder(&program)
        .env("Z", "1")
        .env("M", "2")
        .env("Z", "3")
        .env("SFTPGO_CONNECTION_PROTOCOL", "HTTP")
        .args(["", "x"])
        .build()
        .unwrap();
    hook.on_disconnect(&event()).await.unwrap();
    assert_eq!(
        dumped_env(dir.path()),
        [
            "M=2",
            "Z=3",
            "SFTPGO_CONNECTION_IP=203.0.113.9",
            "SFTPGO_CONNECTION_USERNAME=alice",
            "SFTPGO_CONNECTION_DURATION=1234",
            "SFTPGO_CONNECTION_PROTOCOL=SFTP",
        ]
    );
    assert_eq!(dumped_args(dir.path()), ["", "x"]);
}

#[tokio::test]
async fn a_nul_byte_in_the_event_is_a_typed_error_and_nothing_runs() {
    let dir = tempfile::tempdir().unwrap();
    let program = dump_script(dir.path());
    let hook = ExecHook::builder(&program).build().unwrap();
    let event = DisconnectEvent::new("10.0.0.1", Protocol::Ssh, "bad\0name", Duration::ZERO);
    let err = hook.on_disconnect(&event).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidEvent);
    assert_eq!(err.attempts(), 0);
    assert!(
        err.to_string().contains("SFTPGO_CONNECTION_USERNAME"),
        "{err}"
    );
    assert!(err.to_string().contains(program.to_str().unwrap()), "{err}");
    assert!(
        !dir.path().join("env").exists(),
        "the program must not have run"
    );
}

#[tokio::test]
async fn stdin_is_the_null_device() {
    let dir = tempfile::tempdir().unwrap();
    let program = crate::script(
        dir.path(),
        "stdin.sh",
        "/bin/cat\n/usr/bin/readlink /proc/$$/fd/0\n",
    );
    let hook = ExecHook::builder(&program).build().unwrap();
    let delivery = hook.on_disconnect(&event()).await.unwrap();
    assert_eq!(delivery.output().unwrap().stdout_lossy(), "/dev/null\n");
}
