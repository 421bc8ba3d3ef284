//! Executable script fixtures for process tests.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes an executable (mode 0755) script `dir/name` and returns its path.
///
/// A body without a `#!` line gets `#!/bin/sh`. Written with [`write_file_safely`], so running it
/// right away cannot fail with `ETXTBSY` ("text file busy").
///
/// # Panics
/// On any I/O error.
pub fn write_script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let contents = if body.starts_with("#!") {
        body.to_owned()
    } else {
        format!("#!/bin/sh\n{body}")
    };
    write_file_safely(dir, name, contents.as_bytes(), 0o755)
}

/// Writes `contents` to `dir/name` with permissions `mode` and returns its path, exactly as given
/// (no `#!` added: use it for files that must not be scripts, e.g. an executable without one).
///
/// The file is never open for writing in this process: a short-lived `/bin/sh` child writes it
/// under a temporary name, then its mode is set, it is fsynced through a read-only handle and
/// renamed into place. So a concurrent `fork`/`posix_spawn` elsewhere in the test process cannot
/// inherit a writable descriptor to it, and executing it right away cannot fail with `ETXTBSY`.
///
/// # Panics
/// On any I/O error.
pub fn write_file_safely(dir: &Path, name: &str, contents: &[u8], mode: u32) -> PathBuf {
    let tmp = dir.join(format!(
        ".{name}.tmp-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let mut child = Command::new("/bin/sh")
        .arg("-c")
        .arg("umask 077 && cat > \"$1\"")
        .arg("write-script")
        .arg(&tmp)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn /bin/sh to write a file");
    {
        let mut stdin = child.stdin.take().expect("piped stdin");
        stdin.write_all(contents).expect("write file contents");
    }
    let status = child.wait().expect("wait for /bin/sh");
    assert!(
        status.success(),
        "writing {} failed: {status}",
        tmp.display()
    );
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode)).expect("chmod");
    std::fs::File::open(&tmp)
        .and_then(|f| f.sync_all())
        .expect("fsync file");
    let path = dir.join(name);
    std::fs::rename(&tmp, &path).expect("rename file into place");
    path
}

/// `s` quoted for a POSIX shell (single quotes).
pub fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn find_tool(name: &str) -> String {
    for dir in ["/usr/bin", "/bin"] {
        let path = format!("{dir}/{name}");
        if Path::new(&path).exists() {
            return path;
        }
    }
    name.to_owned()
}

/// A script body that records its pid, `$0`, arguments, working directory and complete
/// environment into a new file in `record_dir` (one file per run, written atomically), then
/// runs `tail` (shell text such as `echo out; exit 3`, or empty).
///
/// Absolute paths are used for `env` and `mv`, so it works with an empty `PATH`. Read the
/// records with [`read_records`] or [`wait_for_records`].
///
/// ```no_run
/// use hook_test_support::{read_records, record_script_body, write_script};
///
/// let dir = tempfile::tempdir().unwrap();
/// let script = write_script(dir.path(), "hook.sh", &record_script_body(dir.path(), "exit 0"));
/// std::process::Command::new(&script).arg("x").env("SFTPGO_CONNECTION_IP", "1.2.3.4")
///     .status().unwrap();
/// let records = read_records(dir.path());
/// assert_eq!(records[0].args, ["x"]);
/// assert_eq!(records[0].env("SFTPGO_CONNECTION_IP"), Some("1.2.3.4"));
/// ```
pub fn record_script_body(record_dir: &Path, tail: &str) -> String {
    let dir = sh_quote(&record_dir.to_string_lossy());
    let env = find_tool("env");
    let mv = find_tool("mv");
    format!(
        r#"#!/bin/sh
rec_dir={dir}
rec_tmp="$rec_dir/.rec-tmp-$$"
{{
  printf 'pid=%s\0' "$$"
  printf 'argv0=%s\0' "$0"
  printf 'cwd=%s\0' "$(pwd)"
  for a in "$@"; do printf 'arg=%s\0' "$a"; done
  printf 'env\0'
  {env} -0
}} > "$rec_tmp"
{mv} -f "$rec_tmp" "$rec_dir/rec-$$"
{tail}
"#
    )
}

