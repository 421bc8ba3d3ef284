//! [`ExecHook`]: construction (from the `command` section or a builder) and the `Hook` impl.

use std::ffi::{CStr, CString, OsStr, OsString};
use std::fmt;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hook_config::{CommandSection, ConfigError, HOOK_KEY, HooksSection};
use hook_core::{Delivery, DisconnectEvent, Hook, HookError, async_trait};

use crate::env::{configured_env, go_env_key};

/// The hook name SFTPGo matches `command.commands[].hook` against (spec 3.3).
const HOOK_NAME: &str = "post_disconnect";

/// Upper bound applied to every configured duration (one year).
const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

/// Default time the output pipes are still read after the program exited (D7).
pub(crate) const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_millis(150);

/// A post-disconnect hook that runs a program exactly as SFTPGo does (spec section 3), with
/// process-group cleanup (D6) and capped output capture (D7).
///
/// * **Invocation**: no shell and no `PATH` lookup; `argv[0]` is the configured path exactly,
///   followed by the `args` of the first matching `command.commands` entry (empty strings kept);
///   stdin is the null device; the working directory, user and group are the server's.
/// * **Environment**: nothing is inherited. The child sees `command.env`, then the matched
///   entry's `env`, then `SFTPGO_CONNECTION_IP`, `_USERNAME`, `_DURATION` and `_PROTOCOL`, with
///   Go's de-duplication: each key once, its last value, at the position of its last occurrence,
///   so a configured `SFTPGO_CONNECTION_IP` never overrides the real one.
/// * **Timeout**: the matched entry's, else `command.timeout`. On expiry the program's whole
///   process group gets `SIGTERM`, then `SIGKILL` after the kill grace (`hooks.kill_grace`); the
///   call returns once the group is gone or the grace has passed. Dropping the future kills the
///   group at once and reaps the program: nothing is left behind.
/// * **Output**: stdout and stderr are read concurrently; the last `hooks.output_cap` bytes of each
///   are kept, the rest is read and discarded. Once the program has exited, the pipes are read for
///   at most a short drain time (150 ms by default): a background child that still holds them
///   (`long_job &`) neither delays the result nor is killed, and its later output is discarded.
/// * **Outcome**: exit status 0 is a [`Delivery`] (status `Exit(0)`, captured output). Anything
///   else is a [`HookError`] of kind `Spawn` (with the OS error as source), `ExitStatus`, `Signal`,
///   `Timeout` or `InvalidEvent` (a NUL byte in an event value), carrying the status and the
///   output tail. Failures are logged at WARN with the stderr tail, successes at DEBUG.
///
/// Cheap to clone (an `Arc` inside). Its `Debug` shows the program, the number of arguments and
/// the environment *keys*, never argument or environment values.
///
/// The program must run under a tokio runtime with I/O and time enabled
/// (`Builder::enable_all`). Linux uses a pidfd to await the exit without any thread; other Unix
/// systems use one blocking-pool thread per running program. The spawn itself is a `posix_spawn`
/// (a `vfork`-style clone): like `std::process::Command::spawn` and tokio's `Command`, it holds
/// the calling worker only until the child has called `exec`, typically well under a millisecond;
/// nothing else in a run blocks a runtime thread.
#[derive(Clone)]
pub struct ExecHook {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) program: PathBuf,
    pub(crate) program_c: CString,
    /// `argv[0]` (the program path) then the arguments.
    pub(crate) argv: Vec<CString>,
    /// The configured environment, already de-duplicated, without the four variables.
    pub(crate) env: Vec<CString>,
    pub(crate) timeout: Duration,
    pub(crate) kill_grace: Duration,
    pub(crate) output_cap: usize,
    pub(crate) drain_timeout: Duration,
    /// Await the exit on the blocking pool even where a pidfd is available (tests).
    pub(crate) force_blocking_wait: bool,
    /// Start the program with `posix_spawn` even where the Linux fast path works (tests).
    pub(crate) force_posix_spawn: bool,
}

