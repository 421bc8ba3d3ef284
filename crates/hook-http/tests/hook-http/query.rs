//! Spec 4.1: the request target, byte for byte, checked on a real server; property tests of the
//! Go query encoder.

use std::time::Duration;

use hook_core::{DisconnectEvent, Protocol};
use hook_http::query::{GoQuery, query_escape, query_unescape};
use hook_test_support::TestServer;
use proptest::prelude::*;

use crate::{WAIT, quick};

/// The six worked examples of spec 4.1, on a loopback host.
/// (name, user-info, path/query/fragment, remoteAddr, protocol, username, ms, expected target)
type Example = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    Protocol,
    &'static str,
    u64,
    &'static str,
);

const EXAMPLES: [Example; 6] = [
    (
        "A",
        "",
        "/hook",
        "192.168.1.5:2022",
        Protocol::Sftp,
        "nicola",
        1234,
        "/hook?connection_duration=1234&ip=192.168.1.5&protocol=SFTP&username=nicola",
    ),
    (
        "B",
        "",
        "/disc?token=s3cr3t&b=2&a=1",
        "[2001:db8::1]:50000",
        Protocol::Scp,
        "john doe+x&y=z",
        0,
        "/disc?a=1&b=2&connection_duration=0&ip=2001%3Adb8%3A%3A1&protocol=SCP&token=s3cr3t&username=john+doe%2Bx%26y%3Dz",
    ),
    (
        "C",
        "",
        "/p",
        "[fe80::1%eth0]:22",
        Protocol::Ftp,
        "jürgen/ü~._-",
        98765,
        "/p?connection_duration=98765&ip=fe80%3A%3A1%25eth0&protocol=FTP&username=j%C3%BCrgen%2F%C3%BC~._-",
    ),
    (
        "D",
        "",
        "/p?ip=9.9.9.9&flag&x=1;y=2&bad=%zz&sp=a+b&e=%41",
        "10.0.0.1:1",
        Protocol::Ssh,
        "",
        5,
        "/p?connection_duration=5&e=A&flag=&ip=9.9.9.9&ip=10.0.0.1&protocol=SSH&sp=a+b&username=",
    ),
    (
        "E",
        "",
        "/p?Z=1&a=2",
        "10.0.0.1:1",
        Protocol::Ssh,
        "😀 ",
        5,
        "/p?Z=1&a=2&connection_duration=5&ip=10.0.0.1&protocol=SSH&username=%F0%9F%98%80+",
    ),
    (
        "F",
        "u:p@",
        "/p#frag",
        "10.0.0.1:1",
        Protocol::Ssh,
        "",
        5,
        "/p?connection_duration=5&ip=10.0.0.1&protocol=SSH&username=",
    ),
];

#[tokio::test]
async fn spec_examples_a_to_f_reach_the_server_byte_exact() {
    let server = TestServer::start().await;
    for (i, (name, userinfo, rest, remote, protocol, user, ms, want)) in
        EXAMPLES.into_iter().enumerate()
    {
        let url = format!("http://{userinfo}127.0.0.1:{}{rest}", server.port());
        let hook = quick(&url).build().unwrap();
        let event =
            DisconnectEvent::from_remote_addr(remote, protocol, user, Duration::from_millis(ms));
        assert_eq!(hook.request_target(&event), want, "example {name}");
        let delivery = hook.send(&event).await.unwrap();
        assert_eq!(delivery.attempts(), 1);
        let requests = server.wait_for_requests(i + 1, WAIT).await;
        let got = &requests[i];
        assert_eq!(got.method, "GET", "example {name}");
        assert_eq!(got.target, want, "example {name}");
        assert!(got.body.is_empty());
        if name == "F" {
            assert_eq!(got.header("authorization"), Some("Basic dTpw"));
        } else {
            assert_eq!(got.header("authorization"), None, "example {name}");
        }
    }
}

/// Go 1.19's `url.ParseQuery(raw)` then `Encode()`, recorded from Go.
const GO_PARSE_ENCODE: [(&str, &str); 17] = [
    ("a=1&a=2&b", "a=1&a=2&b="),
    ("%zz=1&ok=1", "ok=1"),
    ("x=%2", ""),
    ("a=b=c", "a=b%3Dc"),
    ("=x", "=x"),
    ("&&&", ""),
    ("k=%FF", "k=%FF"),
    (";", ""),
    ("a%3Bb=1", "a%3Bb=1"),
    ("a+b=c+d", "a+b=c+d"),
    ("%20=%2B", "+=%2B"),
    ("B=1&a=1&_=1&~=1&-=1&.=1", "-=1&.=1&B=1&_=1&a=1&~=1"),
    ("q=ü&r=%C3%BC", "q=%C3%BC&r=%C3%BC"),
    ("x=1;y=2&z=3", "z=3"),
    ("k=%e2%82%AC", "k=%E2%82%AC"),
    ("%=1&k=%", ""),
    (
        "ip=1&username=u&connection_duration=d&protocol=p",
        "connection_duration=d&ip=1&protocol=p&username=u",
    ),
];

