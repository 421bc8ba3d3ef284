//! What the binary's tests share: spawning `ftp-server` and reading the port it printed.

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Command, Stdio};

/// Spawns `server` (an `ftp-server` command with `--port 0`; stdin null, stdout piped) and reads
/// its first line, `listening on 127.0.0.1:PORT`: the child, the rest of its stdout, the port.
pub(crate) fn spawn_and_read_port(server: &mut Command) -> (Child, BufReader<ChildStdout>, u16) {
    let mut child = server
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("ftp-server");
    let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let port = first
        .trim()
        .strip_prefix("listening on 127.0.0.1:")
        .unwrap_or_else(|| panic!("first line: {first:?}"))
        .parse::<u16>()
        .unwrap();
    (child, stdout, port)
}
