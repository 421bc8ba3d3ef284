//! The message: subject, headers and the Standard-Webhooks-style JSON envelope, both ways.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use hook_core::{DisconnectEvent, EventId, Protocol};
use serde::Deserialize;

/// The envelope's `type`.
pub const EVENT_TYPE: &str = "connection.disconnected";

/// The `Content-Type` header of every message.
pub const CONTENT_TYPE: &str = "application/json";

/// The JSON body of `event`, exactly:
///
/// ```text
/// {"id":"<event id>","type":"connection.disconnected","timestamp":"<RFC 3339 UTC, ms>",
///  "data":{"ip":"...","protocol":"SFTP","username":"...","connection_duration":1234}}
/// ```
///
/// (one line, no spaces). `timestamp` is the event's creation time, i.e. the disconnect, read
/// from its id; `connection_duration` is whole milliseconds; the `data` keys are SFTPGo's query
/// keys.
///
/// ```
/// use std::time::Duration;
/// use hook_core::{DisconnectEvent, EventId, Protocol};
///
/// let id: EventId = "0190b6a2-1c3d-7000-8000-000000000001".parse().unwrap();
/// let event = DisconnectEvent::new("203.0.113.7", Protocol::Sftp, "alice", Duration::from_millis(1234))
///     .with_id(id);
/// assert_eq!(
///     String::from_utf8(hook_nats::encode_body(&event)).unwrap(),
///     r#"{"id":"0190b6a2-1c3d-7000-8000-000000000001","type":"connection.disconnected","timestamp":"2024-07-15T13:43:15.773Z","data":{"ip":"203.0.113.7","protocol":"SFTP","username":"alice","connection_duration":1234}}"#
/// );
/// ```
pub fn encode_body(event: &DisconnectEvent) -> Vec<u8> {
    let mut out = String::with_capacity(192 + event.ip().len() + event.username().len());
    out.push_str("{\"id\":\"");
    out.push_str(&event.id().to_string());
    out.push_str("\",\"type\":\"");
    out.push_str(EVENT_TYPE);
    out.push_str("\",\"timestamp\":\"");
    push_rfc3339_ms(&mut out, event.id().unix_ms());
    out.push_str("\",\"data\":{\"ip\":");
    push_json_string(&mut out, event.ip());
    out.push_str(",\"protocol\":\"");
    out.push_str(event.protocol().as_str());
    out.push_str("\",\"username\":");
    push_json_string(&mut out, event.username());
    out.push_str(",\"connection_duration\":");
    out.push_str(&event.duration_ms().to_string());
    out.push_str("}}");
    out.into_bytes()
}

/// Why a message could not be read back as an event (the relay terminates such a message).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError {
    message: String,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not a disconnect event message: {}", self.message)
    }
}

impl std::error::Error for DecodeError {}

/// The envelope as read: text borrowed from the body where it has no escapes (most of it), so
/// decoding allocates only the IP and the username the event keeps.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    timestamp: Cow<'a, str>,
    #[serde(borrow)]
    data: Data<'a>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Data<'a> {
    #[serde(borrow)]
    ip: Cow<'a, str>,
    #[serde(borrow)]
    protocol: Cow<'a, str>,
    #[serde(borrow)]
    username: Cow<'a, str>,
    connection_duration: u64,
}

