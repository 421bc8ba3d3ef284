//! The disconnect event and how its client IP is derived.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use crate::fields::SftpgoFields;
use crate::{EventId, Protocol};

/// One ended connection (or SSH channel): what a post-disconnect hook is told about.
///
/// The four values are exactly those SFTPGo passes: the client IP as text, the protocol, the
/// username (empty when the client never logged in) and the connection's duration. The duration is
/// fixed when the event is created, at disconnect, however long the event later waits in a queue
/// (spec Part A, D2).
///
/// Every event also carries an [`EventId`], made when the event is created and kept by every copy
/// and redelivery (replace it with [`with_id`](DisconnectEvent::with_id) when rebuilding an event
/// recorded earlier, as a spool or a relay does). Backends that deduplicate use it.
///
/// ```
/// use std::time::{Duration, Instant};
/// use hook_core::{DisconnectEvent, Protocol};
///
/// // From the peer address of the accepted TCP connection and the instant the channel started:
/// let started = Instant::now();
/// let peer: std::net::SocketAddr = "192.168.1.5:2022".parse().unwrap();
/// let event = DisconnectEvent::from_socket_addr(peer, Protocol::Sftp, "nicola", started);
/// assert_eq!(event.ip(), "192.168.1.5");
///
/// // From a remote-address string, with Go's SplitHostPort rules:
/// let event = DisconnectEvent::from_remote_addr("[fe80::1%eth0]:22", Protocol::Ssh, "", Duration::ZERO);
/// assert_eq!(event.ip(), "fe80::1%eth0");
///
/// // With the builder:
/// let event = DisconnectEvent::builder(Protocol::Ftp)
///     .ip("10.0.0.1")
///     .username("alice")
///     .duration(Duration::from_millis(1234))
///     .build();
/// assert_eq!(event.duration_ms(), 1234);
/// ```
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DisconnectEvent {
    id: EventId,
    ip: String,
    protocol: Protocol,
    username: String,
    duration: Duration,
}

impl DisconnectEvent {
    /// An event with the IP text used verbatim.
    pub fn new(
        ip: impl Into<String>,
        protocol: Protocol,
        username: impl Into<String>,
        duration: Duration,
    ) -> Self {
        DisconnectEvent {
            id: EventId::new(),
            ip: ip.into(),
            protocol,
            username: username.into(),
            duration,
        }
    }

    /// An event for a connection whose peer address is `peer` and which started at `started`.
    ///
    /// The IP text is what SFTPGo derives from Go's `TCPAddr.String()`: dotted IPv4, IPv6 without
    /// brackets, an IPv4-mapped IPv6 peer as plain dotted IPv4, and an IPv6 scope as `%zone` (the
    /// interface name where the system knows it, else the numeric index). The duration is measured
    /// now: create the event at disconnect.
    pub fn from_socket_addr(
        peer: SocketAddr,
        protocol: Protocol,
        username: impl Into<String>,
        started: Instant,
    ) -> Self {
        DisconnectEvent::new(
            ip_from_socket_addr(peer),
            protocol,
            username,
            started.elapsed(),
        )
    }

    /// An event for a connection whose remote address is the string `remote_addr` (for example
    /// after PROXY-protocol unwrapping), with the IP derived exactly as SFTPGo derives it: see
    /// [`ip_from_remote_addr`].
    pub fn from_remote_addr(
        remote_addr: &str,
        protocol: Protocol,
        username: impl Into<String>,
        duration: Duration,
    ) -> Self {
        DisconnectEvent::new(
            ip_from_remote_addr(remote_addr),
            protocol,
            username,
            duration,
        )
    }

    /// A builder; the IP and username default to empty and the duration to zero.
    pub fn builder(protocol: Protocol) -> DisconnectEventBuilder {
        DisconnectEventBuilder {
            event: DisconnectEvent::new(String::new(), protocol, String::new(), Duration::ZERO),
        }
    }

    /// The event's identity, the same for every delivery of this event (see [`EventId`]).
    pub fn id(&self) -> EventId {
        self.id
    }

    /// The same event with the identity `id` (for an event recorded earlier and read back).
    #[must_use]
    pub fn with_id(mut self, id: EventId) -> Self {
        self.id = id;
        self
    }

    /// The client IP as text, exactly as passed to the hook.
    pub fn ip(&self) -> &str {
        &self.ip
    }

    /// The protocol.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// The username; empty when the client never authenticated (FTP).
    pub fn username(&self) -> &str {
        &self.username
    }

    /// The connection's duration, fixed when the event was created.
    pub fn duration(&self) -> Duration {
        self.duration
    }

    /// The duration in whole milliseconds, truncated, as SFTPGo reports it.
    pub fn duration_ms(&self) -> u128 {
        self.duration.as_millis()
    }

