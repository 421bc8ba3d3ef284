//! kill -9 of a process appending durably: every append whose completion resolved is there
//! after a restart, and the store opens and verifies after every kill.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hook_core::EventId;
use hook_spool::State;

use crate::{event, open};

const CHILD_ENV: &str = "HOOK_SPOOL_KILL_CHILD_DIR";

/// In the child: append durably forever (bounded), printing each id once its commit resolved;
/// ack every third one after printing it (as a dispatcher does after a delivery).
fn child(dir: &str) {
    let (spool, _) = open(std::path::Path::new(dir));
    let started = Instant::now();
    for n in 0..200_000u64 {
        let e = event(n);
        spool.append_durable(&e).unwrap().wait().unwrap();
        println!("durable {}", e.id());
        if n % 3 == 0 {
            spool.ack(e.id()).unwrap();
            println!("acked {}", e.id());
        }
        if started.elapsed() > Duration::from_secs(60) {
            break;
        }
    }
}

#[test]
fn kill_9_loses_no_durable_append() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        return child(&dir);
    }
    let dir = tempfile::tempdir().unwrap();
    let mut durable: BTreeSet<EventId> = BTreeSet::new();
    let mut acked: BTreeSet<EventId> = BTreeSet::new();
    let mut seed = 0x9E37_79B9u64;
    for round in 0..10 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let kill_after = 1 + (seed % 300) as usize;
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "kill::kill_9_loses_no_durable_append",
                "--nocapture",
            ])
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut seen = 0;
        for line in lines.by_ref() {
            let line = line.unwrap();
            if let Some(id) = line.strip_prefix("durable ") {
                durable.insert(id.parse().unwrap());
                seen += 1;
                if seen == kill_after {
                    break;
                }
            } else if let Some(id) = line.strip_prefix("acked ") {
                acked.insert(id.parse().unwrap());
            }
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        // What the child printed before it died was acknowledged too.
        for line in lines {
            let Ok(line) = line else { break };
            if let Some(id) = line.strip_prefix("durable ") {
                durable.insert(id.parse().unwrap());
            } else if let Some(id) = line.strip_prefix("acked ") {
                acked.insert(id.parse().unwrap());
            }
        }
        assert!(
            seen >= kill_after.min(1),
            "round {round}: the child printed nothing"
        );
        // Restart on the same spool: it opens and verifies, and holds every durable, unacked id.
        let (spool, report) = open(dir.path());
        assert!(
            report.corrupt.is_none(),
            "round {round}: {:?}",
            report.corrupt
        );
        let pending: BTreeSet<EventId> = spool
            .list(State::Pending, None, usize::MAX)
            .unwrap()
            .iter()
            .map(|r| r.id())
            .collect();
        let missing: Vec<_> = durable
            .iter()
            .filter(|id| !acked.contains(id) && !pending.contains(id))
            .collect();
        assert!(
            missing.is_empty(),
            "round {round} (killed after {kill_after}): {} durable ids lost, e.g. {}",
            missing.len(),
            missing[0]
        );
        // Acks are batched without a sync: those lost in the kill are at most the last few.
        let unacked_but_acked = acked.iter().filter(|id| pending.contains(id)).count();
        assert!(unacked_but_acked <= 200, "{unacked_but_acked} acks lost");
        drop(spool);
    }
    assert!(durable.len() >= 10);
}
