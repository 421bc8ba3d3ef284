//! Fleets on a real 3-node JetStream cluster (Debian's `nats-server` on loopback, an R3 stream):
//! nodes publish (`hookctl fire`, the example SFTP server, a spooled Dispatcher), two
//! `hookctl relay` workers run a program hook; NATS nodes and relays are killed on the way.

use std::collections::{HashMap, HashSet};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream;
use hook_test_support::NatsCluster;
use hooks::{
    DisconnectEvent, Dispatcher, DispatcherOptions, EventId, HookConfig, HookTarget, Protocol,
};
use sftp_server_example::{Settings, SftpServer, load_authorized_keys};

use crate::nats::{line_script, lines, read_stream, runtime, spawn_relay};
use crate::support::summary_value;

const WAIT: Duration = Duration::from_secs(60);

/// Messages stored in the stream so far (0 while it does not exist).
async fn stored(url: &str) -> u64 {
    let Ok(client) = async_nats::connect(url).await else {
        return 0;
    };
    let js = jetstream::new(client);
    match js.get_stream("SFTPGO_HOOKS").await {
        Ok(mut s) => s.info().await.map_or(0, |i| i.state.messages),
        Err(_) => 0,
    }
}

/// Usernames seen by the relays' program, with how often.
fn usernames(lines: &[String]) -> HashMap<String, usize> {
    let mut seen = HashMap::new();
    for l in lines {
        let user = l.split('|').nth(2).unwrap().to_owned();
        *seen.entry(user).or_default() += 1;
    }
    seen
}

