//! Single-flight in the process: concurrent misses of one key share one
//! load.
//!
//! ## Behavior
//!
//! * Hits never wait on each other: every caller reads for itself. A caller
//!   whose read missed joins the key's flight: the first becomes its
//!   leader and loads; the others wait. Different keys never wait on each
//!   other.
//! * **Freshness across instances.** A waiter takes the leader's value as
//!   its own only if the flight *began after the waiter arrived*: the
//!   leader's load then started after the waiter's call did, so it reflects
//!   every write that completed before that call began, on any instance.
//!   An old value the leader serves (`stale`, a soft timeout, fail-safe)
//!   was read before it joined, so it is shared only with waiters that
//!   arrived before that read began. A waiter that arrived later reads
//!   again once the flight ends: usually a hit on what the leader stored;
//!   on a miss it joins the next flight, which begins after it arrived. No
//!   invalidation, on this instance or another, can slip between a waiter
//!   and the value it gets.
//! * What a leader shares: the entry it read or stored, a value it could
//!   not store (another process holds the key's lease, the backend failed),
//!   or an old value it served (`stale`, a soft timeout, fail-safe). When it
//!   has nothing to share (its body returned `Err`, `None` without
//!   `none_ttl`, a value `cache_if` rejected, a fill refused because an
//!   invalidation came, or it panicked or was cancelled), every waiter runs
//!   its own body: an error is not shared, and a waiter never hangs on a
//!   leader that is gone.
//! * A waiter waits at most the fill lease time (10 s by default), then runs
//!   its own body: a same-key call from a task the leader spawned and awaits
//!   (which cannot see the leader's task-local) would otherwise deadlock.
//! * A cached function that calls itself with the same key (recursion) runs
//!   without single-flight instead of waiting for itself.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::watch;

const SHARDS: usize = 16;

/// What a finished flight hands to its waiters.
#[derive(Clone)]
pub(crate) enum Outcome {
    /// The entry's bytes, as read or as stored (moved, never copied).
    Entry(Arc<Vec<u8>>),
    /// The leader's value, framed but not stored (no lease, the backend
    /// failed).
    Unstored(Arc<Vec<u8>>),
    /// An entry past its freshness that the leader served (`stale`, a soft
    /// timeout, fail-safe).
    Stale(Arc<Vec<u8>>),
    /// Nothing to share: each waiter runs its own body.
    Nothing,
}

type Slot = watch::Receiver<Option<Outcome>>;

/// A flight in progress: when it began, when its leader's read began, and
/// where its outcome appears.
struct Flight {
    /// When the leader joined: its load (and any read it makes after) is later.
    began: Instant,
    /// No later than the start of the read the leader's first answer rests
    /// on (an old value it may serve as stale).
    read_at: Instant,
    slot: Slot,
}

/// Flights in progress, by full key, in shards to keep locking short.
pub(crate) struct Flights {
    hasher: RandomState,
    shards: [Mutex<HashMap<String, Flight>>; SHARDS],
}

impl Default for Flights {
    fn default() -> Self {
        Flights {
            hasher: RandomState::new(),
            shards: std::array::from_fn(|_| Mutex::default()),
        }
    }
}

pub(crate) enum Join<'a> {
    Leader(Leader<'a>),
    /// `began_after`: the flight began after this caller arrived, so a value
    /// its leader loaded or read since may be taken as this caller's own;
    /// `read_after`: so did the leader's first read, so an old value it
    /// serves may be too.
    Follower {
        slot: Slot,
        began_after: bool,
        read_after: bool,
    },
}

/// The caller that loads for everyone; publishes on drop.
pub(crate) struct Leader<'a> {
    flights: &'a Flights,
    key: String,
    slot: Slot,
    tx: watch::Sender<Option<Outcome>>,
}

tokio::task_local! {
    /// Keys the current task is leading, to let recursion through.
    static LEADING: Vec<String>;
}

impl Flights {
    fn shard(&self, key: &str) -> &Mutex<HashMap<String, Flight>> {
        &self.shards[self.hasher.hash_one(key) as usize % SHARDS]
    }

    /// Becomes the leader of `key`'s flight, or a follower of the one in
    /// progress. `arrived`: no later than the start of the caller's call;
    /// `read_at`: no later than the start of the read it would lead with.
    pub(crate) fn join(&self, key: &str, arrived: Instant, read_at: Instant) -> Join<'_> {
        let mut map = self.shard(key).lock().unwrap_or_else(|e| e.into_inner());
        if let Some(flight) = map.get(key) {
            // A flight that has published is over (its leader is about to
            // remove it): start a new one rather than join it.
            if flight.slot.borrow().is_none() {
                return Join::Follower {
                    slot: flight.slot.clone(),
                    began_after: flight.began > arrived,
                    read_after: flight.read_at > arrived,
                };
            }
        }
        let (tx, slot) = watch::channel(None);
        let flight = Flight {
            began: Instant::now(),
            read_at,
            slot: slot.clone(),
        };
        map.insert(key.to_owned(), flight);
        Join::Leader(Leader {
            flights: self,
            key: key.to_owned(),
            slot,
            tx,
        })
    }
}

/// Whether the current task is already leading `key` (a recursive call).
pub(crate) fn leading(key: &str) -> bool {
    LEADING
        .try_with(|keys| keys.iter().any(|k| k == key))
        .unwrap_or(false)
}

/// The keys the current task leads, for a load it spawns.
pub(crate) fn leading_keys() -> Vec<String> {
    LEADING.try_with(Clone::clone).unwrap_or_default()
}

/// Runs `fut` (a load spawned by a leader) as leading `keys`: a recursive
/// call in a background load then runs as it would have in the caller.
pub(crate) async fn leading_as<F: Future>(keys: Vec<String>, fut: F) -> F::Output {
    LEADING.scope(keys, fut).await
}

/// Runs `fut` as the leader of `key`, so that a recursive call sees it.
pub(crate) async fn as_leader<F: Future>(key: &str, fut: F) -> F::Output {
    let mut keys = LEADING.try_with(Clone::clone).unwrap_or_default();
    keys.push(key.to_owned());
    LEADING.scope(keys, fut).await
}

impl Leader<'_> {
    /// Hands `outcome` to the waiters and ends the flight.
    pub(crate) fn finish(self, outcome: Outcome) {
        let _ = self.tx.send(Some(outcome));
        // Drop runs next and removes the flight.
    }
}

impl Drop for Leader<'_> {
    fn drop(&mut self) {
        // Panicked or cancelled before finishing: release the waiters.
        self.tx.send_if_modified(|v| {
            if v.is_none() {
                *v = Some(Outcome::Nothing);
                true
            } else {
                false
            }
        });
        let mut map = self
            .flights
            .shard(&self.key)
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if map
            .get(&self.key)
            .is_some_and(|f| f.slot.same_channel(&self.slot))
        {
            map.remove(&self.key);
        }
    }
}

/// Waits for the leader's outcome.
pub(crate) async fn wait(mut slot: Slot) -> Outcome {
    match slot.wait_for(Option::is_some).await {
        Ok(outcome) => outcome.clone().unwrap_or(Outcome::Nothing),
        Err(_) => Outcome::Nothing,
    }
}