impl ExecHook {
    /// The hook for `program`, configured from SFTPGo's `command` section and our `hooks` section.
    ///
    /// Resolves spec 3.3 once: the first `command.commands` entry whose `path` equals `program`
    /// byte for byte and whose `hook` is `""` or `post_disconnect` supplies the timeout (`0`
    /// meaning `command.timeout`), extra env and args. Uses `hooks.kill_grace` and
    /// `hooks.output_cap`.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the key when `program` is not an absolute path, `command.timeout`
    /// or the matched entry's timeout is outside `1..=300`, an env entry has no `=`, a value
    /// contains a NUL byte, or `hooks.kill_grace` is negative or not finite.
    ///
    /// ```
    /// use hook_config::{CommandEntry, CommandSection, HooksSection};
    /// use hook_exec::ExecHook;
    ///
    /// let mut command = CommandSection::default();
    /// command.env = vec!["LANG=C.UTF-8".into()];
    /// let mut entry = CommandEntry::new("/usr/local/bin/on-disconnect");
    /// entry.timeout = 5;
    /// entry.args = vec!["--verbose".into(), "".into()];
    /// command.commands.push(entry);
    ///
    /// let hook = ExecHook::from_config("/usr/local/bin/on-disconnect", &command, &HooksSection::default())?;
    /// assert_eq!(hook.timeout(), std::time::Duration::from_secs(5));
    /// assert_eq!(hook.args().count(), 2);
    /// # Ok::<(), hook_config::ConfigError>(())
    /// ```
    pub fn from_config(
        program: impl Into<PathBuf>,
        command: &CommandSection,
        hooks: &HooksSection,
    ) -> Result<ExecHook, ConfigError> {
        let program = program.into();
        if !program.is_absolute() {
            return Err(ConfigError::invalid(
                HOOK_KEY,
                format!(
                    "{:?} is not an absolute program path",
                    program.display().to_string()
                ),
            ));
        }
        let global_timeout = seconds("command.timeout", command.timeout)?;
        let mut env = Vec::with_capacity(command.env.len());
        for (i, kv) in command.env.iter().enumerate() {
            env.push(config_env_entry(&format!("command.env[{i}]"), kv)?);
        }

        let mut timeout = global_timeout;
        let mut args = Vec::new();
        let program_bytes = program.as_os_str().as_bytes();
        if let Some((i, entry)) = command.command_for(program_bytes, HOOK_NAME) {
            if entry.timeout != 0 {
                timeout = seconds(&format!("command.commands[{i}].timeout"), entry.timeout)?;
            }
            for (j, kv) in entry.env.iter().enumerate() {
                env.push(config_env_entry(
                    &format!("command.commands[{i}].env[{j}]"),
                    kv,
                )?);
            }
            for (j, arg) in entry.args.iter().enumerate() {
                args.push(c_string(
                    &format!("command.commands[{i}].args[{j}]"),
                    arg.as_bytes().to_vec(),
                )?);
            }
        }

        let kill_grace = hooks
            .kill_grace
            .is_finite()
            .then(|| Duration::try_from_secs_f64(hooks.kill_grace).ok())
            .flatten()
            .ok_or_else(|| {
                ConfigError::invalid(
                    "hooks.kill_grace",
                    format!(
                        "invalid kill grace {}: must be a non-negative number of seconds",
                        hooks.kill_grace
                    ),
                )
            })?;

        Inner::into_hook(
            program,
            args,
            env,
            timeout,
            kill_grace,
            hooks.output_cap,
            DEFAULT_DRAIN_TIMEOUT,
        )
    }

    /// A builder for servers that configure in code. Defaults: no arguments, empty environment
    /// (plus the four variables), timeout 30 s, kill grace 2 s, output cap 8 KiB per stream.
    ///
    /// ```
    /// use std::time::Duration;
    /// use hook_exec::ExecHook;
    ///
    /// let hook = ExecHook::builder("/usr/local/bin/on-disconnect")
    ///     .arg("--from-sftp")
    ///     .env("LANG", "C.UTF-8")
    ///     .timeout(Duration::from_secs(10))
    ///     .kill_grace(Duration::from_millis(500))
    ///     .build()?;
    /// assert_eq!(hook.program(), std::path::Path::new("/usr/local/bin/on-disconnect"));
    /// # Ok::<(), hook_config::ConfigError>(())
    /// ```
    pub fn builder(program: impl Into<PathBuf>) -> ExecHookBuilder {
        ExecHookBuilder {
            program: program.into(),
            args: Vec::new(),
            env: Vec::new(),
            timeout: Duration::from_secs(30),
            kill_grace: Duration::from_secs(2),
            output_cap: HooksSection::default().output_cap,
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
        }
    }

    /// The program path (also `argv[0]`).
    pub fn program(&self) -> &Path {
        &self.inner.program
    }

