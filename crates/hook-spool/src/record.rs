//! The record layout (version 1) and [`SpoolRecord`], one spooled event with its delivery state.
//!
//! A record is stored under its 16-byte [`EventId`] (UUIDv7 bytes, so keys sort oldest first).
//! The value, all integers little-endian:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 1 | layout version, `1` |
//! | 1 | 1 | state: `0` pending, `1` deferred, `2` dead |
//! | 2 | 4 | attempts: failed delivery attempts recorded so far (u32) |
//! | 6 | 8 | first seen: when the spool accepted the event, ms since the Unix epoch (u64) |
//! | 14 | 8 | next attempt: due time of a deferred record, ms since the epoch; `0` = none (u64) |
//! | 22 | 8 | connection duration, whole seconds (u64) |
//! | 30 | 4 | connection duration, sub-second nanoseconds (u32) |
//! | 34 | 1 | n = length of the protocol name |
//! | 35 | n | protocol, SFTPGo's spelling (`SFTP`, `SCP`, ...) |
//! | | 4 + len | client IP text: u32 length, UTF-8 bytes |
//! | | 4 + len | username: u32 length, UTF-8 bytes |
//! | | 4 + len | last error: u32 length, UTF-8 bytes (empty = none; at most 1 KiB kept) |
//!
//! Readers reject a version they do not know; a new layout gets a new version number and the
//! decoder keeps reading the old ones.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hook_core::{DisconnectEvent, EventId, Protocol};

/// The record layout this crate writes.
pub(crate) const LAYOUT_VERSION: u8 = 1;

/// The most bytes of an error message kept in a record.
pub(crate) const MAX_ERROR_BYTES: usize = 1024;

/// Where a spooled event is in its life.
///
/// ```text
/// append ──> Pending ──ack──> (removed)
///              │  ▲
///        defer │  │ due (take_due), retry
///              ▼  │
///            Deferred ──mark_dead──> Dead ──retry──> Pending
///              (Pending ──mark_dead──> Dead as well; purge removes Dead or all)
/// ```
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum State {
    /// To be delivered now: new, being delivered, or taken for redelivery. Replayed at start-up.
    Pending,
    /// A delivery failed transiently; to be redelivered at its next attempt time.
    Deferred,
    /// Given up: expired or failed permanently, with its last error. Kept (bounded by
    /// `dead_max`) for inspection and retry.
    Dead,
}

impl State {
    /// Every state.
    pub const ALL: [State; 3] = [State::Pending, State::Deferred, State::Dead];

    /// A short lower-case name: `pending`, `deferred`, `dead`.
    pub const fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Deferred => "deferred",
            State::Dead => "dead",
        }
    }

    pub(crate) const fn code(self) -> u8 {
        match self {
            State::Pending => 0,
            State::Deferred => 1,
            State::Dead => 2,
        }
    }

    fn from_code(code: u8) -> Option<State> {
        match code {
            0 => Some(State::Pending),
            1 => Some(State::Deferred),
            2 => Some(State::Dead),
            _ => None,
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for State {
    type Err = String;

    /// Parses `pending`, `deferred` or `dead`.
    fn from_str(s: &str) -> Result<State, String> {
        State::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| format!("unknown spool state {s:?}: expected pending, deferred or dead"))
    }
}

/// One spooled event and its delivery state, as read back from the spool.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpoolRecord {
    event: DisconnectEvent,
    state: State,
    attempts: u32,
    first_seen_ms: u64,
    next_attempt_ms: u64,
    last_error: String,
    stored_bytes: usize,
}

impl SpoolRecord {
    /// The event, with the id it was spooled with.
    pub fn event(&self) -> &DisconnectEvent {
        &self.event
    }

    /// The event, taken out of the record.
    pub fn into_event(self) -> DisconnectEvent {
        self.event
    }

    /// The event's id (the record's key).
    pub fn id(&self) -> EventId {
        self.event.id()
    }

    /// The record's state.
    pub fn state(&self) -> State {
        self.state
    }

    /// Failed delivery attempts recorded so far (each `defer` and `mark_dead` counts one).
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// When the spool first accepted the event (the clock of the spooling host, to the ms).
    pub fn first_seen(&self) -> SystemTime {
        from_ms(self.first_seen_ms)
    }