/// What one run of a [`record_script_body`] script saw.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScriptRecord {
    /// The script's process id.
    pub pid: u32,
    /// `$0` as the shell saw it.
    pub argv0: String,
    /// The arguments after `$0`.
    pub args: Vec<String>,
    /// The working directory.
    pub cwd: PathBuf,
    /// The complete environment.
    pub env: BTreeMap<String, String>,
}

impl ScriptRecord {
    /// The value of environment variable `key`.
    pub fn env(&self, key: &str) -> Option<&str> {
        self.env.get(key).map(String::as_str)
    }

    fn parse(data: &[u8]) -> Option<ScriptRecord> {
        let mut record = ScriptRecord {
            pid: 0,
            argv0: String::new(),
            args: Vec::new(),
            cwd: PathBuf::new(),
            env: BTreeMap::new(),
        };
        let mut in_env = false;
        for entry in data.split(|b| *b == 0) {
            if entry.is_empty() {
                continue;
            }
            let entry = String::from_utf8_lossy(entry);
            if in_env {
                let (k, v) = entry.split_once('=')?;
                record.env.insert(k.to_owned(), v.to_owned());
                continue;
            }
            if entry == "env" {
                in_env = true;
                continue;
            }
            let (k, v) = entry.split_once('=')?;
            match k {
                "pid" => record.pid = v.parse().ok()?,
                "argv0" => record.argv0 = v.to_owned(),
                "cwd" => record.cwd = PathBuf::from(v),
                "arg" => record.args.push(v.to_owned()),
                _ => return None,
            }
        }
        in_env.then_some(record)
    }
}

/// Every complete record in `record_dir`, ordered by pid.
///
/// # Panics
/// If the directory cannot be read or a record is malformed.
pub fn read_records(record_dir: &Path) -> Vec<ScriptRecord> {
    let mut records: Vec<ScriptRecord> = std::fs::read_dir(record_dir)
        .expect("read record dir")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("rec-"))
        .map(|e| {
            let data = std::fs::read(e.path()).expect("read record");
            ScriptRecord::parse(&data)
                .unwrap_or_else(|| panic!("malformed record {}", e.path().display()))
        })
        .collect();
    records.sort_by_key(|r| r.pid);
    records
}

/// Waits (polling every 10 ms) until `record_dir` holds at least `n` records.
///
/// # Panics
/// On timeout, with how many were found.
pub fn wait_for_records(record_dir: &Path, n: usize, timeout: Duration) -> Vec<ScriptRecord> {
    let deadline = Instant::now() + timeout;
    loop {
        let records = read_records(record_dir);
        if records.len() >= n {
            return records;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {n} script records; found {}",
            records.len()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_survives_the_shell() {
        assert_eq!(sh_quote("it's"), r"'it'\''s'");
    }

    #[test]
    fn records_argv_and_env_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let body = record_script_body(dir.path(), "echo done; exit 7");
        let script = write_script(dir.path(), "rec.sh", &body);
        let mode = std::fs::metadata(&script).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o755);
        let out = Command::new(&script)
            .args(["a b", "", "x\ny", "$HOME"])
            .env_clear()
            .env("SFTPGO_CONNECTION_USERNAME", "u=1 \"q\"")
            .env("MULTI", "line1\nline2")
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(7));
        assert_eq!(out.stdout, b"done\n");
        let records = read_records(dir.path());
        assert_eq!(records.len(), 1);
        let r = &records[0];
        assert_eq!(r.args, ["a b", "", "x\ny", "$HOME"]);
        assert_eq!(r.argv0, script.to_string_lossy());
        assert_eq!(r.env("SFTPGO_CONNECTION_USERNAME"), Some("u=1 \"q\""));
        assert_eq!(r.env("MULTI"), Some("line1\nline2"));
        assert_eq!(r.env("HOME"), None);
        assert_eq!(
            r.cwd.canonicalize().unwrap(),
            dir.path().canonicalize().unwrap()
        );
        assert!(r.pid > 0);
    }

    #[test]
    fn concurrent_write_and_exec_never_hits_text_file_busy() {
        let dir = tempfile::tempdir().unwrap();
        std::thread::scope(|s| {
            for t in 0..4 {
                let dir = dir.path();
                s.spawn(move || {
                    for i in 0..25 {
                        let path = write_script(dir, &format!("s-{t}-{i}.sh"), "exit 0\n");
                        let status = Command::new(&path).status().expect("exec fresh script");
                        assert!(status.success());
                    }
                });
            }
        });
    }
}
