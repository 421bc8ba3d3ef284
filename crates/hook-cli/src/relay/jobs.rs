//! The relay's bookkeeping: the messages a shard holds, one [`Job`] per event id; which shard
//! holds which event and the events settled lately ([`Registry`], [`Recent`]), so that a second
//! delivery of an event never runs its hook twice in one relay; and the `--max-events` credits
//! the shards share ([`Budget`]).
//!
//! JetStream delivers at least once: an event comes back when its ack wait runs out before the
//! relay's ack or progress reaches the server (a loaded machine, a reconnect), or when a stale
//! NAK re-queues a message already delivered again. A relay that ran every delivery would run
//! such an event twice, even both copies at once. Instead a delivery of an event the relay holds
//! (waiting or running) joins that job and is settled with it, and a delivery of an event it
//! acked or terminated lately is acked or terminated again at once. Relays cannot see each
//! other's work: across relays, at least once stays the rule (hook authors deduplicate on the
//! event id, `docs/architecture.md`).

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use hook_nats::Message;
use hooks::{DisconnectEvent, EventId};

/// How many settled events [`Recent`] remembers at most (about 3 MiB).
pub(crate) const RECENT_CAPACITY: usize = 65_536;

/// One event the relay holds: waiting for a hook slot, or with its hook running.
pub(crate) struct Job {
    /// The first delivery that reached the relay.
    pub(crate) message: Message,
    /// Deliveries of the same event that arrived while this one was held, oldest first
    /// (usually none). Settled with the job, never run.
    pub(crate) again: Vec<Message>,
    /// The decoded event while it waits; moved into the dispatcher when its hook starts (a
    /// failed outcome brings it back for the log line).
    pub(crate) event: Option<DisconnectEvent>,
    /// The highest delivery count seen (the server's count for its current delivery).
    pub(crate) delivered: u32,
    /// The stream sequence (seeds the redelivery jitter).
    pub(crate) sequence: u64,
    /// When progress was last sent (or the message arrived).
    pub(crate) last_progress: Instant,
}

impl Job {
    /// A job for the first delivery of `event`.
    pub(crate) fn new(
        message: Message,
        event: DisconnectEvent,
        delivered: u32,
        sequence: u64,
    ) -> Job {
        Job {
            message,
            again: Vec::new(),
            event: Some(event),
            delivered,
            sequence,
            last_progress: Instant::now(),
        }
    }

    /// Adds a later delivery of the same event.
    pub(crate) fn join(&mut self, message: Message, delivered: u32) {
        self.again.push(message);
        self.delivered = self.delivered.max(delivered);
    }

    /// The newest delivery: the one the server's pending entry refers to, which a NAK or
    /// progress must name.
    pub(crate) fn latest(&self) -> &Message {
        self.again.last().unwrap_or(&self.message)
    }

    /// Every delivery held, oldest first.
    pub(crate) fn messages(&self) -> impl Iterator<Item = &Message> {
        std::iter::once(&self.message).chain(&self.again)
    }

    /// How many messages (credits) the job holds.
    pub(crate) fn count(&self) -> usize {
        1 + self.again.len()
    }
}

/// How the relay settled an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Settled {
    /// Delivered: acked.
    Acked,
    /// A dead letter: terminated.
    Terminated,
}

/// Events settled lately, remembered for `horizon` and at most `capacity` of them (the oldest
/// are forgotten first).
pub(crate) struct Recent {
    horizon: Duration,
    capacity: usize,
    order: VecDeque<(Instant, EventId)>,
    settled: HashMap<EventId, Settled>,
}

impl Recent {
    /// Remembers for `horizon` (the relay uses twice the consumer's ack wait: a late
    /// redelivery comes at most an ack wait after the ack that missed it), at most `capacity`.
    pub(crate) fn new(horizon: Duration, capacity: usize) -> Recent {
        Recent {
            horizon,
            capacity: capacity.max(1),
            order: VecDeque::new(),
            settled: HashMap::new(),
        }
    }