    /// When a deferred record is due for redelivery; `None` for pending and dead records.
    pub fn next_attempt(&self) -> Option<SystemTime> {
        (self.next_attempt_ms != 0).then(|| from_ms(self.next_attempt_ms))
    }

    /// The last delivery error (for dead records: why it was given up), if any.
    pub fn last_error(&self) -> Option<&str> {
        (!self.last_error.is_empty()).then_some(self.last_error.as_str())
    }

    /// The size of the stored record (key and value), in bytes.
    pub fn stored_bytes(&self) -> usize {
        self.stored_bytes
    }

    pub(crate) fn first_seen_ms(&self) -> u64 {
        self.first_seen_ms
    }

    pub(crate) fn next_attempt_ms(&self) -> u64 {
        self.next_attempt_ms
    }

    /// The same record in `state`, with `next_attempt_ms` (0 = none).
    pub(crate) fn moved(mut self, state: State, next_attempt_ms: u64) -> SpoolRecord {
        self.state = state;
        self.next_attempt_ms = next_attempt_ms;
        self
    }

    /// The same record with one more failed attempt and `error` as its last error.
    pub(crate) fn failed(mut self, error: &str) -> SpoolRecord {
        self.attempts = self.attempts.saturating_add(1);
        self.last_error = truncate(error, MAX_ERROR_BYTES).to_owned();
        self.stored_bytes = 16 + self.encoded_len();
        self
    }

    /// A new pending record for `event`, first seen at `now_ms`.
    #[cfg(test)]
    pub(crate) fn new_pending(event: DisconnectEvent, now_ms: u64) -> SpoolRecord {
        let mut record = SpoolRecord {
            event,
            state: State::Pending,
            attempts: 0,
            first_seen_ms: now_ms,
            next_attempt_ms: 0,
            last_error: String::new(),
            stored_bytes: 0,
        };
        record.stored_bytes = 16 + record.encoded_len();
        record
    }

    fn encoded_len(&self) -> usize {
        35 + self.event.protocol().as_str().len()
            + 12
            + self.event.ip().len()
            + self.event.username().len()
            + self.last_error.len()
    }

    /// The record's value in layout version 1.
    pub(crate) fn encode(&self) -> Vec<u8> {
        encode_value(
            &self.event,
            self.state,
            self.attempts,
            self.first_seen_ms,
            self.next_attempt_ms,
            &self.last_error,
        )
    }

    /// The record, encoded for the store.
    pub(crate) fn encoded(&self) -> Encoded {
        Encoded {
            id: self.id(),
            state: self.state,
            next_attempt_ms: self.next_attempt_ms,
            value: self.encode(),
        }
    }
}

/// A record already in its stored form: what an append hands to the writer (encoded by the
/// caller, so that only one buffer crosses to the writer thread, not the event's strings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Encoded {
    pub(crate) id: EventId,
    pub(crate) state: State,
    pub(crate) next_attempt_ms: u64,
    pub(crate) value: Vec<u8>,
}

impl Encoded {
    /// `event` as a new pending record first seen at `now_ms` (exactly what a pending
    /// `SpoolRecord` of it encodes to: pinned by a unit test).
    pub(crate) fn pending(event: &DisconnectEvent, now_ms: u64) -> Encoded {
        Encoded {
            id: event.id(),
            state: State::Pending,
            next_attempt_ms: 0,
            value: encode_value(event, State::Pending, 0, now_ms, 0, ""),
        }
    }

    /// Key and value bytes, as [`SpoolRecord::stored_bytes`] counts them.
    pub(crate) fn stored_bytes(&self) -> usize {
        16 + self.value.len()
    }
}

/// The value of a record in layout version 1.
fn encode_value(
    event: &DisconnectEvent,
    state: State,
    attempts: u32,
    first_seen_ms: u64,
    next_attempt_ms: u64,
    last_error: &str,
) -> Vec<u8> {
    let protocol = event.protocol().as_str().as_bytes();
    let mut out = Vec::with_capacity(
        35 + protocol.len() + 12 + event.ip().len() + event.username().len() + last_error.len(),
    );
    out.push(LAYOUT_VERSION);
    out.push(state.code());
    out.extend_from_slice(&attempts.to_le_bytes());
    out.extend_from_slice(&first_seen_ms.to_le_bytes());
    out.extend_from_slice(&next_attempt_ms.to_le_bytes());
    let duration = event.duration();
    out.extend_from_slice(&duration.as_secs().to_le_bytes());
    out.extend_from_slice(&duration.subsec_nanos().to_le_bytes());
    out.push(protocol.len() as u8); // at most 4 bytes
    out.extend_from_slice(protocol);
    for text in [event.ip(), event.username(), last_error] {
        let len = u32::try_from(text.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&text.as_bytes()[..len as usize]);
    }
    out
}

