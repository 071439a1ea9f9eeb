//! Invalidations that always land: a failed invalidation is queued in the
//! process and replayed when the backend answers again.
//!
//! ## Behavior
//!
//! * A failed invalidation (Redis down, timeout) is logged at warn, counted,
//!   and its keys, prefixes and tags go in a queue (deduplicated).
//! * While anything is queued, this cache is bypassed: calls run their body
//!   and store nothing, so this process never serves an entry it failed to
//!   invalidate. Each call first tries to replay the queue; a background
//!   task also retries (with backoff, up to every 5 s) until it is empty.
//! * The queue is bounded (10 000 by default). When full, the oldest entry
//!   is dropped and the whole namespace is marked for a flush: the next
//!   replay deletes every key under the namespace (every key in the database
//!   when there is none) before the rest of the queue. Conservative, never
//!   silent: logged at error and counted in `namespace_flushes`.

use std::collections::{HashSet, VecDeque};
use std::sync::Weak;
use std::sync::atomic::Ordering::{AcqRel, Acquire, Release};
use std::time::Duration;

use crate::cache::{Cache, Inner};
use crate::key::Pattern;

/// Queued invalidations, over full (namespaced) keys.
#[derive(Default)]
pub(crate) struct Queue {
    order: VecDeque<Pattern>,
    set: HashSet<Pattern>,
    flush: bool,
}

impl Queue {
    pub(crate) fn is_empty(&self) -> bool {
        self.order.is_empty() && !self.flush
    }

    /// Adds targets; returns whether the queue overflowed into a flush.
    fn push(&mut self, targets: impl IntoIterator<Item = Pattern>, capacity: usize) -> bool {
        let mut overflowed = false;
        for target in targets {
            if self.set.insert(target.clone()) {
                self.order.push_back(target);
            }
            while self.order.len() > capacity {
                if let Some(oldest) = self.order.pop_front() {
                    self.set.remove(&oldest);
                }
                overflowed |= !self.flush;
                self.flush = true;
            }
        }
        overflowed
    }
}

impl Cache {
    /// Queues invalidations that failed, over full keys, and makes sure a
    /// replay task runs.
    pub(crate) fn enqueue(&self, targets: Vec<Pattern>) {
        let n = targets.len() as u64;
        let overflowed = {
            let mut queue = self.0.pending.lock().unwrap_or_else(|e| e.into_inner());
            let overflowed = queue.push(targets, self.0.queue_capacity);
            self.0.has_pending.store(!queue.is_empty(), Release);
            overflowed
        };
        let rec = self.recorder(None);
        rec.add(|c| &c.invalidations_queued, n);
        if overflowed {
            rec.add(|c| &c.namespace_flushes, 1);
            tracing::error!(
                namespace = %self.0.namespace,
                capacity = self.0.queue_capacity,
                "the invalidation replay queue is full: the whole namespace will be cleared when the backend answers"
            );
        }
        self.spawn_replayer();
    }

    fn spawn_replayer(&self) {
        if self.0.replayer_running.swap(true, AcqRel) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.0.replayer_running.store(false, Release);
            return;
        };
        let weak: Weak<Inner> = std::sync::Arc::downgrade(&self.0);
        runtime.spawn(async move {
            let mut delay = Duration::from_millis(100);
            loop {
                tokio::time::sleep(delay).await;
                let Some(inner) = weak.upgrade() else { return };
                let cache = Cache(inner);
                if cache.replay().await {
                    cache.0.replayer_running.store(false, Release);
                    // Something queued after the last replay finished?
                    if cache.0.has_pending.load(Acquire) {
                        cache.spawn_replayer();
                    }
                    return;
                }
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        });
    }

    /// Whether the cache may be used: true when nothing is queued, or when
    /// a replay just emptied the queue.
    pub(crate) async fn ready(&self) -> bool {
        !self.0.has_pending.load(Acquire) || self.replay().await
    }

    /// Replays the queue; true when it is empty afterwards. Only one replay
    /// runs at a time; a caller that finds one running does not wait.
    pub(crate) async fn replay(&self) -> bool {
        let Ok(_guard) = self.0.replaying.try_lock() else {
            return false;
        };
        let (flush, batch): (bool, Vec<Pattern>) = {
            let queue = self.0.pending.lock().unwrap_or_else(|e| e.into_inner());
            (queue.flush, queue.order.iter().cloned().collect())
        };
        if flush {
            if let Err(e) = self.0.backend.delete_prefix(&self.0.namespace).await {
                tracing::debug!(error = %e, "namespace flush not replayed yet");
                return false;
            }
            self.0
                .pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .flush = false;
            tracing::warn!(namespace = %self.0.namespace, "namespace flushed after the invalidation queue overflowed");
        }
        let failed = match self.delete_targets(&batch).await {
            Ok(_) => Vec::new(),
            Err((e, failed)) => {
                tracing::debug!(error = %e, "queued invalidations not replayed yet");
                failed
            }
        };
        let landed = batch.len() - failed.len();
        let mut queue = self.0.pending.lock().unwrap_or_else(|e| e.into_inner());
        let q = &mut *queue;
        for done in batch.iter().filter(|p| !failed.contains(p)) {
            q.set.remove(done);
        }
        q.order.retain(|p| q.set.contains(p));
        let empty = queue.is_empty();
        self.0.has_pending.store(!empty, Release);
        drop(queue);
        if landed > 0 {
            self.0.flights.invalidated();
            self.recorder(None)
                .add(|c| &c.invalidations_replayed, landed as u64);
            tracing::info!(replayed = landed, "queued cache invalidations landed");
        }
        empty
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_dedups_and_overflows_into_a_flush() {
        let mut q = Queue::default();
        assert!(!q.push([Pattern::Exact("a".into()), Pattern::Exact("a".into())], 2));
        assert_eq!(q.order.len(), 1);
        assert!(!q.push([Pattern::Prefix("b:".into())], 2));
        assert!(
            q.push([Pattern::Exact("c".into())], 2),
            "third distinct target overflows"
        );
        assert!(q.flush);
        assert_eq!(
            q.order,
            [Pattern::Prefix("b:".into()), Pattern::Exact("c".into())]
        );
        assert!(
            !q.push([Pattern::Exact("d".into())], 2),
            "a flush is reported once"
        );
    }
}
