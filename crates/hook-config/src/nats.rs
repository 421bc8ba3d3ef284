//! Our `nats` section: the JetStream stream, subjects, credentials and TLS of the NATS backend
//! (`hook-nats`) and of `hookctl relay`. SFTPGo has no such section and ignores it.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::ConfigError;
use crate::redact::REDACTED;
use crate::types::TlsKeyPair;
use crate::validate::{check_file_input, clean_path};

/// The `nats` section. Durations are seconds, as floats. Only settings a NATS 2.9 server honours
/// are used (2.9 silently ignores fields it does not know): the stream is created with `subjects`,
/// file `storage`, `num_replicas` and `duplicate_window`; the relay's consumer with
/// `durable_name`, one `filter_subject`, explicit `ack_policy`, `ack_wait`, `max_deliver` and
/// `max_ack_pending`.
///
/// `Debug` never shows the token.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct NatsSection {
    /// `nats.subject_prefix`: the subject is this prefix, `.`, and the protocol in lower case
    /// (`sftpgo.hooks.disconnect.sftp`). Default `sftpgo.hooks.disconnect`.
    pub subject_prefix: String,
    /// `nats.stream`: the JetStream stream that stores the events. Default `SFTPGO_HOOKS`.
    pub stream: String,
    /// `nats.create_stream`: create the stream when it is missing (file storage, subjects
    /// `<subject_prefix>.>`). Default true. When false, a missing stream is a permanent error.
    pub create_stream: bool,
    /// `nats.replicas`: replicas of a stream this backend creates (1 on a single server, 3 on a
    /// 3-node cluster). Default 1; `1..=5`.
    pub replicas: usize,
    /// `nats.duplicate_window`: seconds the stream remembers a `Nats-Msg-Id` to drop a retried
    /// publish (set when the stream is created). Default 120.
    pub duplicate_window: f64,
    /// `nats.ack_timeout`: seconds to wait for the stream's ack of one publish. Default 5.
    pub ack_timeout: f64,
    /// `nats.credentials_file`: a NATS `.creds` file (user JWT and nkey seed), relative to the
    /// config dir. Default empty.
    pub credentials_file: String,
    /// `nats.token`: a NATS authentication token: a secret, redacted everywhere. Default empty.
    pub token: String,
    /// `nats.ca_certificates`: PEM files trusted in addition to the system roots, relative to the
    /// config dir.
    pub ca_certificates: Vec<String>,
    /// `nats.certificates`: the client certificate and key for mutual TLS (at most one pair),
    /// relative to the config dir.
    pub certificates: Vec<TlsKeyPair>,
    /// `nats.skip_tls_verify`: accept any server certificate and host name. Default false.
    pub skip_tls_verify: bool,
    /// `nats.consumer`: the durable consumer every `hookctl relay` shares (a work queue).
    /// Default `sftpgo-hooks-relay`.
    pub consumer: String,
    /// `nats.ack_wait`: seconds the server waits for a relay's ack before redelivering the
    /// message to another relay (a running hook sends progress, so it may take longer).
    /// Default 30.
    pub ack_wait: f64,
}

impl Default for NatsSection {
    fn default() -> Self {
        NatsSection {
            subject_prefix: "sftpgo.hooks.disconnect".into(),
            stream: "SFTPGO_HOOKS".into(),
            create_stream: true,
            replicas: 1,
            duplicate_window: 120.0,
            ack_timeout: 5.0,
            credentials_file: String::new(),
            token: String::new(),
            ca_certificates: Vec::new(),
            certificates: Vec::new(),
            skip_tls_verify: false,
            consumer: "sftpgo-hooks-relay".into(),
            ack_wait: 30.0,
        }
    }
}