impl SpoolRecord {
    /// Reads a record stored under `key`; a typed error (never a panic) for anything else.
    pub(crate) fn decode(key: [u8; 16], value: &[u8]) -> Result<SpoolRecord, DecodeError> {
        let mut r = Reader { buf: value, at: 0 };
        let version = r.u8()?;
        if version != LAYOUT_VERSION {
            return Err(DecodeError(format!(
                "unknown record layout version {version}"
            )));
        }
        let state =
            State::from_code(r.u8()?).ok_or_else(|| DecodeError("unknown record state".into()))?;
        let attempts = u32::from_le_bytes(r.array()?);
        let first_seen_ms = u64::from_le_bytes(r.array()?);
        let next_attempt_ms = u64::from_le_bytes(r.array()?);
        let secs = u64::from_le_bytes(r.array()?);
        let nanos = u32::from_le_bytes(r.array()?);
        if nanos >= 1_000_000_000 {
            return Err(DecodeError("duration nanoseconds out of range".into()));
        }
        let protocol_len = usize::from(r.u8()?);
        let protocol = r.text(protocol_len)?;
        let protocol: Protocol = protocol
            .parse()
            .map_err(|_| DecodeError(format!("unknown protocol {protocol:?}")))?;
        let ip = r.counted_text()?.to_owned();
        let username = r.counted_text()?.to_owned();
        let last_error = r.counted_text()?.to_owned();
        if r.at != value.len() {
            return Err(DecodeError("trailing bytes after the record".into()));
        }
        let event = DisconnectEvent::new(ip, protocol, username, Duration::new(secs, nanos))
            .with_id(EventId::from_bytes(key));
        Ok(SpoolRecord {
            event,
            state,
            attempts,
            first_seen_ms,
            next_attempt_ms,
            last_error,
            stored_bytes: 16 + value.len(),
        })
    }
}

/// A stored value that is not a record this crate can read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct DecodeError(pub(crate) String);

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "undecodable spool record: {}", self.0)
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|end| *end <= self.buf.len())
            .ok_or_else(|| DecodeError("record is truncated".into()))?;
        let bytes = &self.buf[self.at..end];
        self.at = end;
        Ok(bytes)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn text(&mut self, n: usize) -> Result<&'a str, DecodeError> {
        std::str::from_utf8(self.take(n)?).map_err(|_| DecodeError("text is not UTF-8".into()))
    }

    fn counted_text(&mut self) -> Result<&'a str, DecodeError> {
        let len = u32::from_le_bytes(self.array()?) as usize;
        self.text(len)
    }
}