    /// The four SFTPGo fields of this event, the one projection both backends use.
    pub fn sftpgo_fields(&self) -> SftpgoFields<'_> {
        SftpgoFields::new(self)
    }
}

impl fmt::Display for DisconnectEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} disconnect of {:?} from {} after {} ms",
            self.protocol,
            self.username,
            self.ip,
            self.duration_ms()
        )
    }
}

/// Builds a [`DisconnectEvent`] field by field.
#[derive(Clone, Debug)]
pub struct DisconnectEventBuilder {
    event: DisconnectEvent,
}

impl DisconnectEventBuilder {
    /// Sets the IP text verbatim.
    pub fn ip(mut self, ip: impl Into<String>) -> Self {
        self.event.ip = ip.into();
        self
    }

    /// Sets the IP from a peer socket address (see [`DisconnectEvent::from_socket_addr`]).
    pub fn peer(mut self, peer: SocketAddr) -> Self {
        self.event.ip = ip_from_socket_addr(peer);
        self
    }

    /// Sets the IP from a remote-address string (see [`ip_from_remote_addr`]).
    pub fn remote_addr(mut self, remote_addr: &str) -> Self {
        self.event.ip = ip_from_remote_addr(remote_addr).to_owned();
        self
    }

    /// Sets the identity (by default a new [`EventId`]).
    pub fn id(mut self, id: EventId) -> Self {
        self.event.id = id;
        self
    }

    /// Sets the username.
    pub fn username(mut self, username: impl Into<String>) -> Self {
        self.event.username = username.into();
        self
    }

    /// Sets the duration.
    pub fn duration(mut self, duration: Duration) -> Self {
        self.event.duration = duration;
        self
    }

    /// Sets the duration to the time elapsed since `started`, measured now.
    pub fn started_at(mut self, started: Instant) -> Self {
        self.event.duration = started.elapsed();
        self
    }

    /// The event.
    pub fn build(self) -> DisconnectEvent {
        self.event
    }
}

/// The client IP SFTPGo derives from a remote-address string.
///
/// This is Go's `net.SplitHostPort`: on success the host part (brackets removed, an IPv6 zone
/// kept); on **any** error the input unchanged. The result is not checked to be an IP.
///
/// ```
/// use hook_core::ip_from_remote_addr;
///
/// assert_eq!(ip_from_remote_addr("192.168.1.5:2022"), "192.168.1.5");
/// assert_eq!(ip_from_remote_addr("[2001:db8::1]:50000"), "2001:db8::1");
/// assert_eq!(ip_from_remote_addr("[::1]"), "[::1]"); // no port: unchanged
/// assert_eq!(ip_from_remote_addr("::1"), "::1"); // too many colons: unchanged
/// ```
pub fn ip_from_remote_addr(remote_addr: &str) -> &str {
    split_host(remote_addr).unwrap_or(remote_addr)
}

/// Go's `net.SplitHostPort`, host part only; `None` where Go returns an error.
fn split_host(hostport: &str) -> Option<&str> {
    let bytes = hostport.as_bytes();
    let last_colon = hostport.rfind(':')?; // "missing port in address"
    let (host, j, k);
    if bytes[0] == b'[' {
        let end = hostport.find(']')?; // "missing ']' in address"
        if end + 1 == bytes.len() {
            return None; // missing port
        }
        if end + 1 != last_colon {
            return None; // too many colons, or missing port
        }
        host = &hostport[1..end];
        j = 1;
        k = end + 1;
    } else {
        host = &hostport[..last_colon];
        if host.contains(':') {
            return None; // too many colons
        }
        j = 0;
        k = 0;
    }
    if hostport[j..].contains('[') || hostport[k..].contains(']') {
        return None; // unexpected '[' or ']'
    }
    Some(host)
}

/// The IP text Go's `TCPAddr.String()` would give for `peer`, minus the port.
fn ip_from_socket_addr(peer: SocketAddr) -> String {
    match peer {
        SocketAddr::V4(v4) => v4.ip().to_string(),
        SocketAddr::V6(v6) => {
            if let Some(v4) = v6.ip().to_ipv4_mapped() {
                // Go prints IPv4-mapped addresses in dotted form (dual-stack listeners).
                return IpAddr::V4(v4).to_string();
            }
            match v6.scope_id() {
                0 => v6.ip().to_string(),
                scope => format!("{}%{}", v6.ip(), zone_name(scope)),
            }
        }
    }
}

