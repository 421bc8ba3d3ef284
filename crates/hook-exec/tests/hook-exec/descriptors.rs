//! What the program inherits besides its environment: descriptors 0, 1 and 2 only.

use std::os::fd::OwnedFd;

use hook_core::{Hook, HookStatus};
use hook_exec::ExecHook;

use crate::{event, script};

/// The server's descriptors, even those without close-on-exec, never reach the program (as with
/// Go's `os/exec`): it gets stdin from the null device and two pipes, nothing else.
#[tokio::test]
async fn the_program_gets_only_null_stdin_and_two_pipes_whatever_the_server_has_open() {
    let dir = tempfile::tempdir().unwrap();
    let file = std::fs::File::open("/dev/null").unwrap();
    // 64 descriptors without close-on-exec (`dup` does not set it), as a careless server has.
    let leaky: Vec<OwnedFd> = (0..64).map(|_| rustix::io::dup(&file).unwrap()).collect();
    let program = script(
        dir.path(),
        "fds.sh",
        "for fd in 0 1 2; do /bin/readlink /proc/$$/fd/$fd | /bin/sed 's/:.*//'; done\n\
         exec /bin/ls /proc/self/fd\n",
    );
    let hook = ExecHook::builder(&program).build().unwrap();

    let delivery = hook.on_disconnect(&event()).await.unwrap();
    assert_eq!(delivery.status(), Some(HookStatus::Exit(0)));
    let output = delivery.output().unwrap();
    // /bin/ls has its own directory descriptor open as 3 while it lists.
    assert_eq!(output.stdout_lossy(), "/dev/null\npipe\npipe\n0\n1\n2\n3\n");
    drop(leaky);
}