/// `text` cut to at most `max` bytes, at a character boundary.
pub(crate) fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Milliseconds since the Unix epoch (0 before it, saturating far after it).
pub(crate) fn to_ms(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

pub(crate) fn from_ms(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> SpoolRecord {
        let event = DisconnectEvent::new(
            "2001:db8::1",
            Protocol::Scp,
            "jöhn",
            Duration::new(12, 345_678_901),
        );
        SpoolRecord::new_pending(event, 1_700_000_000_123)
    }

    #[test]
    fn round_trip_every_state() {
        let record = sample();
        let key = *record.id().as_bytes();
        let back = SpoolRecord::decode(key, &record.encode()).unwrap();
        assert_eq!(back, record);
        assert_eq!(back.stored_bytes(), 16 + record.encode().len());
        let deferred = record.failed("HTTP 503").moved(State::Deferred, 42);
        let back = SpoolRecord::decode(key, &deferred.encode()).unwrap();
        assert_eq!(back.state(), State::Deferred);
        assert_eq!(back.attempts(), 1);
        assert_eq!(back.next_attempt(), Some(from_ms(42)));
        assert_eq!(back.last_error(), Some("HTTP 503"));
        assert_eq!(back.event().duration(), Duration::new(12, 345_678_901));
        let dead = deferred.failed(&"x".repeat(5000)).moved(State::Dead, 0);
        let back = SpoolRecord::decode(key, &dead.encode()).unwrap();
        assert_eq!(back.state(), State::Dead);
        assert_eq!(back.attempts(), 2);
        assert_eq!(back.last_error().unwrap().len(), MAX_ERROR_BYTES);
        assert_eq!(back.next_attempt(), None);
    }

    #[test]
    fn layout_version_1_bytes_are_stable() {
        let event = DisconnectEvent::new("1.2.3.4", Protocol::Ftp, "al", Duration::new(1, 2));
        let record = SpoolRecord::new_pending(event, 0x0102);
        let bytes = record.encode();
        let mut expected = vec![1u8, 0, 0, 0, 0, 0];
        expected.extend_from_slice(&0x0102u64.to_le_bytes());
        expected.extend_from_slice(&0u64.to_le_bytes());
        expected.extend_from_slice(&1u64.to_le_bytes());
        expected.extend_from_slice(&2u32.to_le_bytes());
        expected.extend_from_slice(b"\x03FTP");
        expected.extend_from_slice(b"\x07\0\0\x001.2.3.4");
        expected.extend_from_slice(b"\x02\0\0\0al");
        expected.extend_from_slice(b"\0\0\0\0");
        assert_eq!(bytes, expected);
        // What an append hands to the writer is the same bytes, without a record made first.
        let encoded = Encoded::pending(record.event(), 0x0102);
        assert_eq!(encoded.value, expected);
        assert_eq!(encoded.id, record.id());
        assert_eq!(encoded.state, State::Pending);
        assert_eq!(encoded.stored_bytes(), record.stored_bytes());
        assert_eq!(record.encoded(), encoded);
    }

    #[test]
    fn garbage_is_a_typed_error_never_a_panic() {
        let good = sample().encode();
        let key = [7u8; 16];
        for cut in 0..good.len() {
            assert!(
                SpoolRecord::decode(key, &good[..cut]).is_err(),
                "cut at {cut}"
            );
        }
        let mut bad = good.clone();
        bad[0] = 9;
        assert!(
            SpoolRecord::decode(key, &bad)
                .unwrap_err()
                .to_string()
                .contains("version 9")
        );
        let mut bad = good.clone();
        bad[1] = 7;
        assert!(SpoolRecord::decode(key, &bad).is_err());
        let mut long = good;
        long.push(0);
        assert!(SpoolRecord::decode(key, &long).is_err());
        // Every single-byte change decodes or errors; none panics.
        let good = sample().encode();
        for i in 0..good.len() {
            for v in [0u8, 0x7F, 0xFF] {
                let mut bytes = good.clone();
                bytes[i] = v;
                let _ = SpoolRecord::decode(key, &bytes);
            }
        }
    }

    proptest::proptest! {
        /// Any event, state and error text round-trips exactly through layout version 1.
        #[test]
        fn any_record_round_trips(
            ip in ".{0,64}",
            username in ".{0,300}",
            protocol in 0usize..7,
            secs in 0u64..u64::MAX / 2,
            nanos in 0u32..1_000_000_000,
            first_seen in proptest::prelude::any::<u64>(),
            due in 1u64..u64::MAX,
            error in ".{0,2000}",
            state in 0u8..3,
        ) {
            let event = DisconnectEvent::new(ip, Protocol::ALL[protocol], username, Duration::new(secs, nanos));
            let mut record = SpoolRecord::new_pending(event, first_seen);
            record = match state {
                0 => record,
                1 => record.failed(&error).moved(State::Deferred, due),
                _ => record.failed(&error).moved(State::Dead, 0),
            };
            let bytes = record.encode();
            let back = SpoolRecord::decode(*record.id().as_bytes(), &bytes).unwrap();
            proptest::prop_assert_eq!(back.stored_bytes(), 16 + bytes.len());
            proptest::prop_assert_eq!(&back, &record);
            proptest::prop_assert!(back.last_error().unwrap_or("").len() <= MAX_ERROR_BYTES);
        }

        /// Arbitrary bytes never panic the decoder.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            let _ = SpoolRecord::decode([0; 16], &bytes);
        }
    }

    #[test]
    fn truncate_keeps_char_boundaries() {
        assert_eq!(truncate("héllo", 2), "h");
        assert_eq!(truncate("héllo", 3), "hé");
        assert_eq!(truncate("abc", 10), "abc");
    }
}
