//! Invalidations that always land: a failed invalidation is queued in the
//! process and replayed when the backend answers again.
//!
//! ## Behavior
//!
//! * A failed invalidation (Redis down, timeout), or one whose call was
//!   cancelled before it landed, is logged at warn, counted, and its keys,
//!   prefixes and tags go in a queue (deduplicated).
//! * While anything is queued, this cache handle is bypassed: calls run
//!   their body and store nothing, so it never serves an entry it failed to
//!   invalidate. The check costs one atomic load; callers never wait for a
//!   replay. A background task replays the queue (retrying every 100 ms,
//!   backing off to 250 ms), stopping at the first failure.
//! * A target queued again while a replay is running is kept for the next
//!   replay (each target carries a generation), so a newer invalidation is
//!   never dropped because an older one of the same key landed.
//! * The queue is bounded (10 000 by default). When full, the oldest entry
//!   is dropped and the whole namespace is marked for a flush: the next
//!   replay deletes every key under the namespace (every key in the database
//!   when there is none) before the rest of the queue. Conservative, never
//!   silent: logged at error and counted (`invalidations_dropped`,
//!   `namespace_flushes`). A drop during a running flush schedules another.
//! * The queue belongs to one `Cache` handle (and its clones); before a
//!   replay, a handle on a shared Redis announces that entries stored
//!   before now are not to be trusted (`store/tier/trust.rs`), so another
//!   instance that noticed nothing refills them instead of serving what
//!   the replay is about to clear.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use crate::key::Pattern;
use crate::stats::{FamilyKind, StatsRegistry};
use crate::store::Store;

/// Queued invalidations, over full (namespaced) keys.
#[derive(Default)]
struct Queue {
    /// Oldest first.
    order: VecDeque<Pattern>,
    /// Each queued target's generation, bumped whenever it is queued again.
    generation: HashMap<Pattern, u64>,
    next: u64,
    flush: bool,
    /// Bumped by every overflow drop, so a flush that began before a drop
    /// does not clear the flag the drop set.
    flush_generation: u64,
}

/// What one replay works through.
struct Snapshot {
    flush: Option<u64>,
    targets: Vec<(Pattern, u64)>,
}

impl Queue {
    fn is_empty(&self) -> bool {
        self.order.is_empty() && !self.flush
    }

    /// Targets waiting, a pending namespace flush counting as one.
    fn len(&self) -> usize {
        self.order.len() + usize::from(self.flush)
    }

    /// Adds targets; returns how many older ones were dropped to make room.
    fn push(&mut self, targets: impl IntoIterator<Item = Pattern>, capacity: usize) -> u64 {
        let mut dropped = 0;
        for target in targets {
            self.next += 1;
            if self.generation.insert(target.clone(), self.next).is_none() {
                self.order.push_back(target);
            }
            while self.order.len() > capacity {
                if let Some(oldest) = self.order.pop_front() {
                    self.generation.remove(&oldest);
                }
                dropped += 1;
                self.flush = true;
                self.flush_generation += 1;
            }
        }
        dropped
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot {
            flush: self.flush.then_some(self.flush_generation),
            targets: self
                .order
                .iter()
                .filter_map(|p| Some((p.clone(), *self.generation.get(p)?)))
                .collect(),
        }
    }

    /// Forgets what a replay landed, unless it was queued again meanwhile.
    fn landed(&mut self, flushed: Option<u64>, targets: &[(Pattern, u64)]) {
        if flushed == Some(self.flush_generation) {
            self.flush = false;
        }
        for (target, generation) in targets {
            if self.generation.get(target) == Some(generation) {
                self.generation.remove(target);
            }
        }
        let generation = &self.generation;
        self.order.retain(|p| generation.contains_key(p));
    }
}

/// The replay queue of one cache, and the task that drains it.
pub(crate) struct Replayer(Arc<Shared>);

struct Shared {
    store: Arc<dyn Store>,
    /// The namespace prefix a flush clears.
    namespace: String,
    stats: Arc<StatsRegistry>,
    capacity: usize,
    queue: Mutex<Queue>,
    /// Whether anything is queued: the one atomic a call checks.
    pending: AtomicBool,
    /// One replay at a time.
    replaying: tokio::sync::Mutex<()>,
    /// Whether the replay task runs.
    running: AtomicBool,
}

/// Clears `running` however the replay task ends (even when its runtime
/// shuts down), then restarts it if something is still queued.
struct RunningFlag(Weak<Shared>);

impl Drop for RunningFlag {
    fn drop(&mut self) {
        if let Some(shared) = self.0.upgrade() {
            shared.running.store(false, SeqCst);
            if shared.pending.load(SeqCst) {
                Replayer(shared).spawn();
            }
        }
    }
}

impl Replayer {
    pub(crate) fn new(
        store: Arc<dyn Store>,
        namespace: String,
        stats: Arc<StatsRegistry>,
        capacity: usize,
    ) -> Replayer {
        Replayer(Arc::new(Shared {
            store,
            namespace,
            stats,
            capacity: capacity.max(1),
            queue: Mutex::new(Queue::default()),
            pending: AtomicBool::new(false),
            replaying: tokio::sync::Mutex::new(()),
            running: AtomicBool::new(false),
        }))
    }