    /// Records that `id` was settled `how` at `now`.
    pub(crate) fn insert(&mut self, id: EventId, how: Settled, now: Instant) {
        self.forget_before(now);
        if let Some(known) = self.settled.get_mut(&id) {
            *known = how;
            return;
        }
        while self.order.len() >= self.capacity {
            self.pop_oldest();
        }
        self.settled.insert(id, how);
        self.order.push_back((now, id));
    }

    /// How `id` was settled, if that was within the horizon of `now`.
    pub(crate) fn get(&mut self, id: EventId, now: Instant) -> Option<Settled> {
        self.forget_before(now);
        self.settled.get(&id).copied()
    }

    /// How many events are remembered.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.settled.len()
    }

    fn forget_before(&mut self, now: Instant) {
        while let Some(&(at, _)) = self.order.front() {
            if now.saturating_duration_since(at) < self.horizon {
                break;
            }
            self.pop_oldest();
        }
    }

    fn pop_oldest(&mut self) {
        if let Some((_, id)) = self.order.pop_front() {
            self.settled.remove(&id);
        }
    }
}

/// What a shard does with a delivery that just arrived, decided under the [`Registry`] lock.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Arrival {
    /// Not held anywhere and not settled lately: run it (now registered to this shard).
    New,
    /// This shard holds the event: join its job.
    Join,
    /// Another shard holds the event: hand the delivery to that shard.
    Forward(usize),
    /// Settled lately: settle it the same way again.
    Settled(Settled),
}

/// Which shard holds which event, and the events settled lately, for every shard of a relay:
/// so that one relay never runs an event twice, whichever of its connections the deliveries
/// come through.
pub(crate) struct Registry {
    held: HashMap<EventId, usize>,
    recent: Recent,
}

impl Registry {
    /// An empty registry remembering settled events for `horizon`.
    pub(crate) fn new(horizon: Duration) -> Registry {
        Registry {
            held: HashMap::new(),
            recent: Recent::new(horizon, RECENT_CAPACITY),
        }
    }

    /// A delivery of `id` arrived at `shard`.
    pub(crate) fn arrive(&mut self, id: EventId, shard: usize, now: Instant) -> Arrival {
        if let Some(how) = self.recent.get(id, now) {
            return Arrival::Settled(how);
        }
        match self.held.entry(id) {
            std::collections::hash_map::Entry::Occupied(o) if *o.get() == shard => Arrival::Join,
            std::collections::hash_map::Entry::Occupied(o) => Arrival::Forward(*o.get()),
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(shard);
                Arrival::New
            }
        }
    }

    /// The shard let go of `id`: settled `how`, or (`None`) given back for a redelivery.
    pub(crate) fn release(&mut self, id: EventId, how: Option<Settled>, now: Instant) {
        self.held.remove(&id);
        if let Some(how) = how {
            self.recent.insert(id, how, now);
        }
    }
}

/// The `--max-events` budget shared by a relay's shards: `room` is the budget minus the events
/// handled minus the credits issued (held, requested or free), so the shards together never ask
/// the server for more messages than the events still to handle.
pub(crate) struct Budget {
    room: Option<std::sync::atomic::AtomicU64>,
}

impl Budget {
    /// A budget of `max_events`, or none.
    pub(crate) fn new(max_events: Option<u64>) -> Budget {
        Budget {
            room: max_events.map(std::sync::atomic::AtomicU64::new),
        }
    }

    /// Takes up to `want` credits; returns how many it got.
    pub(crate) fn take(&self, want: usize) -> usize {
        use std::sync::atomic::Ordering;
        let Some(room) = &self.room else {
            return want;
        };
        let mut got = 0;
        let _ = room.fetch_update(Ordering::AcqRel, Ordering::Acquire, |left| {
            got = usize::try_from(left).unwrap_or(usize::MAX).min(want);
            Some(left - got as u64)
        });
        got
    }