/// The interface name for an IPv6 scope id, as Go prints zones; the decimal index if unknown.
fn zone_name(scope_id: u32) -> String {
    #[cfg(target_os = "linux")]
    if let Ok(entries) = std::fs::read_dir("/sys/class/net") {
        for entry in entries.flatten() {
            let index = std::fs::read_to_string(entry.path().join("ifindex"));
            let name = entry.file_name();
            if index.is_ok_and(|i| i.trim().parse() == Ok(scope_id))
                && let Some(name) = name.to_str()
            {
                return name.to_owned();
            }
        }
    }
    scope_id.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};

    /// Spec 1.1 table: remote address -> IP text.
    const TABLE: &[(&str, &str)] = &[
        ("192.168.1.5:2022", "192.168.1.5"),
        ("[2001:db8::1]:50000", "2001:db8::1"),
        ("[fe80::1%eth0]:22", "fe80::1%eth0"),
        ("[::ffff:1.2.3.4]:1", "::ffff:1.2.3.4"),
        ("host.example:22", "host.example"),
        ("1.2.3.4:", "1.2.3.4"),
        (":22", ""),
        ("1.2.3.4", "1.2.3.4"),
        ("[::1]", "[::1]"),
        ("::1", "::1"),
        ("a:b:c", "a:b:c"),
        ("", ""),
    ];

    #[test]
    fn spec_table_through_the_constructor() {
        for (remote, ip) in TABLE {
            let event =
                DisconnectEvent::from_remote_addr(remote, Protocol::Sftp, "u", Duration::ZERO);
            assert_eq!(event.ip(), *ip, "remote address {remote:?}");
        }
    }

    #[test]
    fn go_split_host_port_error_cases_pass_through() {
        for odd in [
            "[::1]x:1",
            "[::1]:1:2",
            "[a]b]:1",
            "a[b:1",
            "a]b:1",
            "[::1",
            "]:1",
        ] {
            assert_eq!(ip_from_remote_addr(odd), odd, "{odd:?}");
        }
        // Brackets around a host without colons are still stripped, as Go does.
        assert_eq!(ip_from_remote_addr("[host]:1"), "host");
    }

    #[test]
    fn socket_addr_forms() {
        let v4 = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(192, 168, 1, 5), 2022));
        let v6: SocketAddr = "[2001:db8::1]:50000".parse().unwrap();
        let mapped: SocketAddr = "[::ffff:1.2.3.4]:1".parse().unwrap();
        let scoped = SocketAddr::V6(SocketAddrV6::new(
            Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1),
            22,
            0,
            4_000_000,
        ));
        let now = Instant::now();
        let ip = |a| {
            DisconnectEvent::from_socket_addr(a, Protocol::Sftp, "", now)
                .ip()
                .to_owned()
        };
        assert_eq!(ip(v4), "192.168.1.5");
        assert_eq!(ip(v6), "2001:db8::1");
        assert_eq!(ip(mapped), "1.2.3.4");
        assert_eq!(ip(scoped), "fe80::1%4000000");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn loopback_scope_uses_the_interface_name() {
        let Ok(index) = std::fs::read_to_string("/sys/class/net/lo/ifindex") else {
            return; // no sysfs in this sandbox
        };
        let scope: u32 = index.trim().parse().unwrap();
        let addr = SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::LOCALHOST, 1, 0, scope));
        let event = DisconnectEvent::builder(Protocol::Ssh).peer(addr).build();
        assert_eq!(event.ip(), "::1%lo");
    }

    #[test]
    fn duration_is_fixed_at_creation() {
        let started = Instant::now() - Duration::from_millis(1500);
        let event = DisconnectEvent::builder(Protocol::Sftp)
            .started_at(started)
            .build();
        let first = event.duration();
        assert!(first >= Duration::from_millis(1500));
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(event.duration(), first);
    }

    #[test]
    fn duration_ms_truncates() {
        let event = DisconnectEvent::new("ip", Protocol::Ftp, "", Duration::from_micros(1_999_999));
        assert_eq!(event.duration_ms(), 1999);
    }

    #[test]
    fn builder_sets_every_field() {
        let id = crate::EventId::new();
        let event = DisconnectEvent::builder(Protocol::Scp)
            .remote_addr("[2001:db8::1]:50000")
            .username("john")
            .duration(Duration::from_millis(7))
            .id(id)
            .build();
        assert_eq!(event.id(), id);
        assert_eq!(
            event,
            DisconnectEvent::new(
                "2001:db8::1",
                Protocol::Scp,
                "john",
                Duration::from_millis(7)
            )
            .with_id(id)
        );
        assert_ne!(
            DisconnectEvent::new("", Protocol::Ftp, "", Duration::ZERO).id(),
            DisconnectEvent::new("", Protocol::Ftp, "", Duration::ZERO).id(),
            "each new event gets its own id"
        );
        let copy = event.clone();
        assert_eq!(copy.id(), event.id(), "a copy keeps the id");
        assert_eq!(
            event.to_string(),
            "SCP disconnect of \"john\" from 2001:db8::1 after 7 ms"
        );
    }
}
