//! The one projection of an event into SFTPGo's four fields.

use std::fmt;

use crate::DisconnectEvent;

/// One of the four values SFTPGo passes to a post-disconnect hook.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Field {
    /// The client IP (`SFTPGO_CONNECTION_IP`, `ip`).
    Ip,
    /// The username (`SFTPGO_CONNECTION_USERNAME`, `username`).
    Username,
    /// The duration in whole milliseconds (`SFTPGO_CONNECTION_DURATION`, `connection_duration`).
    Duration,
    /// The protocol (`SFTPGO_CONNECTION_PROTOCOL`, `protocol`).
    Protocol,
}

impl Field {
    /// The four fields in the order SFTPGo appends them to a program's environment.
    pub const ENV_ORDER: [Field; 4] =
        [Field::Ip, Field::Username, Field::Duration, Field::Protocol];

    /// The environment variable a program hook receives this field in.
    pub const fn env_var(self) -> &'static str {
        match self {
            Field::Ip => "SFTPGO_CONNECTION_IP",
            Field::Username => "SFTPGO_CONNECTION_USERNAME",
            Field::Duration => "SFTPGO_CONNECTION_DURATION",
            Field::Protocol => "SFTPGO_CONNECTION_PROTOCOL",
        }
    }

    /// The query parameter an HTTP hook receives this field in.
    pub const fn query_key(self) -> &'static str {
        match self {
            Field::Ip => "ip",
            Field::Username => "username",
            Field::Duration => "connection_duration",
            Field::Protocol => "protocol",
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.query_key())
    }
}

/// An event's four SFTPGo values, as text, borrowed from the event (no allocation).
///
/// ```
/// use std::time::Duration;
/// use hook_core::{DisconnectEvent, Field, Protocol};
///
/// let event = DisconnectEvent::new("10.0.0.1", Protocol::Ssh, "bob", Duration::from_micros(5_999));
/// let fields = event.sftpgo_fields();
/// let env: Vec<String> = fields.iter().map(|(f, v)| format!("{}={v}", f.env_var())).collect();
/// assert_eq!(env, [
///     "SFTPGO_CONNECTION_IP=10.0.0.1",
///     "SFTPGO_CONNECTION_USERNAME=bob",
///     "SFTPGO_CONNECTION_DURATION=5",
///     "SFTPGO_CONNECTION_PROTOCOL=SSH",
/// ]);
/// assert_eq!(fields.get(Field::Duration), "5");
/// ```
#[derive(Clone, Copy, Debug)]
pub struct SftpgoFields<'a> {
    ip: &'a str,
    username: &'a str,
    protocol: &'static str,
    duration: MillisText,
}

impl<'a> SftpgoFields<'a> {
    pub(crate) fn new(event: &'a DisconnectEvent) -> Self {
        SftpgoFields {
            ip: event.ip(),
            username: event.username(),
            protocol: event.protocol().as_str(),
            duration: MillisText::new(event.duration_ms()),
        }
    }

    /// The text of one field.
    pub fn get(&self, field: Field) -> &str {
        match field {
            Field::Ip => self.ip,
            Field::Username => self.username,
            Field::Duration => self.duration.as_str(),
            Field::Protocol => self.protocol,
        }
    }

    /// The four `(field, text)` pairs in SFTPGo's environment order (ip, username, duration,
    /// protocol). Use [`Field::env_var`] or [`Field::query_key`] for the names.
    pub fn iter(&self) -> impl Iterator<Item = (Field, &str)> + '_ {
        Field::ENV_ORDER.into_iter().map(move |f| (f, self.get(f)))
    }
}

/// A `u128` in base-10 text, stored inline.
#[derive(Clone, Copy)]
struct MillisText {
    buf: [u8; 39],
    start: u8,
}

impl MillisText {
    fn new(mut n: u128) -> Self {
        let mut buf = [0u8; 39];
        let mut i = buf.len();
        loop {
            i -= 1;
            buf[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        MillisText {
            buf,
            start: i as u8,
        }
    }

    fn as_str(&self) -> &str {
        // Only ASCII digits are ever written.
        std::str::from_utf8(&self.buf[self.start as usize..]).unwrap_or("0")
    }
}

impl fmt::Debug for MillisText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Protocol;
    use std::time::Duration;

    #[test]
    fn query_keys_and_env_names() {
        let names: Vec<_> = Field::ENV_ORDER
            .iter()
            .map(|f| (f.env_var(), f.query_key()))
            .collect();
        assert_eq!(
            names,
            [
                ("SFTPGO_CONNECTION_IP", "ip"),
                ("SFTPGO_CONNECTION_USERNAME", "username"),
                ("SFTPGO_CONNECTION_DURATION", "connection_duration"),
                ("SFTPGO_CONNECTION_PROTOCOL", "protocol"),
            ]
        );
    }

    #[test]
    fn millis_text() {
        for (n, s) in [
            (0u128, "0"),
            (7, "7"),
            (1234, "1234"),
            (u128::MAX, &*u128::MAX.to_string()),
        ] {
            assert_eq!(MillisText::new(n).as_str(), s);
        }
    }

    #[test]
    fn projection_of_an_event() {
        let event = DisconnectEvent::new("", Protocol::Ftp, "", Duration::from_nanos(999_999));
        let f = event.sftpgo_fields();
        let got: Vec<_> = f
            .iter()
            .map(|(k, v)| (k.query_key(), v.to_owned()))
            .collect();
        assert_eq!(
            got,
            [
                ("ip", String::new()),
                ("username", String::new()),
                ("connection_duration", "0".to_owned()),
                ("protocol", "FTP".to_owned())
            ]
        );
    }
}