#[test]
fn storm_through_the_cluster_survives_sigkill_of_a_node_and_two_relays_deliver_everything() {
    let mut cluster = NatsCluster::start(3);
    let urls = cluster.urls();
    let dir = tempfile::tempdir().unwrap();
    let n = 10_000;
    let env_r3 = [("SFTPGO_NATS__REPLICAS", "3")];
    let mut fire = Command::new(env!("CARGO_BIN_EXE_hookctl"));
    fire.env_clear()
        .env("PATH", "/usr/bin:/bin")
        .envs(env_r3)
        .current_dir(dir.path())
        .args(["fire", "--hook", &urls, "--events", &n.to_string()])
        .args([
            "--username",
            "u{n}",
            "--duration-ms",
            "5",
            "--protocol",
            "SFTP",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let fire = fire.spawn().unwrap();

    // Mid-storm: SIGKILL one node once a fifth of the events are stored.
    let rt = runtime();
    let watch = cluster.node(1).url();
    let deadline = Instant::now() + WAIT;
    while rt.block_on(stored(&watch)) < n / 5 {
        assert!(Instant::now() < deadline, "the storm did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    cluster.node(0).kill();
    let out = fire.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        summary.starts_with(&format!("events={n} failed=0 ")),
        "{summary}"
    );
    // Retried publishes reused their Nats-Msg-Id: stored once each.
    let survivors = format!("{},{}", cluster.node(1).url(), cluster.node(2).url());
    let messages = rt.block_on(read_stream(&cluster.node(1).url(), "SFTPGO_HOOKS"));
    assert_eq!(messages.len(), n as usize);

    // Two relays share the consumer.
    let out_file = dir.path().join("runs.txt");
    let script = line_script(dir.path(), &out_file, "");
    let env = [
        ("SFTPGO_COMMON__POST_DISCONNECT_HOOK", script.as_str()),
        ("SFTPGO_NATS__ACK_WAIT", "3"),
    ];
    let a = spawn_relay(
        dir.path(),
        &[
            "--from",
            &survivors,
            "--concurrency",
            "8",
            "--idle-exit",
            "10",
        ],
        &env,
    );
    let b = spawn_relay(
        dir.path(),
        &[
            "--from",
            &survivors,
            "--concurrency",
            "8",
            "--idle-exit",
            "10",
        ],
        &env,
    );
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert!(
        a.status.success() && b.status.success(),
        "{}{}",
        String::from_utf8_lossy(&a.stderr),
        String::from_utf8_lossy(&b.stderr)
    );
    let handled: f64 = [&a, &b].iter().map(|o| summary_value(o, "events")).sum();
    let seen = usernames(&lines(&out_file));
    assert_eq!(
        seen.len(),
        n as usize,
        "every event reached a relay at least once; relay logs: {}{}",
        String::from_utf8_lossy(&a.stderr),
        String::from_utf8_lossy(&b.stderr)
    );
    for i in 0..n {
        assert!(seen.contains_key(&format!("u{i}")), "u{i} never delivered");
    }
    assert!(handled >= n as f64, "{handled}");
    for l in lines(&out_file) {
        assert!(
            l.starts_with("127.0.0.1|SFTP|u") && l.ends_with("|5|4"),
            "{l}"
        );
    }
}

#[test]
fn all_nodes_down_with_the_spool_on_events_wait_on_disk_and_are_published_once_when_back() {
    let mut cluster = NatsCluster::start(3);
    let urls = cluster.urls();
    let rt = runtime();
    // The stream exists (R3) before the outage.
    let dir = tempfile::tempdir().unwrap();
    let spool_dir = dir.path().join("spool");
    let mut config = HookConfig::default();
    config.nats.replicas = 3;
    config.nats.ack_timeout = 1.0;
    config.hooks.delivery_deadline = 2.0;
    config.hooks.spool.dir = spool_dir.to_str().unwrap().to_owned();
    config.hooks.spool.redeliver_min = 0.5;
    config.hooks.spool.redeliver_max = 1.0;
    let HookTarget::Nats(servers) = HookTarget::parse(&urls).unwrap() else {
        unreachable!()
    };
    let hook = hook_nats::NatsHook::from_config(&servers, &config.nats, &config.hooks).unwrap();
    rt.block_on(hook.connect()).unwrap();

    for node in cluster.nodes_mut() {
        node.kill();
    }
    let outcomes: Arc<Mutex<HashMap<EventId, Result<(), String>>>> = Arc::default();
    let seen = outcomes.clone();
    let n = 500usize;
    let (fired, _cluster): (HashSet<EventId>, NatsCluster) = rt.block_on(async {
        let options = DispatcherOptions::from_config(&config.hooks)
            .unwrap()
            .with_on_outcome(move |event, result| {
                seen.lock().unwrap().insert(
                    event.id(),
                    result.as_ref().map(|_| ()).map_err(|e| e.to_string()),
                );
            });
        let dispatcher = Dispatcher::try_new(Arc::new(hook), options).unwrap();
        let mut ids = HashSet::new();
        for i in 0..n {
            let event = DisconnectEvent::new(
                "192.0.2.1",
                Protocol::Sftp,
                format!("s{i}"),
                Duration::from_millis(3),
            );
            ids.insert(event.id());
            dispatcher.fire_durable(event).await.unwrap();
        }
        // The cluster is down for a while: nothing can be delivered, everything is on disk.
        tokio::time::sleep(Duration::from_secs(4)).await;
        let delivered = outcomes
            .lock()
            .unwrap()
            .values()
            .filter(|r| r.is_ok())
            .count();
        assert_eq!(delivered, 0);
        let status = dispatcher.spool().expect("spool on").status().unwrap();
        assert_eq!(status.pending + status.deferred, n as u64, "{status:?}");

        let cluster = tokio::task::spawn_blocking(move || {
            for node in cluster.nodes_mut() {
                node.restart();
            }
            cluster.wait_healthy();
            cluster
        })
        .await
        .unwrap();
        let deadline = Instant::now() + WAIT;
        loop {
            let (delivered, last_error) = {
                let map = outcomes.lock().unwrap();
                let ok = map.values().filter(|r| r.is_ok()).count();
                (ok, map.values().find_map(|r| r.clone().err()))
            };
            if delivered == n {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{delivered} of {n} delivered after the outage; an error: {last_error:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let report = dispatcher.shutdown(Duration::from_secs(5)).await;
        assert_eq!(report.failed, 0, "{report:?}");
        (ids, cluster)
    });
    let messages = rt.block_on(read_stream(&urls, "SFTPGO_HOOKS"));
    assert_eq!(messages.len(), n, "none lost, none stored twice");
    let stored: HashSet<EventId> = messages
        .iter()
        .map(|m| m.headers[1].1[0].parse().unwrap())
        .collect();
    assert_eq!(stored, fired);
}

#[test]
fn the_example_sftp_server_publishes_to_the_cluster_and_relays_run_the_program() {
    let cluster = NatsCluster::start(3);
    let urls = cluster.urls();
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path();
    let root = base.join("root");
    std::fs::create_dir(&root).unwrap();
    let key = base.join("id_ed25519");
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "fleet", "-f"])
        .arg(&key)
        .stdin(Stdio::null())
        .status()
        .expect("ssh-keygen (package openssh-client; .ci/run installs it)");
    assert!(status.success());
    std::fs::write(
        base.join("sftpgo.json"),
        format!(r#"{{"common": {{"post_disconnect_hook": "{urls}"}}, "nats": {{"replicas": 3}}}}"#),
    )
    .unwrap();
    let config = hooks::Loader::new()
        .config_dir(base)
        .env_vars(Vec::<(String, String)>::new())
        .load()
        .unwrap()
        .config;
    let mut settings = Settings::new("127.0.0.1:0".parse().unwrap(), &root, "alice");
    settings.authorized_keys = load_authorized_keys(&key.with_extension("pub")).unwrap();
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = std::thread::spawn(move || {
        runtime().block_on(async move {
            let server = SftpServer::bind(settings, &config).await.expect("bind");
            addr_tx.send(server.local_addr().unwrap()).unwrap();
            server
                .run(async {
                    let _ = stop_rx.await;
                })
                .await
        })
    });
    let addr: std::net::SocketAddr = addr_rx.recv_timeout(WAIT).unwrap();
    let sessions = 6;
    for _ in 0..sessions {
        let out = Command::new("ssh")
            .args(["-F", "/dev/null", "-i"])
            .arg(&key)
            .args([
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
            ])
            .args([
                "-o",
                "BatchMode=yes",
                "-o",
                "IdentitiesOnly=yes",
                "-o",
                "LogLevel=ERROR",
            ])
            .args([
                "-p",
                &addr.port().to_string(),
                "alice@127.0.0.1",
                "echo",
                "hi",
            ])
            .stdin(Stdio::null())
            .output()
            .expect("ssh");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let _ = stop_tx.send(());
    let report = server.join().unwrap().expect("a hook is configured");
    assert_eq!(report.delivered, sessions, "{report:?}");
    assert_eq!(report.failed, 0);

    let out_file = base.join("runs.txt");
    let script = line_script(base, &out_file, "");
    let env = [("SFTPGO_COMMON__POST_DISCONNECT_HOOK", script.as_str())];
    // Both relays serve /metrics; Debian's real prometheus scrapes them every second.
    let metrics: Vec<std::net::SocketAddr> = (0..2)
        .map(|_| {
            format!("127.0.0.1:{}", hook_test_support::free_port())
                .parse()
                .unwrap()
        })
        .collect();
    let relay = |metrics: std::net::SocketAddr| {
        spawn_relay(
            base,
            &[
                "--from",
                &urls,
                "--concurrency",
                "2",
                "--metrics-address",
                &metrics.to_string(),
            ],
            &env,
        )
    };
    let (a, b) = (relay(metrics[0]), relay(metrics[1]));
    let prometheus =
        hook_test_support::Prometheus::start(&[("relay-a", metrics[0]), ("relay-b", metrics[1])]);
    prometheus.wait_target_up("relay-a");
    prometheus.wait_target_up("relay-b");
    // Every session's event handled (acked) by one of the two, as Prometheus sees it.
    prometheus.wait_for("sum(hooks_relay_messages_handled_total)", sessions as f64);
    prometheus.wait_for("sum(hooks_relay_messages_acked_total)", sessions as f64);
    prometheus.wait_for("sum(hooks_relay_messages_terminated_total)", 0.0);
    // SIGTERM: each relay finishes what runs and exits 0.
    for child in [&a, &b] {
        let pid = rustix::process::Pid::from_raw(i32::try_from(child.id()).unwrap()).unwrap();
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    }
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert!(
        a.status.success() && b.status.success(),
        "{}{}",
        String::from_utf8_lossy(&a.stderr),
        String::from_utf8_lossy(&b.stderr)
    );
    let handled: f64 = [&a, &b].iter().map(|o| summary_value(o, "events")).sum();
    assert_eq!(
        handled, sessions as f64,
        "the relays' summary lines agree with Prometheus"
    );
    let runs = lines(&out_file);
    assert_eq!(runs.len(), sessions as usize, "{runs:?}");
    for run in &runs {
        let fields: Vec<&str> = run.split('|').collect();
        assert_eq!(&fields[..3], ["127.0.0.1", "SSH", "alice"], "{run}");
        let ms: u64 = fields[3].parse().unwrap();
        assert!(ms < 30_000, "{run}");
        assert_eq!(fields[4], "4");
    }
}