    /// The arguments after `argv[0]`.
    pub fn args(&self) -> impl Iterator<Item = &OsStr> + '_ {
        self.inner.argv[1..]
            .iter()
            .map(|a| OsStr::from_bytes(a.to_bytes()))
    }

    /// The keys of the configured environment, in the order the program receives them (the four
    /// `SFTPGO_CONNECTION_*` variables follow). Values are not exposed: they may be secrets.
    pub fn env_keys(&self) -> impl Iterator<Item = &OsStr> + '_ {
        self.inner
            .env
            .iter()
            .map(|kv| OsStr::from_bytes(go_env_key(kv.to_bytes()).unwrap_or(kv.to_bytes())))
    }

    /// The four `SFTPGO_CONNECTION_*` entries (`NAME=value`) `event` adds after the configured
    /// environment, in SFTPGo's order (ip, username, duration, protocol), exactly as the program
    /// receives them.
    ///
    /// # Errors
    ///
    /// A [`HookError`] of kind `InvalidEvent` when a value contains a NUL byte (it cannot be
    /// passed to a program).
    ///
    /// ```
    /// use std::time::Duration;
    /// use hook_core::{DisconnectEvent, Protocol};
    /// use hook_exec::ExecHook;
    ///
    /// let hook = ExecHook::builder("/usr/local/bin/on-disconnect").build()?;
    /// let event = DisconnectEvent::new("10.0.0.1", Protocol::Sftp, "bob", Duration::from_millis(7));
    /// let vars = hook.event_env(&event).unwrap();
    /// assert_eq!(vars[0].to_bytes(), b"SFTPGO_CONNECTION_IP=10.0.0.1");
    /// assert_eq!(vars[3].to_bytes(), b"SFTPGO_CONNECTION_PROTOCOL=SFTP");
    /// # Ok::<(), hook_config::ConfigError>(())
    /// ```
    pub fn event_env(&self, event: &DisconnectEvent) -> Result<Vec<CString>, HookError> {
        crate::run::event_env(&self.inner, event)
    }

    /// How long the program may run before its process group is terminated.
    pub fn timeout(&self) -> Duration {
        self.inner.timeout
    }

    /// Time between `SIGTERM` and `SIGKILL` to a timed-out program's process group.
    pub fn kill_grace(&self) -> Duration {
        self.inner.kill_grace
    }

    /// Bytes of stdout and of stderr kept per run (the last ones).
    pub fn output_cap(&self) -> usize {
        self.inner.output_cap
    }
}

