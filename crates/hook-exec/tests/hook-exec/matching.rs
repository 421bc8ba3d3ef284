//! Spec 3.3: which `command.commands` entry applies.

use std::time::Duration;

use hook_config::{CommandEntry, CommandSection, HooksSection};
use hook_core::Hook;
use hook_exec::ExecHook;

use crate::{dump_script, dumped_args, dumped_env, event};

fn entry(path: &str, hook: &str, timeout: i64, arg: &str) -> CommandEntry {
    let mut e = CommandEntry::new(path);
    e.hook = hook.into();
    e.timeout = timeout;
    e.args = vec![arg.into()];
    e.env = vec![format!("WHICH={arg}")];
    e
}

fn which(dir: &std::path::Path) -> Vec<String> {
    dumped_env(dir)
        .into_iter()
        .filter(|kv| kv.starts_with("WHICH="))
        .collect()
}

#[tokio::test]
async fn other_hook_names_and_near_paths_are_skipped_and_empty_hook_before_post_disconnect_wins() {
    let dir = tempfile::tempdir().unwrap();
    let program = dump_script(dir.path());
    let p = program.to_str().unwrap();
    let near = format!("{}H", &p[..p.len() - 1]); // differs by its last character
    let mut command = CommandSection::default();
    command.timeout = 12;
    command.commands = vec![
        entry(p, "check_password", 7, "check_password"),
        entry(&near, "", 8, "near"),
        entry(&format!("{p}/"), "", 8, "slash"),
        entry(p, "", 9, "generic"),
        entry(p, "post_disconnect", 10, "specific"),
    ];
    let hook = ExecHook::from_config(&program, &command, &HooksSection::default()).unwrap();
    assert_eq!(hook.timeout(), Duration::from_secs(9));
    hook.on_disconnect(&event()).await.unwrap();
    assert_eq!(dumped_args(dir.path()), ["generic"]);
    assert_eq!(which(dir.path()), ["WHICH=generic"]);
}

#[tokio::test]
async fn post_disconnect_entry_first_wins_and_zero_timeout_means_global() {
    let dir = tempfile::tempdir().unwrap();
    let program = dump_script(dir.path());
    let p = program.to_str().unwrap();
    let mut command = CommandSection::default();
    command.timeout = 12;
    command.commands = vec![
        entry(p, "post_disconnect", 0, "specific"),
        entry(p, "", 9, "generic"),
    ];
    let hook = ExecHook::from_config(&program, &command, &HooksSection::default()).unwrap();
    assert_eq!(hook.timeout(), Duration::from_secs(12));
    hook.on_disconnect(&event()).await.unwrap();
    assert_eq!(dumped_args(dir.path()), ["specific"]);
    assert_eq!(which(dir.path()), ["WHICH=specific"]);
}

#[tokio::test]
async fn global_timeout_no_args_and_global_env_only_when_nothing_matches() {
    let dir = tempfile::tempdir().unwrap();
    let program = dump_script(dir.path());
    let p = program.to_str().unwrap();
    let mut command = CommandSection::default();
    command.timeout = 12;
    command.env = vec!["G=1".into()];
    command.commands = vec![
        entry(p, "check_password", 7, "check_password"),
        entry(&p.to_uppercase(), "", 8, "upper"),
        entry(p, "pre_login", 9, "pre_login"),
    ];
    let hook = ExecHook::from_config(&program, &command, &HooksSection::default()).unwrap();
    assert_eq!(hook.timeout(), Duration::from_secs(12));
    assert_eq!(hook.args().count(), 0);
    hook.on_disconnect(&event()).await.unwrap();
    assert_eq!(dumped_args(dir.path()), Vec::<String>::new());
    assert_eq!(which(dir.path()), Vec::<String>::new());
    assert_eq!(dumped_env(dir.path())[0], "G=1");
}