    /// Queues invalidations that did not land, over full keys, and makes
    /// sure a replay task runs.
    pub(crate) fn enqueue(&self, targets: Vec<Pattern>) {
        if targets.is_empty() {
            return;
        }
        let shared = &self.0;
        let n = targets.len() as u64;
        let dropped = {
            let mut queue = shared.queue.lock().unwrap_or_else(|e| e.into_inner());
            let before = queue.len();
            let dropped = queue.push(targets, shared.capacity);
            shared.pending.store(!queue.is_empty(), SeqCst);
            queue_changed(before, queue.len());
            dropped
        };
        let rec = shared.stats.recorder("", FamilyKind::Cached);
        rec.add(|c| &c.invalidations_queued, n);
        if dropped > 0 {
            rec.add(|c| &c.invalidations_dropped, dropped);
            rec.add(|c| &c.namespace_flushes, 1);
            tracing::error!(
                namespace = %shared.namespace,
                capacity = shared.capacity,
                dropped,
                "the invalidation replay queue is full: the whole namespace will be cleared when the backend answers"
            );
        }
        self.spawn();
    }

    /// How many targets wait to be replayed (a pending namespace flush
    /// counts as one).
    pub(crate) fn len(&self) -> usize {
        self.0.queue.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether the cache may be used: nothing is queued. Never waits: when
    /// something is, the replay task is (re)started and the call bypasses.
    pub(crate) fn ready(&self) -> bool {
        if !self.0.pending.load(SeqCst) {
            return true;
        }
        self.spawn();
        false
    }

    fn spawn(&self) {
        if self.0.running.swap(true, SeqCst) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.0.running.store(false, SeqCst);
            return;
        };
        let weak = Arc::downgrade(&self.0);
        runtime.spawn(async move {
            let _running = RunningFlag(weak.clone());
            let mut delay = Duration::from_millis(100);
            loop {
                tokio::time::sleep(delay).await;
                let Some(shared) = weak.upgrade() else { return };
                if Replayer(shared).replay().await {
                    return;
                }
                delay = (delay * 2).min(Duration::from_millis(250));
            }
        });
    }

    /// Replays the queue, stopping at the first failure; true when it is
    /// empty afterwards. One replay runs at a time.
    async fn replay(&self) -> bool {
        let shared = &self.0;
        let Ok(_guard) = shared.replaying.try_lock() else {
            return false;
        };
        let snapshot = shared
            .queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .snapshot();
        if snapshot.flush.is_none() && snapshot.targets.is_empty() {
            return true;
        }
        // Others may have served what these should have cleared since they
        // failed: tell them to trust nothing stored before now.
        if let Err(e) = shared.store.before_replay().await {
            tracing::debug!(error = %e, "queued invalidations not replayed yet");
            return false;
        }
        if snapshot.flush.is_some() {
            if let Err(e) = shared.store.delete_prefix(&shared.namespace).await {
                tracing::debug!(error = %e, "namespace flush not replayed yet");
                return false;
            }
            tracing::warn!(namespace = %shared.namespace, "namespace flushed after the invalidation queue overflowed");
        }
        let targets: Vec<Pattern> = snapshot.targets.iter().map(|(p, _)| p.clone()).collect();
        let failed = match super::targets::delete(shared.store.as_ref(), &targets, true).await {
            Ok(_) => HashSet::new(),
            Err((e, failed)) => {
                tracing::debug!(error = %e, "queued invalidations not replayed yet");
                // A set: the queue holds up to 10 000 targets.
                failed.into_iter().collect()
            }
        };
        let done: Vec<(Pattern, u64)> = snapshot
            .targets
            .into_iter()
            .filter(|(p, _)| !failed.contains(p))
            .collect();
        let empty = {
            let mut queue = shared.queue.lock().unwrap_or_else(|e| e.into_inner());
            let before = queue.len();
            queue.landed(snapshot.flush, &done);
            queue_changed(before, queue.len());
            let empty = queue.is_empty();
            shared.pending.store(!empty, SeqCst);
            empty
        };
        if !done.is_empty() || snapshot.flush.is_some() {
            shared
                .stats
                .recorder("", FamilyKind::Cached)
                .add(|c| &c.invalidations_replayed, done.len() as u64);
            tracing::info!(replayed = done.len(), "queued cache invalidations landed");
        }
        empty
    }
}

/// Reports a change of the queue's length to the `metrics` gauge.
fn queue_changed(_before: usize, _after: usize) {
    #[cfg(feature = "metrics")]
    if _before != _after {
        let delta =
            i64::try_from(_after).unwrap_or(i64::MAX) - i64::try_from(_before).unwrap_or(i64::MAX);
        crate::stats::metrics::queue_changed(delta);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exact(k: &str) -> Pattern {
        Pattern::Exact(k.into())
    }

    #[test]
    fn queue_dedups_and_overflows_into_a_flush() {
        let mut q = Queue::default();
        assert_eq!(q.push([exact("a"), exact("a")], 2), 0);
        assert_eq!(q.order.len(), 1);
        assert_eq!(q.push([Pattern::Prefix("b:".into())], 2), 0);
        assert_eq!(
            q.push([exact("c")], 2),
            1,
            "third distinct target overflows"
        );
        assert!(q.flush);
        assert_eq!(q.order, [Pattern::Prefix("b:".into()), exact("c")]);
    }

    #[test]
    fn a_target_queued_again_during_a_replay_stays_queued() {
        let mut q = Queue::default();
        q.push([exact("k"), exact("other")], 10);
        let snapshot = q.snapshot();
        q.push([exact("k")], 10); // failed again while the replay ran
        q.landed(snapshot.flush, &snapshot.targets);
        assert_eq!(q.order, [exact("k")], "the newer invalidation of k is kept");
    }

    #[test]
    fn a_drop_during_a_flush_keeps_the_flush_scheduled() {
        let mut q = Queue::default();
        q.push([exact("a"), exact("b")], 1);
        let snapshot = q.snapshot();
        assert!(snapshot.flush.is_some());
        q.push([exact("x"), exact("y")], 1); // x dropped while the flush ran
        q.landed(snapshot.flush, &snapshot.targets);
        assert!(q.flush, "x is covered only by another flush");
    }
}