/// Reads a message body back into the event it was made from: the same id, IP, protocol,
/// username and duration (so a hook run by the relay sees exactly what it would have seen on the
/// node).
///
/// ```
/// use std::time::Duration;
/// use hook_core::{DisconnectEvent, Protocol};
///
/// let event = DisconnectEvent::new("::1", Protocol::Scp, "b\"ob", Duration::from_millis(7));
/// let back = hook_nats::decode_body(&hook_nats::encode_body(&event)).unwrap();
/// assert_eq!(back, event);
/// assert!(hook_nats::decode_body(b"{}").is_err());
/// ```
pub fn decode_body(body: &[u8]) -> Result<DisconnectEvent, DecodeError> {
    let err = |message: String| DecodeError { message };
    let envelope: Envelope<'_> =
        serde_json::from_slice(body).map_err(|e| err(format!("invalid JSON envelope: {e}")))?;
    if envelope.kind != EVENT_TYPE {
        return Err(err(format!(
            "type {:?}, expected {EVENT_TYPE:?}",
            envelope.kind
        )));
    }
    let id: EventId = envelope
        .id
        .parse()
        .map_err(|_| err(format!("id {:?} is not an event id", envelope.id)))?;
    if envelope.timestamp.is_empty() {
        return Err(err("empty timestamp".into()));
    }
    let protocol: Protocol = envelope
        .data
        .protocol
        .parse()
        .map_err(|_| err(format!("unknown protocol {:?}", envelope.data.protocol)))?;
    Ok(DisconnectEvent::new(
        envelope.data.ip.into_owned(),
        protocol,
        envelope.data.username.into_owned(),
        Duration::from_millis(envelope.data.connection_duration),
    )
    .with_id(id))
}

fn push_json_string(out: &mut String, value: &str) {
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` for `ms` milliseconds since the Unix epoch (UTC).
pub(crate) fn push_rfc3339_ms(out: &mut String, ms: u64) {
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = hook_core::civil::civil_from_days(days);
    out.push_str(&format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60,
        ms % 1000
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(ms: u64) -> String {
        let mut s = String::new();
        push_rfc3339_ms(&mut s, ms);
        s
    }

    #[test]
    fn timestamps() {
        assert_eq!(ts(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(ts(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(ts(1_785_585_600_123), "2026-08-01T12:00:00.123Z");
        assert_eq!(ts(4_102_444_799_999), "2099-12-31T23:59:59.999Z");
    }

    #[test]
    fn golden_body_with_escapes() {
        let id = EventId::at(Duration::from_millis(1_785_585_600_123));
        let event = DisconnectEvent::new(
            "fe80::1%eth0",
            Protocol::Ftp,
            "a\"b\\c\nd\u{1}é",
            Duration::from_micros(1_999_999),
        )
        .with_id(id);
        let body = String::from_utf8(encode_body(&event)).unwrap();
        assert_eq!(
            body,
            format!(
                "{{\"id\":\"{id}\",\"type\":\"connection.disconnected\",\"timestamp\":\"2026-08-01T12:00:00.123Z\",\"data\":{{\"ip\":\"fe80::1%eth0\",\"protocol\":\"FTP\",\"username\":\"a\\\"b\\\\c\\nd\\u0001é\",\"connection_duration\":1999}}}}"
            )
        );
        let parsed: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(parsed["data"]["username"], "a\"b\\c\nd\u{1}é");
        let back = decode_body(body.as_bytes()).unwrap();
        assert_eq!(back.id(), id);
        assert_eq!(back.username(), event.username());
        assert_eq!(back.duration_ms(), 1999);
    }

    #[test]
    fn anonymous_event_has_an_empty_username() {
        let event = DisconnectEvent::new("10.0.0.1", Protocol::Ftp, "", Duration::ZERO);
        let body = String::from_utf8(encode_body(&event)).unwrap();
        assert!(
            body.contains("\"username\":\"\",\"connection_duration\":0}}"),
            "{body}"
        );
    }

    #[test]
    fn bad_messages_are_decode_errors() {
        let good = String::from_utf8(encode_body(&DisconnectEvent::new(
            "1.2.3.4",
            Protocol::Sftp,
            "u",
            Duration::ZERO,
        )))
        .unwrap();
        for bad in [
            "".to_owned(),
            "not json".to_owned(),
            good.replace("connection.disconnected", "other.type"),
            good.replace("\"SFTP\"", "\"GOPHER\""),
            good.replace("\"connection_duration\":0", "\"connection_duration\":-1"),
            good.replace("\"id\":\"", "\"id\":\"x"),
            good.replace("\"ip\"", "\"extra\":1,\"ip\""),
        ] {
            let err = decode_body(bad.as_bytes()).unwrap_err();
            assert!(
                err.to_string()
                    .starts_with("not a disconnect event message"),
                "{err}"
            );
        }
    }
}
