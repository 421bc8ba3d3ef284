//! `hookctl fire --hook nats://...` and `hookctl relay` against Debian's real `nats-server`.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer};
use futures_util::StreamExt;
use hook_test_support::{NatsServer, NatsTls, Pki, Response, TestServer, write_script};
use hooks::{DisconnectEvent, Hook, HookConfig, HookTarget, Protocol};

use crate::support::{hookctl, stderr, stdout, summary_value};

/// One message as the stream stored it.
pub(crate) struct Stored {
    pub(crate) subject: String,
    pub(crate) headers: Vec<(String, Vec<String>)>,
    pub(crate) body: String,
}

pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Every message of `stream`, read by an ephemeral consumer that does not ack.
pub(crate) async fn read_stream(url: &str, stream: &str) -> Vec<Stored> {
    let servers: Vec<&str> = url.split(',').collect();
    let client = async_nats::connect(servers).await.unwrap();
    let js = jetstream::new(client);
    // Right after a failover the JetStream API may not answer for a few seconds.
    let deadline = Instant::now() + Duration::from_secs(60);
    let (total, consumer) = loop {
        let attempt = async {
            let mut stream = js.get_stream(stream).await.map_err(|e| e.to_string())?;
            let total = stream
                .info()
                .await
                .map_err(|e| e.to_string())?
                .state
                .messages as usize;
            let consumer = stream
                .create_consumer(consumer::pull::Config {
                    ack_policy: consumer::AckPolicy::None,
                    ..Default::default()
                })
                .await
                .map_err(|e| e.to_string())?;
            Ok::<_, String>((total, consumer))
        };
        match attempt.await {
            Ok(found) => break found,
            Err(e) => {
                assert!(Instant::now() < deadline, "cannot read the stream: {e}");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    };
    let mut out = Vec::with_capacity(total);
    while out.len() < total {
        let mut batch = consumer
            .fetch()
            .max_messages(1000)
            .expires(Duration::from_secs(2))
            .messages()
            .await
            .unwrap();
        while let Some(m) = batch.next().await {
            let m = m.unwrap();
            let headers = m
                .headers
                .as_ref()
                .map(|h| {
                    let mut v: Vec<(String, Vec<String>)> = h
                        .iter()
                        .map(|(k, vals)| {
                            (
                                k.to_string(),
                                vals.iter().map(|x| x.as_str().to_owned()).collect(),
                            )
                        })
                        .collect();
                    v.sort();
                    v
                })
                .unwrap_or_default();
            out.push(Stored {
                subject: m.subject.to_string(),
                headers,
                body: String::from_utf8(m.payload.to_vec()).unwrap(),
            });
        }
    }
    out
}

/// Publishes `events` through the real backend, 64 at a time.
pub(crate) async fn publish(url: &str, config: &HookConfig, events: Vec<DisconnectEvent>) {
    let HookTarget::Nats(servers) = HookTarget::parse(url).unwrap() else {
        unreachable!()
    };
    let hook = hook_nats::NatsHook::from_config(&servers, &config.nats, &config.hooks).unwrap();
    let results: Vec<_> = futures_util::stream::iter(events)
        .map(|e| {
            let hook = &hook;
            async move { hook.on_disconnect(&e).await }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    for r in results {
        r.unwrap();
    }
}

/// A hook script appending `ip|protocol|username|duration|count of SFTPGO_CONNECTION_ vars` to
/// `out`, then running `tail`.
pub(crate) fn line_script(dir: &Path, out: &Path, tail: &str) -> String {
    let body = format!(
        "#!/bin/sh\nn=0\nfor v in \"${{SFTPGO_CONNECTION_IP+x}}\" \"${{SFTPGO_CONNECTION_PROTOCOL+x}}\" \
         \"${{SFTPGO_CONNECTION_USERNAME+x}}\" \"${{SFTPGO_CONNECTION_DURATION+x}}\"; do [ -n \"$v\" ] && n=$((n+1)); done\n\
         printf '%s|%s|%s|%s|%s\\n' \"$SFTPGO_CONNECTION_IP\" \"$SFTPGO_CONNECTION_PROTOCOL\" \
         \"$SFTPGO_CONNECTION_USERNAME\" \"$SFTPGO_CONNECTION_DURATION\" \"$n\" >> '{}'\n{tail}\n",
        out.display()
    );
    write_script(dir, "hook.sh", &body)
        .to_str()
        .unwrap()
        .to_owned()
}

pub(crate) fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// `hookctl relay` as a child process.
pub(crate) fn spawn_relay(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hookctl"));
    cmd.env_clear()
        .env("PATH", "/usr/bin:/bin")
        .current_dir(dir)
        .arg("relay")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().unwrap()
}

/// Distinct events: every value differs, every protocol appears.
pub(crate) fn distinct_events(n: usize) -> Vec<DisconnectEvent> {
    (0..n)
        .map(|i| {
            DisconnectEvent::new(
                format!("10.{}.{}.{}", i / 65536, (i / 256) % 256, i % 256),
                Protocol::ALL[i % 4],
                format!("user{i}"),
                Duration::from_millis(i as u64 * 7),
            )
        })
        .collect()
}

#[test]
fn fire_storm_stores_10000_distinct_messages_with_the_documented_headers_and_body() {
    let server = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let url = server.url();
    let out = hookctl(
        dir.path(),
        &[
            "fire",
            "--hook",
            &url,
            "--events",
            "10000",
            "--ip",
            "203.0.113.7",
            "--protocol",
            "SCP",
            "--username",
            "alice",
            "--duration-ms",
            "1234",
        ],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(summary_value(&out, "events"), 10000.0);
    assert_eq!(summary_value(&out, "failed"), 0.0);

    let stored = runtime().block_on(read_stream(&url, "SFTPGO_HOOKS"));
    assert_eq!(stored.len(), 10000);
    let mut ids = HashSet::new();
    for m in &stored {
        assert_eq!(m.subject, "sftpgo.hooks.disconnect.scp");
        let id = &m.headers[1].1[0];
        assert_eq!(
            m.headers,
            vec![
                (
                    "Content-Type".to_owned(),
                    vec!["application/json".to_owned()]
                ),
                ("Nats-Msg-Id".to_owned(), vec![id.clone()]),
            ]
        );
        assert!(ids.insert(id.clone()), "duplicate id {id}");
        let id: hooks::EventId = id.parse().unwrap();
        // The envelope, byte for byte: the timestamp is the id's millisecond.
        let ms = id.unix_ms();
        let secs = ms / 1000;
        let parsed: serde_json::Value = serde_json::from_str(&m.body).unwrap();
        let ts = parsed["timestamp"].as_str().unwrap();
        assert_eq!(ts.len(), 24, "{ts}");
        assert!(
            ts.ends_with(&format!("{:02}.{:03}Z", secs % 60, ms % 1000)),
            "{ts}"
        );
        assert_eq!(
            m.body,
            format!(
                "{{\"id\":\"{id}\",\"type\":\"connection.disconnected\",\"timestamp\":\"{ts}\",\
                 \"data\":{{\"ip\":\"203.0.113.7\",\"protocol\":\"SCP\",\"username\":\"alice\",\
                 \"connection_duration\":1234}}}}"
            )
        );
    }
    assert_eq!(ids.len(), 10000);
}

#[test]
fn relay_runs_the_program_once_per_event_with_exactly_its_four_values() {
    let server = NatsServer::start();
    let url = server.url();
    let events = distinct_events(10_000);
    let expected: Vec<String> = events
        .iter()
        .map(|e| {
            format!(
                "{}|{}|{}|{}|4",
                e.ip(),
                e.protocol(),
                e.username(),
                e.duration_ms()
            )
        })
        .collect();
    runtime().block_on(publish(&url, &HookConfig::default(), events));

    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("runs.txt");
    let script = line_script(dir.path(), &out_file, "");
    let out = hookctl(
        dir.path(),
        &[
            "relay",
            "--from",
            &url,
            "--max-events",
            "10000",
            "--concurrency",
            "16",
        ],
        &[("SFTPGO_COMMON__POST_DISCONNECT_HOOK", &script)],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(summary_value(&out, "events"), 10000.0, "{}", stdout(&out));
    assert_eq!(summary_value(&out, "failed"), 0.0);
    let mut got = lines(&out_file);
    got.sort();
    let mut expected = expected;
    expected.sort();
    assert_eq!(got.len(), 10_000);
    assert!(
        got == expected,
        "the program saw other values than the events'"
    );

    // Everything was acked: a second relay finds nothing.
    let again = hookctl(
        dir.path(),
        &["relay", "--from", &url, "--idle-exit", "1"],
        &[("SFTPGO_COMMON__POST_DISCONNECT_HOOK", &script)],
    );
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(summary_value(&again, "events"), 0.0);
    assert_eq!(lines(&out_file).len(), 10_000);
}

#[test]
fn relay_redelivers_a_503_per_the_schedule_then_delivers_and_terminates_a_404_once() {
    let server = NatsServer::start();
    let rt = runtime();
    let url = server.url();
    let endpoint = rt.block_on(async {
        TestServer::builder()
            .respond_seq([
                Response::status(503),
                Response::status(503),
                Response::status(503),
                Response::status(200),
            ])
            .start()
            .await
    });
    let event = DisconnectEvent::new(
        "198.51.100.9",
        Protocol::Sftp,
        "carol",
        Duration::from_millis(55),
    );
    rt.block_on(publish(&url, &HookConfig::default(), vec![event]));
    let dir = tempfile::tempdir().unwrap();
    let hook = endpoint.url("/hook");
    let env = [
        ("SFTPGO_COMMON__POST_DISCONNECT_HOOK", hook.as_str()),
        ("SFTPGO_HTTP__RETRY_MAX", "0"),
        ("SFTPGO_HOOKS__SPOOL__REDELIVER_MIN", "0.3"),
        ("SFTPGO_HOOKS__SPOOL__REDELIVER_MAX", "0.6"),
    ];
    let out = hookctl(
        dir.path(),
        &["relay", "--from", &url, "--max-events", "1"],
        &env,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(summary_value(&out, "events"), 1.0);
    assert_eq!(summary_value(&out, "failed"), 0.0);
    assert!(
        stderr(&out).contains("acked=1 terminated=0 redelivery_requested=3"),
        "{}",
        stderr(&out)
    );
    let requests = rt.block_on(endpoint.wait_for_requests(4, Duration::from_secs(5)));
    assert_eq!(requests.len(), 4);
    for r in &requests {
        assert_eq!(r.query_param("username").as_deref(), Some("carol"));
        assert_eq!(r.query_param("ip").as_deref(), Some("198.51.100.9"));
        assert_eq!(r.query_param("connection_duration").as_deref(), Some("55"));
    }
    // 0.3 s, 0.6 s, 0.6 s (±10 %) between the deliveries.
    let gaps: Vec<Duration> = requests
        .windows(2)
        .map(|w| w[1].received_at.duration_since(w[0].received_at))
        .collect();
    for (gap, want) in gaps.iter().zip([300u64, 600, 600]) {
        let want = Duration::from_millis(want);
        assert!(*gap >= want.mul_f64(0.85), "gaps {gaps:?}");
        assert!(*gap < want + Duration::from_secs(2), "gaps {gaps:?}");
    }

    // A 404 is permanent: terminated once, counted, never redelivered.
    let gone = rt.block_on(async {
        TestServer::builder()
            .respond_seq([Response::status(404)])
            .start()
            .await
    });
    let event = DisconnectEvent::new("198.51.100.10", Protocol::Ftp, "dave", Duration::ZERO);
    rt.block_on(publish(&url, &HookConfig::default(), vec![event]));
    let hook = gone.url("/hook");
    let env = [
        ("SFTPGO_COMMON__POST_DISCONNECT_HOOK", hook.as_str()),
        ("SFTPGO_HTTP__RETRY_MAX", "0"),
        ("SFTPGO_HOOKS__SPOOL__REDELIVER_MIN", "0.2"),
        ("SFTPGO_HOOKS__SPOOL__REDELIVER_MAX", "0.2"),
    ];
    let out = hookctl(
        dir.path(),
        &["relay", "--from", &url, "--idle-exit", "2"],
        &env,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(summary_value(&out, "events"), 1.0, "{}", stdout(&out));
    assert_eq!(summary_value(&out, "failed"), 1.0);
    let err = stderr(&out);
    assert!(
        err.contains("acked=0 terminated=1 redelivery_requested=0"),
        "{err}"
    );
    assert!(
        err.contains("WARN") && err.contains("dead letter") && err.contains("dave"),
        "{err}"
    );
    assert_eq!(gone.requests().len(), 1);
}

#[test]
fn relay_refuses_a_nats_target_as_a_loop_and_bad_from_urls() {
    let dir = tempfile::tempdir().unwrap();
    let out = hookctl(
        dir.path(),
        &["relay", "--from", "nats://127.0.0.1:4222"],
        &[(
            "SFTPGO_COMMON__POST_DISCONNECT_HOOK",
            "nats://127.0.0.1:4222",
        )],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("a loop"), "{}", stderr(&out));
    let out = hookctl(
        dir.path(),
        &["relay", "--from", "http://127.0.0.1:4222"],
        &[("SFTPGO_COMMON__POST_DISCONNECT_HOOK", "/bin/true")],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--from: \"http://127.0.0.1:4222\""),
        "{}",
        stderr(&out)
    );
    let out = hookctl(
        dir.path(),
        &["relay", "--from", "nats://u:s3cret@127.0.0.1:1"],
        &[("SFTPGO_COMMON__POST_DISCONNECT_HOOK", "/bin/true")],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(!stderr(&out).contains("s3cret"), "{}", stderr(&out));
    assert!(stderr(&out).contains("cannot connect"), "{}", stderr(&out));
}

#[test]
fn sigterm_finishes_and_acks_the_running_hooks_then_exits_0() {
    let server = NatsServer::start();
    let url = server.url();
    runtime().block_on(publish(&url, &HookConfig::default(), distinct_events(20)));
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("runs.txt");
    let started = dir.path().join("started");
    let script = line_script(
        dir.path(),
        &out_file,
        &format!("touch '{}'; sleep 1", started.display()),
    );
    let env = [
        ("SFTPGO_COMMON__POST_DISCONNECT_HOOK", script.as_str()),
        ("SFTPGO_NATS__ACK_WAIT", "2"),
    ];
    let relay = spawn_relay(dir.path(), &["--from", &url, "--concurrency", "4"], &env);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !started.exists() {
        assert!(Instant::now() < deadline, "no hook started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let pid = rustix::process::Pid::from_raw(relay.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let out = relay.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let first = lines(&out_file).len();
    assert!((1..=4).contains(&first), "{first} runs before the stop");
    let summary = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        summary.starts_with(&format!("events={first} failed=0 ")),
        "{summary}"
    );

    // What ran was acked: a second relay runs exactly the rest, nothing twice.
    let script2 = line_script(dir.path(), &out_file, "");
    let env = [
        ("SFTPGO_COMMON__POST_DISCONNECT_HOOK", script2.as_str()),
        ("SFTPGO_NATS__ACK_WAIT", "1"),
    ];
    let out = hookctl(
        dir.path(),
        &["relay", "--from", &url, "--idle-exit", "3"],
        &env,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let all = lines(&out_file);
    let distinct: HashSet<&String> = all.iter().collect();
    assert_eq!(all.len(), 20, "{all:?}");
    assert_eq!(distinct.len(), 20);
}

/// The relay's consumer as the server sees it: (messages not yet delivered, delivered but not
/// acked); `None` before a relay created it.
async fn consumer_backlog(url: &str) -> Option<(u64, usize)> {
    let js = jetstream::new(async_nats::connect(url).await.unwrap());
    let stream = js.get_stream("SFTPGO_HOOKS").await.unwrap();
    let mut c: consumer::PullConsumer = stream.get_consumer("sftpgo-hooks-relay").await.ok()?;
    let info = c.info().await.unwrap();
    Some((info.num_pending, info.num_ack_pending))
}

/// Stores `body` once more under `subject`, as a message of its own (its own `Nats-Msg-Id`):
/// what a publisher's retry after the duplicate window, or a spool replay, leaves in a stream.
async fn store_again(url: &str, subject: &str, body: &str, copy: usize) {
    let js = jetstream::new(async_nats::connect(url).await.unwrap());
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Content-Type", "application/json");
    headers.insert("Nats-Msg-Id", format!("copy-{copy}").as_str());
    js.publish_with_headers(subject.to_owned(), headers, body.to_owned().into())
        .await
        .unwrap()
        .await
        .unwrap();
}

#[test]
fn a_second_message_of_an_event_held_or_just_settled_is_acked_without_running_it_again() {
    let server = NatsServer::start();
    let url = server.url();
    let rt = runtime();
    rt.block_on(publish(&url, &HookConfig::default(), distinct_events(10)));
    let stored = rt.block_on(read_stream(&url, "SFTPGO_HOOKS"));
    // Events 0 (twice more) and 1 (once more) are stored again before the relay starts: their
    // copies arrive in the relay's first pull, while the first copies wait or run.
    for (copy, i) in [0, 0, 1].into_iter().enumerate() {
        rt.block_on(store_again(&url, &stored[i].subject, &stored[i].body, copy));
    }
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("runs.txt");
    let script = line_script(dir.path(), &out_file, "sleep 0.2");
    let env = [("SFTPGO_COMMON__POST_DISCONNECT_HOOK", script.as_str())];
    let relay = spawn_relay(
        dir.path(),
        &["--from", &url, "--concurrency", "2", "--idle-exit", "4"],
        &env,
    );
    // Everything settled: nothing left to deliver or waiting for an ack.
    let deadline = Instant::now() + Duration::from_secs(30);
    while rt.block_on(consumer_backlog(&url)) != Some((0, 0)) || lines(&out_file).len() < 10 {
        assert!(
            Instant::now() < deadline,
            "{:?}",
            rt.block_on(consumer_backlog(&url))
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Event 2 once more, after the relay acked it.
    rt.block_on(store_again(&url, &stored[2].subject, &stored[2].body, 3));
    let out = relay.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("acked=10 terminated=0 redelivery_requested=0 duplicates=4"),
        "{err}"
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("events=10 failed=0 "),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // Each event ran once, with its own values; all 14 messages were acked.
    let mut ran = lines(&out_file);
    ran.sort();
    let mut want: Vec<String> = distinct_events(10)
        .iter()
        .map(|e| {
            format!(
                "{}|{}|{}|{}|4",
                e.ip(),
                e.protocol(),
                e.username(),
                e.duration().as_millis()
            )
        })
        .collect();
    want.sort();
    assert_eq!(ran, want);
    assert_eq!(rt.block_on(consumer_backlog(&url)), Some((0, 0)));
}

#[test]
fn an_http_relay_runs_each_event_once_whichever_shard_its_copies_reach() {
    // An HTTP relay runs one shard (connection, dispatcher) per core: copies of one event
    // pulled by different shards are handed to the shard that holds it.
    let server = NatsServer::start();
    let url = server.url();
    let rt = runtime();
    let endpoint = rt.block_on(async {
        TestServer::builder()
            .default_response(Response::ok().delay(Duration::from_millis(100)))
            .start()
            .await
    });
    let n = 40;
    rt.block_on(publish(&url, &HookConfig::default(), distinct_events(n)));
    let stored = rt.block_on(read_stream(&url, "SFTPGO_HOOKS"));
    // Three more copies of each of the first ten messages, interleaved after the originals.
    let mut copy = 0;
    for _ in 0..3 {
        for m in &stored[..10] {
            rt.block_on(store_again(&url, &m.subject, &m.body, copy));
            copy += 1;
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let hook = endpoint.url("/hook");
    let env = [("SFTPGO_COMMON__POST_DISCONNECT_HOOK", hook.as_str())];
    let out = hookctl(
        dir.path(),
        &[
            "relay",
            "--from",
            &url,
            "--concurrency",
            "4",
            "--idle-exit",
            "3",
        ],
        &env,
    );
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains(&format!(
            "acked={n} terminated=0 redelivery_requested=0 duplicates={copy}"
        )),
        "{err}"
    );
    let mut seen: HashMap<String, usize> = HashMap::new();
    for r in endpoint.requests() {
        *seen.entry(r.query_param("username").unwrap()).or_default() += 1;
    }
    assert_eq!(seen.len(), n, "{seen:?}");
    assert!(seen.values().all(|&c| c == 1), "{seen:?}");
    assert_eq!(rt.block_on(consumer_backlog(&url)), Some((0, 0)));
}

/// Waits for `child` to exit, at most `within`; kills it and fails the test if it did not.
fn wait_bounded(mut child: Child, within: Duration, what: &str) -> std::process::Output {
    let deadline = Instant::now() + within;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            let out = child.wait_with_output().unwrap();
            panic!(
                "{what}: still running after {within:?}; stderr: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn with_the_server_gone_sigterm_and_idle_exit_still_end_the_relay() {
    for stop_by_signal in [true, false] {
        let mut server = NatsServer::start();
        let url = server.url();
        runtime().block_on(publish(&url, &HookConfig::default(), distinct_events(3)));
        let dir = tempfile::tempdir().unwrap();
        let out_file = dir.path().join("runs.txt");
        let started = dir.path().join("started");
        let script = line_script(
            dir.path(),
            &out_file,
            &format!("touch '{}'; sleep 1", started.display()),
        );
        let env = [("SFTPGO_COMMON__POST_DISCONNECT_HOOK", script.as_str())];
        let relay = spawn_relay(
            dir.path(),
            &["--from", &url, "--concurrency", "1", "--idle-exit", "2"],
            &env,
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        while !started.exists() {
            assert!(Instant::now() < deadline, "no hook started");
            std::thread::sleep(Duration::from_millis(20));
        }
        server.kill();
        if stop_by_signal {
            let pid = rustix::process::Pid::from_raw(relay.id() as i32).unwrap();
            rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
        }
        // The running hook finishes; the acks cannot reach a server, which is not waited for.
        let out = wait_bounded(relay, Duration::from_secs(60), "the relay");
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{err}");
        assert!(
            err.contains("did not take the last acks within 5s"),
            "{err}"
        );
        // A signal stops the relay after the running hook; idle, it runs what it holds first.
        let runs = if stop_by_signal { 1 } else { 3 };
        assert_eq!(lines(&out_file).len(), runs, "{err}");
        assert!(
            err.contains(&format!("relay: acked={runs} terminated=0 ")),
            "{err}"
        );
    }
}

#[test]
fn sigkill_of_one_of_two_relays_the_other_delivers_the_rest_after_the_ack_wait() {
    let server = NatsServer::start();
    let url = server.url();
    let n = 400;
    runtime().block_on(publish(&url, &HookConfig::default(), distinct_events(n)));
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("runs.txt");
    let script = line_script(dir.path(), &out_file, "sleep 0.05");
    let concurrency = 8;
    let env = [
        ("SFTPGO_COMMON__POST_DISCONNECT_HOOK", script.as_str()),
        ("SFTPGO_NATS__ACK_WAIT", "2"),
    ];
    let c = concurrency.to_string();
    let mut victim = spawn_relay(dir.path(), &["--from", &url, "--concurrency", &c], &env);
    let survivor = spawn_relay(
        dir.path(),
        &["--from", &url, "--concurrency", &c, "--idle-exit", "5"],
        &env,
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while lines(&out_file).len() < n / 4 {
        assert!(Instant::now() < deadline, "too slow");
        std::thread::sleep(Duration::from_millis(10));
    }
    victim.kill().unwrap(); // SIGKILL, by PID
    victim.wait().unwrap();
    let out = survivor.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let all = lines(&out_file);
    let mut counts: HashMap<&String, usize> = HashMap::new();
    for l in &all {
        *counts.entry(l).or_default() += 1;
    }
    assert_eq!(counts.len(), n, "every event delivered at least once");
    // What the killed relay had not settled on the server runs again on the survivor: the events
    // in its hook slots. A slot is held from the hook's start until the event's ack is written
    // to the socket, so that is at most one per slot; an event run again for any other reason
    // (acks still queued in the client, the survivor running a message twice, redelivery of
    // acked events) breaks it.
    let duplicates = all.len() - n;
    eprintln!("{duplicates} events run again after the SIGKILL ({concurrency} slots)");
    assert!(
        duplicates <= concurrency,
        "{duplicates} duplicates; at most the killed relay's {concurrency} slots"
    );
}

#[test]
fn tls_with_a_test_ca_mutual_tls_and_a_wrong_ca() {
    let pki = Pki::new();
    let server = NatsServer::start_tls(NatsTls {
        cert: pki.server().cert_path().to_owned(),
        key: pki.server().key_path().to_owned(),
        verify_clients_with: None,
    });
    let tls_url = format!("tls://127.0.0.1:{}", server.port());
    let dir = tempfile::tempdir().unwrap();
    let ca = pki.ca().cert_path().to_str().unwrap().to_owned();
    let out = hookctl(
        dir.path(),
        &["fire", "--hook", &tls_url, "--events", "3"],
        &[("SFTPGO_NATS__CA_CERTIFICATES", &ca)],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(summary_value(&out, "failed"), 0.0);

    // A CA that did not issue the server's certificate: a clear TLS error, no retry storm.
    let other = pki.other_ca().cert_path().to_str().unwrap().to_owned();
    let out = hookctl(
        dir.path(),
        &["fire", "--hook", &tls_url],
        &[("SFTPGO_NATS__CA_CERTIFICATES", &other)],
    );
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(text.contains("kind=tls"), "{text}");
    assert!(text.contains("attempts=1 "), "{text}");
    assert!(
        text.contains("cannot connect") && text.contains("invalid peer certificate: UnknownIssuer"),
        "{text}"
    );

    // Mutual TLS: without a client certificate refused, with one stored.
    let mtls = NatsServer::start_tls(NatsTls {
        cert: pki.server().cert_path().to_owned(),
        key: pki.server().key_path().to_owned(),
        verify_clients_with: Some(pki.client_ca().cert_path().to_owned()),
    });
    let mtls_url = format!("tls://127.0.0.1:{}", mtls.port());
    let out = hookctl(
        dir.path(),
        &["fire", "--hook", &mtls_url],
        &[
            ("SFTPGO_NATS__CA_CERTIFICATES", &ca),
            ("SFTPGO_HOOKS__DELIVERY_DEADLINE", "3"),
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(
        text.contains("kind=tls") && text.contains("BadCertificate"),
        "{text}"
    );
    let cert = pki.client().cert_path().to_str().unwrap().to_owned();
    let key = pki.client().key_path().to_str().unwrap().to_owned();
    let env = [
        ("SFTPGO_NATS__CA_CERTIFICATES", ca.as_str()),
        ("SFTPGO_NATS__CERTIFICATES__0__CERT", cert.as_str()),
        ("SFTPGO_NATS__CERTIFICATES__0__KEY", key.as_str()),
    ];
    let out = hookctl(
        dir.path(),
        &["fire", "--hook", &mtls_url, "--events", "2"],
        &env,
    );
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    // The relay over mutual TLS too.
    let out = hookctl(
        dir.path(),
        &["relay", "--from", &mtls_url, "--max-events", "2"],
        &[
            env[0],
            env[1],
            env[2],
            ("SFTPGO_COMMON__POST_DISCONNECT_HOOK", "/bin/true"),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(summary_value(&out, "events"), 2.0);
}

#[test]
fn a_missing_stream_is_permanent_and_a_token_is_never_shown() {
    let server = NatsServer::start_with(None, vec!["--auth".into(), "t0ken-s3cret".into()]);
    let dir = tempfile::tempdir().unwrap();
    let url = server.url();
    let env = [
        ("SFTPGO_NATS__TOKEN", "t0ken-s3cret"),
        ("SFTPGO_NATS__CREATE_STREAM", "false"),
    ];
    let out = hookctl(dir.path(), &["fire", "--hook", &url], &env);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains("no stream stores subject \"sftpgo.hooks.disconnect.sftp\""),
        "{text}"
    );
    assert!(text.contains("attempts=1"), "{text}");
    // A wrong token: refused, and neither token is shown anywhere.
    let out = hookctl(
        dir.path(),
        &["fire", "--hook", &url],
        &[("SFTPGO_NATS__TOKEN", "wr0ng-t0ken")],
    );
    assert_eq!(out.status.code(), Some(1));
    let all = format!("{}{}", stdout(&out), stderr(&out));
    assert!(
        !all.contains("wr0ng-t0ken") && !all.contains("t0ken-s3cret"),
        "{all}"
    );
    let check = hookctl(
        dir.path(),
        &["check"],
        &[
            ("SFTPGO_NATS__TOKEN", "t0ken-s3cret"),
            (
                "SFTPGO_COMMON__POST_DISCONNECT_HOOK",
                "nats://u:pw-s3cret@127.0.0.1:1,nats://v:pw2-s3cret@127.0.0.1:2",
            ),
        ],
    );
    assert!(check.status.success(), "{}", stderr(&check));
    let text = stdout(&check);
    assert!(
        text.contains("hook target: nats nats://u:xxxxx@127.0.0.1:1,nats://v:xxxxx@127.0.0.1:2"),
        "{text}"
    );
    assert!(text.contains("nats.token = \"xxxxx\""), "{text}");
    assert!(!text.contains("s3cret"), "{text}");
}