#[test]
fn parse_then_encode_matches_go() {
    for (raw, want) in GO_PARSE_ENCODE {
        assert_eq!(GoQuery::parse(raw).encode(), want, "{raw:?}");
    }
}

/// Go 1.19's request targets for paths that need Go's escaping rules, on the wire.
#[tokio::test]
async fn paths_are_sent_as_go_escapes_them() {
    let server = TestServer::start().await;
    let cases = [
        ("/a b", "/a%20b"),
        ("/a%2Fb", "/a%2Fb"),
        ("/a%2Fb c!", "/a/b%20c%21"),
        ("/%41!'()*[]", "/%41!'()*[]"),
        ("/ü", "/%C3%BC"),
        ("", "/"),
        ("/x?", "/x"),
    ];
    let event = DisconnectEvent::new("1.2.3.4", Protocol::Sftp, "u", Duration::ZERO);
    let suffix = "?connection_duration=0&ip=1.2.3.4&protocol=SFTP&username=u";
    for (i, (path, want_path)) in cases.into_iter().enumerate() {
        let hook = quick(&format!("http://127.0.0.1:{}{path}", server.port()))
            .build()
            .unwrap();
        hook.send(&event).await.unwrap();
        let requests = server.wait_for_requests(i + 1, WAIT).await;
        assert_eq!(
            requests[i].target,
            format!("{want_path}{suffix}"),
            "{path:?}"
        );
    }
}

fn bytes_strategy() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..12)
}

fn is_upper_hex(b: u8) -> bool {
    b.is_ascii_digit() || (b'A'..=b'F').contains(&b)
}

proptest! {
    #[test]
    fn escape_round_trips_and_uses_only_allowed_bytes(s in bytes_strategy()) {
        let escaped = query_escape(&s);
        let bytes = escaped.as_bytes();
        for (i, &b) in bytes.iter().enumerate() {
            let allowed = b.is_ascii_alphanumeric() || b"-_.~+%".contains(&b);
            prop_assert!(allowed, "byte {b:#x} in {escaped:?}");
            if b == b'%' {
                prop_assert!(bytes.len() > i + 2 && is_upper_hex(bytes[i + 1]) && is_upper_hex(bytes[i + 2]));
            }
        }
        prop_assert_eq!(query_unescape(&escaped).unwrap(), s);
    }

    #[test]
    fn decode_of_encode_is_identity_with_sorted_keys(
        pairs in prop::collection::vec((bytes_strategy(), bytes_strategy()), 0..8)
    ) {
        let mut q = GoQuery::new();
        for (k, v) in &pairs {
            q.add(k, v);
        }
        let encoded = q.encode();
        prop_assert_eq!(GoQuery::parse(&encoded), q.clone());
        prop_assert!(!encoded.contains(';'));
        // Keys in byte order, each key's values in insertion order.
        let decoded: Vec<(Vec<u8>, Vec<u8>)> = if encoded.is_empty() {
            Vec::new()
        } else {
            encoded
                .split('&')
                .map(|pair| {
                    let (k, v) = pair.split_once('=').unwrap();
                    (query_unescape(k).unwrap(), query_unescape(v).unwrap())
                })
                .collect()
        };
        prop_assert_eq!(decoded.len(), pairs.len());
        prop_assert!(decoded.windows(2).all(|w| w[0].0 <= w[1].0));
        let mut expected = pairs.clone();
        expected.sort_by(|a, b| a.0.cmp(&b.0)); // stable: insertion order within a key
        prop_assert_eq!(decoded, expected);
    }

    #[test]
    fn parse_never_panics_and_encode_is_a_fixed_point(raw in "[a-zA-Z0-9%;&=+ ~._-]{0,24}") {
        let once = GoQuery::parse(&raw).encode();
        prop_assert_eq!(GoQuery::parse(&once).encode(), once);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// The precompiled per-hook template agrees with parse + add + encode.
    #[test]
    fn request_target_is_parse_add_encode(
        existing in "[a-z0-9%;&=+_]{0,16}",
        ip in "[0-9a-f:.%]{0,12}",
        user in any::<String>(),
        ms in any::<u32>(),
    ) {
        let url = format!("http://127.0.0.1:9/p?{existing}");
        let hook = quick(&url).build().unwrap();
        let event = DisconnectEvent::new(ip.clone(), Protocol::Ftp, user.clone(), Duration::from_millis(u64::from(ms)));
        let mut q = GoQuery::parse(&existing);
        q.add("ip", &ip);
        q.add("protocol", "FTP");
        q.add("username", &user);
        q.add("connection_duration", ms.to_string());
        prop_assert_eq!(hook.request_target(&event), format!("/p?{}", q.encode()));
    }
}