impl Inner {
    fn into_hook(
        program: PathBuf,
        args: Vec<CString>,
        env: Vec<Vec<u8>>,
        timeout: Duration,
        kill_grace: Duration,
        output_cap: usize,
        drain_timeout: Duration,
    ) -> Result<ExecHook, ConfigError> {
        let program_c = c_string("program", program.as_os_str().as_bytes().to_vec())?;
        // Far beyond any sensible setting; keeps `Instant + duration` from overflowing.
        let (timeout, kill_grace, drain_timeout) = (
            timeout.min(MAX_DURATION),
            kill_grace.min(MAX_DURATION),
            drain_timeout.min(MAX_DURATION),
        );
        let mut argv = Vec::with_capacity(args.len() + 1);
        argv.push(program_c.clone());
        argv.extend(args);
        let env = configured_env(env)
            .into_iter()
            .map(|kv| {
                CString::new(kv).map_err(|_| ConfigError::invalid("env", "contains a NUL byte"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        crate::process::prepare();
        Ok(ExecHook {
            inner: Arc::new(Inner {
                program,
                program_c,
                argv,
                env,
                timeout,
                kill_grace,
                output_cap,
                drain_timeout,
                force_blocking_wait: false,
                force_posix_spawn: false,
            }),
        })
    }

    pub(crate) fn program_c(&self) -> &CStr {
        &self.program_c
    }
}

fn seconds(key: &str, value: i64) -> Result<Duration, ConfigError> {
    if (1..=300).contains(&value) {
        Ok(Duration::from_secs(value as u64))
    } else {
        Err(ConfigError::invalid(
            key,
            format!("invalid timeout {value}: must be 1..=300 seconds"),
        ))
    }
}

/// A `KEY=value` entry from the configuration: SFTPGo requires an `=`; a NUL cannot be passed.
/// The value is never echoed in errors (it may be a secret).
fn config_env_entry(key: &str, kv: &str) -> Result<Vec<u8>, ConfigError> {
    if kv.contains('\0') {
        return Err(ConfigError::invalid(key, "env var contains a NUL byte"));
    }
    if !kv.contains('=') {
        return Err(ConfigError::invalid(
            key,
            format!("invalid env var {kv:?}: expected KEY=value"),
        ));
    }
    Ok(kv.as_bytes().to_vec())
}

fn c_string(key: &str, bytes: Vec<u8>) -> Result<CString, ConfigError> {
    CString::new(bytes).map_err(|_| ConfigError::invalid(key, "contains a NUL byte"))
}

impl fmt::Debug for ExecHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExecHook")
            .field("program", &self.inner.program)
            .field(
                "args",
                &format_args!("[{} hidden]", self.inner.argv.len() - 1),
            )
            .field("env_keys", &self.env_keys().collect::<Vec<_>>())
            .field("timeout", &self.inner.timeout)
            .field("kill_grace", &self.inner.kill_grace)
            .field("output_cap", &self.inner.output_cap)
            .finish()
    }
}

#[async_trait]
impl Hook for ExecHook {
    async fn on_disconnect(&self, event: &DisconnectEvent) -> Result<Delivery, HookError> {
        crate::run::run(&self.inner, event).await
    }
}

/// Builds an [`ExecHook`] in code (see [`ExecHook::builder`]).
#[derive(Clone)]
pub struct ExecHookBuilder {
    program: PathBuf,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    timeout: Duration,
    kill_grace: Duration,
    output_cap: usize,
    drain_timeout: Duration,
}

impl ExecHookBuilder {
    /// Appends one argument (an empty string is passed as an empty argument).
    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Appends arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Appends `key=value` to the environment (a later entry for the same key wins, as in the
    /// configuration; the four `SFTPGO_CONNECTION_*` variables always win).
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// How long the program may run (default 30 s). Must be non-zero.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Time between `SIGTERM` and `SIGKILL` to a timed-out program's group (default 2 s).
    pub fn kill_grace(mut self, grace: Duration) -> Self {
        self.kill_grace = grace;
        self
    }

    /// Bytes of stdout and of stderr kept per run, the last ones (default 8192; 0 keeps none).
    pub fn output_cap(mut self, cap: usize) -> Self {
        self.output_cap = cap;
        self
    }

    /// How long the output pipes are still read after the program exited (default 150 ms). A
    /// background child holding them open never delays the result by more than this.
    pub fn drain_timeout(mut self, drain: Duration) -> Self {
        self.drain_timeout = drain;
        self
    }

    /// The hook.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] when the program is not an absolute path, the timeout is zero, an env
    /// key is empty or contains `=`, or any value contains a NUL byte.
    pub fn build(self) -> Result<ExecHook, ConfigError> {
        if !self.program.is_absolute() {
            return Err(ConfigError::invalid(
                "program",
                format!(
                    "{:?} is not an absolute program path",
                    self.program.display().to_string()
                ),
            ));
        }
        if self.timeout.is_zero() {
            return Err(ConfigError::invalid("timeout", "must be greater than zero"));
        }
        let args = self
            .args
            .into_iter()
            .enumerate()
            .map(|(i, a)| c_string(&format!("args[{i}]"), a.into_vec()))
            .collect::<Result<Vec<_>, _>>()?;
        let mut env = Vec::with_capacity(self.env.len());
        for (i, (k, v)) in self.env.into_iter().enumerate() {
            let key = k.as_bytes();
            if key.is_empty() || key.contains(&b'=') {
                return Err(ConfigError::invalid(
                    format!("env[{i}]"),
                    "key must be non-empty and without '='",
                ));
            }
            let mut kv = k.into_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            if kv.contains(&0) {
                return Err(ConfigError::invalid(
                    format!("env[{i}]"),
                    "contains a NUL byte",
                ));
            }
            env.push(kv);
        }
        Inner::into_hook(
            self.program,
            args,
            env,
            self.timeout,
            self.kill_grace,
            self.output_cap,
            self.drain_timeout,
        )
    }
}

impl fmt::Debug for ExecHookBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExecHookBuilder")
            .field("program", &self.program)
            .field("args", &format_args!("[{} hidden]", self.args.len()))
            .field(
                "env_keys",
                &self.env.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .field("timeout", &self.timeout)
            .field("kill_grace", &self.kill_grace)
            .field("output_cap", &self.output_cap)
            .field("drain_timeout", &self.drain_timeout)
            .finish()
    }
}