impl fmt::Debug for NatsSection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let token = if self.token.is_empty() { "" } else { REDACTED };
        f.debug_struct("NatsSection")
            .field("subject_prefix", &self.subject_prefix)
            .field("stream", &self.stream)
            .field("create_stream", &self.create_stream)
            .field("replicas", &self.replicas)
            .field("duplicate_window", &self.duplicate_window)
            .field("ack_timeout", &self.ack_timeout)
            .field("credentials_file", &self.credentials_file)
            .field("token", &token)
            .field("ca_certificates", &self.ca_certificates)
            .field("certificates", &self.certificates)
            .field("skip_tls_verify", &self.skip_tls_verify)
            .field("consumer", &self.consumer)
            .field("ack_wait", &self.ack_wait)
            .finish()
    }
}

impl NatsSection {
    /// The subject an event of `protocol` is published on: `<subject_prefix>.<protocol lower>`.
    ///
    /// ```
    /// let nats = hook_config::NatsSection::default();
    /// assert_eq!(nats.subject_for(hook_core::Protocol::Sftp), "sftpgo.hooks.disconnect.sftp");
    /// ```
    pub fn subject_for(&self, protocol: hook_core::Protocol) -> String {
        format!(
            "{}.{}",
            self.subject_prefix,
            protocol.as_str().to_ascii_lowercase()
        )
    }

    /// The subjects of the stream this backend creates, and the relay's filter: `<prefix>.>`.
    pub fn stream_subjects(&self) -> String {
        format!("{}.>", self.subject_prefix)
    }

    /// `ack_timeout` as a duration (validated: finite and `> 0`).
    pub fn ack_timeout(&self) -> Duration {
        Duration::try_from_secs_f64(self.ack_timeout).unwrap_or(Duration::from_secs(5))
    }

    /// `ack_wait` as a duration (validated: finite and `> 0`).
    pub fn ack_wait(&self) -> Duration {
        Duration::try_from_secs_f64(self.ack_wait).unwrap_or(Duration::from_secs(30))
    }

    /// `duplicate_window` as a duration (validated: finite and `> 0`).
    pub fn duplicate_window(&self) -> Duration {
        Duration::try_from_secs_f64(self.duplicate_window).unwrap_or(Duration::from_secs(120))
    }

    /// Checks the section; every error names the key: the subject prefix is dot-separated tokens
    /// without white space or wildcards; stream and consumer names have no white space, `.`,
    /// `*`, `>`, `/` or `\`; `replicas` is `1..=5`; the durations are finite and `> 0`; at most
    /// one certificate pair; the file paths are valid by the `http` section's rule.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let prefix = &self.subject_prefix;
        if prefix.is_empty()
            || prefix.split('.').any(|t| {
                t.is_empty()
                    || t == "*"
                    || t == ">"
                    || t.bytes()
                        .any(|b| b <= b' ' || b == 0x7f || b == b'*' || b == b'>')
            })
        {
            return Err(ConfigError::invalid(
                "nats.subject_prefix",
                format!(
                    "{prefix:?} is not a subject prefix: expected dot-separated tokens without \
                     white space or wildcards (e.g. sftpgo.hooks.disconnect)"
                ),
            ));
        }
        check_name("nats.stream", &self.stream)?;
        check_name("nats.consumer", &self.consumer)?;
        if !(1..=5).contains(&self.replicas) {
            return Err(ConfigError::invalid(
                "nats.replicas",
                format!("invalid value {}: must be 1..=5", self.replicas),
            ));
        }
        for (key, value) in [
            ("nats.duplicate_window", self.duplicate_window),
            ("nats.ack_timeout", self.ack_timeout),
            ("nats.ack_wait", self.ack_wait),
        ] {
            if !(value > 0.0 && Duration::try_from_secs_f64(value).is_ok()) {
                return Err(ConfigError::invalid(
                    key,
                    format!("invalid duration {value}: must be a finite number of seconds > 0"),
                ));
            }
        }
        if !self.credentials_file.is_empty() {
            check_file_input(
                "nats.credentials_file",
                "credentials",
                &self.credentials_file,
            )?;
        }
        if self.token.bytes().any(|b| b < 0x20 || b == 0x7f) {
            return Err(ConfigError::invalid(
                "nats.token",
                format!("{REDACTED} contains a control character"),
            ));
        }
        for (i, path) in self.ca_certificates.iter().enumerate() {
            check_file_input(
                &format!("nats.ca_certificates[{i}]"),
                "CA certificate",
                path,
            )?;
        }
        if self.certificates.len() > 1 {
            return Err(ConfigError::invalid(
                "nats.certificates",
                format!(
                    "{} pairs given: a NATS connection presents one client certificate",
                    self.certificates.len()
                ),
            ));
        }
        for (i, pair) in self.certificates.iter().enumerate() {
            check_file_input(
                &format!("nats.certificates[{i}].cert"),
                "certificate",
                &pair.cert,
            )?;
            check_file_input(&format!("nats.certificates[{i}].key"), "key", &pair.key)?;
        }
        Ok(())
    }

    /// Makes relative `credentials_file`, `ca_certificates` and `certificates` paths absolute
    /// against `config_dir`, as the `http` section's are.
    pub fn resolve_paths(&mut self, config_dir: &Path) {
        let base = std::path::absolute(config_dir).unwrap_or_else(|_| config_dir.to_path_buf());
        let resolve = |p: &mut String| {
            if !p.is_empty() && !Path::new(p.as_str()).is_absolute() {
                *p = clean_path(&base.join(p.as_str()).to_string_lossy());
            }
        };
        resolve(&mut self.credentials_file);
        self.ca_certificates.iter_mut().for_each(resolve);
        for pair in &mut self.certificates {
            resolve(&mut pair.cert);
            resolve(&mut pair.key);
        }
    }
}

