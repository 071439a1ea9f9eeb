//! Single-flight in the process: concurrent callers of one key share one
//! read and, on a miss, one execution of the body.
//!
//! ## Behavior
//!
//! * The first caller of a key becomes its leader and does the read (and the
//!   load on a miss); callers that arrive meanwhile wait for it. Different
//!   keys never wait on each other.
//! * Waiters receive the leader's entry bytes and decode them, so the value
//!   type need not be `Clone`. They get them only when the leader read a
//!   hit or *stored* its value: a value whose fill was refused (an
//!   invalidation came while it loaded) is never handed on.
//! * When the leader could not store its value (another process holds the
//!   key's lease, the backend failed), waiters still get that value, unless
//!   an invalidation by this cache completed during the flight; the same
//!   goes for an old value the leader served (`stale`, a soft timeout,
//!   fail-safe).
//! * When the leader has nothing to share (its body returned `Err`, `None`
//!   without `none_ttl`, a value `cache_if` rejected, a fill refused because
//!   an invalidation came, or it panicked or was cancelled), every waiter
//!   runs its own body and gets its own result: an error is not shared, and
//!   a waiter never hangs on a leader that is gone.
//! * A waiter waits at most the fill lease time (10 s by default), then runs
//!   its own body: a same-key call from a task the leader spawned and awaits
//!   (which cannot see the leader's task-local) would otherwise deadlock.
//! * A cached function that calls itself with the same key (recursion) runs
//!   without single-flight instead of waiting for itself.
//! * A caller joins a flight only if no invalidation by this cache completed
//!   since the flight began (an epoch counter): a read that starts after a
//!   write's invalidation never receives a value read before it.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

const SHARDS: usize = 16;

/// What a finished flight hands to its waiters.
#[derive(Clone)]
pub(crate) enum Outcome {
    /// The entry's bytes, as read or as stored (moved, never copied).
    Entry(Arc<Vec<u8>>),
    /// The leader's value, encoded but not stored (no lease, the backend
    /// failed): shared only if no invalidation completed during the flight.
    Unstored(Arc<Vec<u8>>),
    /// An entry past its freshness that the leader served (`stale`, a soft
    /// timeout, fail-safe): shared on the same terms as `Unstored`.
    Stale(Arc<Vec<u8>>),
    /// Nothing to share: each waiter runs its own body.
    Nothing,
}

type Slot = watch::Receiver<Option<Outcome>>;

/// Flights in progress, by full key (with the epoch each began in), in
/// shards to keep locking short.
pub(crate) struct Flights {
    hasher: RandomState,
    shards: [Mutex<HashMap<String, (u64, Slot)>>; SHARDS],
    /// Invalidations completed by this cache so far.
    epoch: AtomicU64,
}

impl Default for Flights {
    fn default() -> Self {
        Flights {
            hasher: RandomState::new(),
            shards: std::array::from_fn(|_| Mutex::default()),
            epoch: AtomicU64::new(0),
        }
    }
}

pub(crate) enum Join<'a> {
    Leader(Leader<'a>),
    Follower(Slot),
}

/// The caller that reads and loads for everyone; publishes on drop.
pub(crate) struct Leader<'a> {
    flights: &'a Flights,
    began: u64,
    key: String,
    slot: Slot,
    tx: watch::Sender<Option<Outcome>>,
}

tokio::task_local! {
    /// Keys the current task is leading, to let recursion through.
    static LEADING: Vec<String>;
}

impl Flights {
    fn shard(&self, key: &str) -> &Mutex<HashMap<String, (u64, Slot)>> {
        &self.shards[self.hasher.hash_one(key) as usize % SHARDS]
    }

    /// Marks that an invalidation completed: flights begun before it take
    /// no new followers.
    pub(crate) fn invalidated(&self) {
        self.epoch.fetch_add(1, SeqCst);
    }

    /// Becomes the leader of `key`, or a follower of the flight in progress
    /// if it began in the current epoch.
    pub(crate) fn join(&self, key: &str) -> Join<'_> {
        let mut map = self.shard(key).lock().unwrap_or_else(|e| e.into_inner());
        // Read under the lock, so a caller delayed before it cannot replace
        // a flight begun after a newer invalidation.
        let epoch = self.epoch.load(SeqCst);
        if let Some((began, slot)) = map.get(key) {
            if *began == epoch {
                return Join::Follower(slot.clone());
            }
        }
        // No flight, or one from before an invalidation: lead a new one.
        let (tx, slot) = watch::channel(None);
        map.insert(key.to_owned(), (epoch, slot.clone()));
        Join::Leader(Leader {
            flights: self,
            began: epoch,
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
        let current = self.flights.epoch.load(SeqCst) == self.began;
        let outcome = match outcome {
            Outcome::Unstored(bytes) if current => Outcome::Entry(bytes),
            Outcome::Unstored(_) | Outcome::Stale(_) if !current => Outcome::Nothing,
            other => other,
        };
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
            .is_some_and(|(_, s)| s.same_channel(&self.slot))
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