    /// Gives back credits whose messages left without being handled (NAKed, refused, a
    /// duplicate), or that were never used.
    pub(crate) fn put_back(&self, credits: usize) {
        if let Some(room) = &self.room {
            room.fetch_add(credits as u64, std::sync::atomic::Ordering::AcqRel);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_within_the_horizon_then_forgets() {
        let t0 = Instant::now();
        let mut recent = Recent::new(Duration::from_secs(10), 100);
        let (a, b) = (EventId::new(), EventId::new());
        recent.insert(a, Settled::Acked, t0);
        recent.insert(b, Settled::Terminated, t0 + Duration::from_secs(5));
        assert_eq!(
            recent.get(a, t0 + Duration::from_secs(9)),
            Some(Settled::Acked)
        );
        assert_eq!(
            recent.get(b, t0 + Duration::from_secs(9)),
            Some(Settled::Terminated)
        );
        assert_eq!(recent.get(a, t0 + Duration::from_secs(10)), None);
        assert_eq!(
            recent.get(b, t0 + Duration::from_secs(14)),
            Some(Settled::Terminated)
        );
        assert_eq!(recent.get(b, t0 + Duration::from_secs(15)), None);
        assert_eq!(recent.len(), 0);
        assert_eq!(recent.get(EventId::new(), t0), None);
    }

    #[test]
    fn the_registry_runs_an_event_in_one_shard_and_forwards_its_other_deliveries() {
        let t0 = Instant::now();
        let mut registry = Registry::new(Duration::from_secs(10));
        let (a, b) = (EventId::new(), EventId::new());
        assert_eq!(registry.arrive(a, 0, t0), Arrival::New);
        assert_eq!(registry.arrive(a, 0, t0), Arrival::Join);
        assert_eq!(registry.arrive(a, 1, t0), Arrival::Forward(0));
        assert_eq!(registry.arrive(b, 1, t0), Arrival::New);
        registry.release(a, Some(Settled::Acked), t0);
        assert_eq!(registry.arrive(a, 1, t0), Arrival::Settled(Settled::Acked));
        // Given back (NAKed): a later delivery runs again, in whichever shard gets it.
        registry.release(b, None, t0);
        assert_eq!(registry.arrive(b, 0, t0), Arrival::New);
        // Forgotten after the horizon.
        assert_eq!(
            registry.arrive(a, 1, t0 + Duration::from_secs(10)),
            Arrival::New
        );
    }

    #[test]
    fn the_budget_never_issues_more_than_is_left() {
        let budget = Budget::new(Some(5));
        assert_eq!(budget.take(3), 3);
        assert_eq!(budget.take(3), 2);
        assert_eq!(budget.take(1), 0);
        budget.put_back(2);
        assert_eq!(budget.take(8), 2);
        let unlimited = Budget::new(None);
        assert_eq!(unlimited.take(usize::MAX), usize::MAX);
        unlimited.put_back(7);
        assert_eq!(unlimited.take(4), 4);
    }

    #[test]
    fn keeps_at_most_its_capacity_forgetting_the_oldest() {
        let t0 = Instant::now();
        let mut recent = Recent::new(Duration::from_secs(60), 3);
        let ids: Vec<EventId> = (0..5).map(|_| EventId::new()).collect();
        for id in &ids {
            recent.insert(*id, Settled::Acked, t0);
        }
        assert_eq!(recent.len(), 3);
        assert_eq!(recent.get(ids[0], t0), None);
        assert_eq!(recent.get(ids[1], t0), None);
        for id in &ids[2..] {
            assert_eq!(recent.get(*id, t0), Some(Settled::Acked));
        }
        // The same id twice takes one place.
        recent.insert(ids[4], Settled::Acked, t0);
        assert_eq!(recent.len(), 3);
        assert_eq!(recent.get(ids[2], t0), Some(Settled::Acked));
    }
}
