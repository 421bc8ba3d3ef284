//! kill -9 loses nothing: a helper process fires 10,000 events with `fire_durable` at a slow
//! loopback endpoint, printing each event once it is durable; it is SIGKILLed at a random point,
//! 20 times, each restart on the same spool replaying what the last one left. Every printed
//! event reaches the endpoint at least once; duplicates stay within the in-flight limit plus
//! the ack window per kill; the store opens and verifies after every kill.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use hook_test_support::{Response, TestServer};
use hooks::spool::{Spool, SpoolOptions};

const KILLS: usize = 20;
const EVENTS: usize = 10_000;
/// The helper's `hooks.max_in_flight`.
const MAX_IN_FLIGHT: usize = 8;
/// The endpoint's delay per request.
const DELAY: Duration = Duration::from_millis(5);
/// The spool's ack flush interval (hook-spool's default, 100 ms), plus a commit's latency.
const ACK_WINDOW: Duration = Duration::from_millis(200);

fn helper() -> Command {
    Command::new(env!("CARGO_BIN_EXE_spool-crash-helper"))
}

/// A small xorshift generator, seeded from the clock (the seed is printed for reruns).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[test]
fn kill_9_loses_nothing_that_fire_durable_confirmed() {
    let server = TestServer::builder()
        .default_response(Response::ok().delay(DELAY))
        .start_blocking();
    let url = server.url("/hook");
    let spool = tempfile::tempdir().unwrap();
    let dir = spool.path().to_str().unwrap().to_owned();
    let seed = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("spool_kill seed {seed}");
    let mut rng = Rng(seed);
    let mut printed = Vec::new();

    for run in 0..KILLS {
        let mut child = helper()
            .args(["fire", &url, &dir, &format!("r{run}"), &EVENTS.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the helper");
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .collect::<Vec<String>>()
        });
        // A random point: 100 ms .. 1.2 s in (start-up and replay included).
        std::thread::sleep(Duration::from_millis(100 + rng.below(1_100)));
        child.kill().expect("SIGKILL"); // std's kill is SIGKILL on Unix
        let status = child.wait().unwrap();
        assert!(!status.success(), "run {run} ended before the kill");
        let lines = reader.join().unwrap();
        printed.extend(lines);

        // The store opens and verifies (check_integrity) after every kill.
        let (store, report) = Spool::open(SpoolOptions::new(&dir)).unwrap();
        assert!(
            report.corrupt.is_none(),
            "run {run}: the spool was damaged by the kill: {:?}",
            report.corrupt
        );
        drop(store);
    }
    assert!(
        printed.len() > KILLS,
        "too few events confirmed: {}",
        printed.len()
    );

    // A last, clean start delivers what is left.
    let status = helper().args(["drain", &url, &dir]).status().unwrap();
    assert!(status.success());

    let mut received: BTreeMap<String, usize> = BTreeMap::new();
    for r in server.requests() {
        *received
            .entry(r.query_param("username").unwrap_or_default())
            .or_default() += 1;
    }
    let lost: Vec<&String> = printed
        .iter()
        .filter(|n| !received.contains_key(*n))
        .collect();
    assert!(
        lost.is_empty(),
        "{} confirmed events never reached the endpoint (seed {seed}): {:?}",
        lost.len(),
        &lost[..lost.len().min(10)]
    );
    let total: usize = received.values().sum();
    let duplicates = total - received.len();
    let rate = MAX_IN_FLIGHT as f64 / DELAY.as_secs_f64();
    let per_kill = MAX_IN_FLIGHT + (rate * ACK_WINDOW.as_secs_f64()) as usize;
    eprintln!(
        "spool_kill: {} confirmed, {} received ({} distinct), {duplicates} duplicates (bound {})",
        printed.len(),
        total,
        received.len(),
        KILLS * per_kill
    );
    assert!(
        duplicates <= KILLS * per_kill,
        "{duplicates} duplicates over {KILLS} kills (bound {per_kill} per kill)"
    );
}