fn check_name(key: &str, name: &str) -> Result<(), ConfigError> {
    if name.is_empty()
        || name
            .bytes()
            .any(|b| b <= b' ' || b == 0x7f || matches!(b, b'.' | b'*' | b'>' | b'/' | b'\\'))
    {
        return Err(ConfigError::invalid(
            key,
            format!(
                "{name:?} is not a JetStream name: it must be non-empty, without white space, '.', '*', '>', '/' or '\\'"
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        NatsSection::default().validate().unwrap();
    }

    #[test]
    fn bad_values_name_the_key() {
        type Change = fn(&mut NatsSection);
        let cases: Vec<(Change, &str)> = vec![
            (|n| n.subject_prefix = "a..b".into(), "nats.subject_prefix"),
            (|n| n.subject_prefix = "a.>".into(), "nats.subject_prefix"),
            (|n| n.subject_prefix = "a b".into(), "nats.subject_prefix"),
            (|n| n.subject_prefix = String::new(), "nats.subject_prefix"),
            (|n| n.stream = "A.B".into(), "nats.stream"),
            (|n| n.stream = String::new(), "nats.stream"),
            (|n| n.consumer = "x y".into(), "nats.consumer"),
            (|n| n.replicas = 0, "nats.replicas"),
            (|n| n.replicas = 7, "nats.replicas"),
            (|n| n.ack_timeout = 0.0, "nats.ack_timeout"),
            (|n| n.ack_wait = f64::NAN, "nats.ack_wait"),
            (|n| n.duplicate_window = -1.0, "nats.duplicate_window"),
            (
                |n| n.credentials_file = "..".into(),
                "nats.credentials_file",
            ),
            (
                |n| n.ca_certificates = vec![".".into()],
                "nats.ca_certificates[0]",
            ),
            (
                |n| n.certificates = vec![TlsKeyPair::new("a", "b"), TlsKeyPair::new("c", "d")],
                "nats.certificates",
            ),
            (|n| n.token = "a\nb".into(), "nats.token"),
        ];
        for (change, key) in cases {
            let mut n = NatsSection::default();
            change(&mut n);
            let err = n.validate().unwrap_err();
            assert_eq!(err.key(), key, "{err}");
            assert!(err.to_string().starts_with(key), "{err}");
        }
    }

    #[test]
    fn token_never_shown() {
        let n = NatsSection {
            token: "s3cret".into(),
            ..NatsSection::default()
        };
        assert!(!format!("{n:?}").contains("s3cret"));
    }
}
