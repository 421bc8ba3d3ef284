//! Ready-made [`DisconnectEvent`]s.

use std::time::Duration;

use hook_core::{DisconnectEvent, Protocol};

/// SFTP, IP `192.168.1.5`, user `nicola`, 1234 ms.
pub fn sample_event() -> DisconnectEvent {
    DisconnectEvent::new(
        "192.168.1.5",
        Protocol::Sftp,
        "nicola",
        Duration::from_millis(1234),
    )
}

/// An event with these four values.
pub fn event(ip: &str, protocol: Protocol, username: &str, duration_ms: u64) -> DisconnectEvent {
    DisconnectEvent::new(ip, protocol, username, Duration::from_millis(duration_ms))
}

/// FTP, IPv6 `2001:db8::1`, a username needing escaping in a query and care in a shell
/// (`a b&c=d+e%f/ü "q" $x`), 0 ms.
pub fn tricky_event() -> DisconnectEvent {
    DisconnectEvent::new(
        "2001:db8::1",
        Protocol::Ftp,
        "a b&c=d+e%f/ü \"q\" $x",
        Duration::ZERO,
    )
}

/// An FTP event for a client that never logged in: empty username, 5 ms.
pub fn anonymous_ftp_event() -> DisconnectEvent {
    DisconnectEvent::new("10.0.0.7", Protocol::Ftp, "", Duration::from_millis(5))
}

/// One event per protocol in [`Protocol::ALL`], user `user-<protocol>`, 1 ms apart.
pub fn one_event_per_protocol() -> Vec<DisconnectEvent> {
    Protocol::ALL
        .iter()
        .enumerate()
        .map(|(i, p)| {
            event(
                "127.0.0.1",
                *p,
                &format!("user-{}", p.as_str().to_lowercase()),
                i as u64,
            )
        })
        .collect()
}

/// `n` distinct SFTP events: user `user-<i>`, IP `10.0.<i/256 mod 256>.<i mod 256>`,
/// duration `i` ms, so a receiver can tell which ones arrived.
pub fn numbered_events(n: usize) -> Vec<DisconnectEvent> {
    (0..n)
        .map(|i| {
            let ip = format!("10.0.{}.{}", (i / 256) % 256, i % 256);
            event(&ip, Protocol::Sftp, &format!("user-{i}"), i as u64)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbered_events_are_distinct() {
        let events = numbered_events(300);
        assert_eq!(events[299].username(), "user-299");
        assert_eq!(events[299].ip(), "10.0.1.43");
        assert_eq!(events[299].duration_ms(), 299);
    }

    #[test]
    fn one_per_protocol() {
        let events = one_event_per_protocol();
        assert_eq!(events.len(), Protocol::ALL.len());
        assert_eq!(events[0].username(), "user-sftp");
    }
}
