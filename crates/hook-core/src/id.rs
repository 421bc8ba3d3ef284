//! [`EventId`]: the identity an event keeps across queues, redeliveries, restarts and hosts.

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::str::FromStr;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The identity of one disconnect event: a [UUID version 7] (RFC 9562), made when the event is
/// created and kept by every copy, every redelivery, a restart that replays it from a spool, and a
/// relay that carries it to another host.
///
/// Backends use it to deduplicate at-least-once deliveries (NATS `Nats-Msg-Id`, a signed webhook's
/// `webhook-id`). Ids are unique across processes and hosts: each holds the creation time in
/// milliseconds (48 bits), a per-process counter (12 bits) and 62 bits derived from a per-process
/// random key (the operating system's randomness, through std's `RandomState`) and the counter.
/// They sort by creation time, to the millisecond.
///
/// Text form: the usual lower-case hyphenated UUID (`0190b6a2-...`), which [`FromStr`] reads back
/// (upper case too).
///
/// ```
/// use hook_core::EventId;
///
/// let id = EventId::new();
/// let text = id.to_string();
/// assert_eq!(text.len(), 36);
/// assert_eq!(text.parse::<EventId>().unwrap(), id);
/// assert_ne!(EventId::new(), id);
/// assert!(id.unix_ms() > 1_600_000_000_000);
/// ```
///
/// [UUID version 7]: https://www.rfc-editor.org/rfc/rfc9562#name-uuid-version-7
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventId([u8; 16]);

/// The per-process random key and the counter that makes ids of one process distinct.
struct Generator {
    key: RandomState,
    counter: AtomicU64,
}

fn generator() -> &'static Generator {
    static GENERATOR: OnceLock<Generator> = OnceLock::new();
    GENERATOR.get_or_init(|| Generator {
        key: RandomState::new(),
        counter: AtomicU64::new(0),
    })
}

impl EventId {
    /// A new id, for an event created now.
    pub fn new() -> EventId {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        EventId::at(now)
    }

    /// A new id whose time part is `since_epoch` (time since the Unix epoch); for tests and for
    /// events recorded earlier.
    pub fn at(since_epoch: Duration) -> EventId {
        let ms = u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX) & 0xFFFF_FFFF_FFFF;
        let generator = generator();
        let seq = generator.counter.fetch_add(1, Ordering::Relaxed);
        let mut hasher = generator.key.build_hasher();
        hasher.write_u64(seq);
        hasher.write_u64(ms);
        let random = hasher.finish();
        let mut bytes = [0u8; 16];
        bytes[..6].copy_from_slice(&ms.to_be_bytes()[2..]);
        // Version 7, then the low 12 bits of the counter.
        bytes[6] = 0x70 | ((seq >> 8) & 0x0F) as u8;
        bytes[7] = seq as u8;
        // Variant 10, then 62 bits: the random word (its top two bits replaced).
        bytes[8..].copy_from_slice(&random.to_be_bytes());
        bytes[8] = (bytes[8] & 0x3F) | 0x80;
        EventId(bytes)
    }

    /// The id with exactly these 16 bytes (for example read back from a store).
    pub const fn from_bytes(bytes: [u8; 16]) -> EventId {
        EventId(bytes)
    }

    /// The 16 bytes, in UUID (big-endian) order.
    pub const fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// The creation time in milliseconds since the Unix epoch (the UUIDv7 time field).
    pub fn unix_ms(&self) -> u64 {
        let mut ms = [0u8; 8];
        ms[2..].copy_from_slice(&self.0[..6]);
        u64::from_be_bytes(ms)
    }

    /// The creation time (to the millisecond).
    pub fn created_at(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.unix_ms())
    }
}

impl Default for EventId {
    fn default() -> Self {
        EventId::new()
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0u8; 36];
        let mut at = 0;
        for (i, byte) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                out[at] = b'-';
                at += 1;
            }
            out[at] = HEX[usize::from(byte >> 4)];
            out[at + 1] = HEX[usize::from(byte & 0x0F)];
            at += 2;
        }
        // Only ASCII was written.
        f.write_str(std::str::from_utf8(&out).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EventId({self})")
    }
}

/// Text that is not a hyphenated UUID (`8-4-4-4-12` hex digits).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseEventIdError {
    _private: (),
}

impl fmt::Display for ParseEventIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not an event id: expected a hyphenated UUID (8-4-4-4-12 hex digits)")
    }
}

impl std::error::Error for ParseEventIdError {}

impl FromStr for EventId {
    type Err = ParseEventIdError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let error = ParseEventIdError { _private: () };
        let text = text.as_bytes();
        if text.len() != 36 {
            return Err(error);
        }
        let mut bytes = [0u8; 16];
        let mut at = 0;
        for (i, byte) in bytes.iter_mut().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                if text[at] != b'-' {
                    return Err(error);
                }
                at += 1;
            }
            let hi = hex_value(text[at]).ok_or_else(|| error.clone())?;
            let lo = hex_value(text[at + 1]).ok_or_else(|| error.clone())?;
            *byte = (hi << 4) | lo;
            at += 2;
        }
        Ok(EventId(bytes))
    }
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn version_variant_and_time_fields() {
        let id = EventId::at(Duration::from_millis(0x0123_4567_89AB));
        let bytes = id.as_bytes();
        assert_eq!(bytes[6] >> 4, 7, "version 7");
        assert_eq!(bytes[8] >> 6, 0b10, "RFC 9562 variant");
        assert_eq!(id.unix_ms(), 0x0123_4567_89AB);
        assert!(id.to_string().starts_with("01234567-89ab-7"));
    }

    #[test]
    fn text_round_trips_and_rejects_malformed() {
        let id = EventId::new();
        assert_eq!(id.to_string().parse::<EventId>(), Ok(id));
        assert_eq!(id.to_string().to_uppercase().parse::<EventId>(), Ok(id));
        for bad in [
            "",
            "0190b6a2-0000-7000-8000-00000000000",
            "0190b6a2-0000-7000-8000-0000000000000",
            "0190b6a200-00-7000-8000-000000000000",
            "0190b6a2-0000-7000-8000-00000000000g",
            "0190b6a2_0000-7000-8000-000000000000",
            "é190b6a2-0000-7000-8000-00000000000",
        ] {
            assert!(bad.parse::<EventId>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ids_are_distinct_within_one_millisecond_and_across_threads() {
        let at = Duration::from_secs(1_700_000_000);
        let mut seen: HashSet<EventId> = (0..10_000).map(|_| EventId::at(at)).collect();
        let handles: Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(move || (0..5_000).map(|_| EventId::at(at)).collect::<Vec<_>>())
            })
            .collect();
        for handle in handles {
            for id in handle.join().unwrap() {
                assert!(seen.insert(id), "duplicate id {id}");
            }
        }
        assert_eq!(seen.len(), 30_000);
    }

    #[test]
    fn ids_sort_by_creation_millisecond() {
        let early = EventId::at(Duration::from_millis(1_000));
        let late = EventId::at(Duration::from_millis(1_001));
        assert!(early < late);
    }
}
