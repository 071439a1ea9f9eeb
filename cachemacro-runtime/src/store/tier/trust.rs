//! Which stored entries an instance may serve, after a period in which it
//! may have missed invalidations.
//!
//! ## Behavior
//!
//! * Each shard (the one Redis node, or each slot of a cluster) has a
//!   watermark on the server's clock: an entry stored before it is not
//!   trusted (read as a miss and refilled). It starts at 0: an instance
//!   that has seen no outage trusts what it finds.
//! * A shard whose node failed to answer (a probe, or a read that timed out
//!   or lost its connection), or every shard while the announcement
//!   channel is down, is *suspect*: nothing stored in it is trusted until a
//!   probe sent after its suspicion reaches its node again; the watermark
//!   then becomes that node's clock at the probe, so everything stored
//!   before the recovery is refilled. Each shard keeps when it was made
//!   suspect, so a failure on one node never holds back another's recovery.
//! * A fill whose lease was taken before this instance learned it may have
//!   missed invalidations (see [`Trust::epoch`]) is not stored.
//! * Another instance that replays invalidations it failed to make raises
//!   every watermark to its server time (plus a margin for clocks of other
//!   nodes), so an instance that noticed nothing stops trusting older
//!   entries too.

use std::ops::RangeInclusive;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::time::{Duration, Instant};

/// A suspect shard's watermark: nothing is trusted.
const SUSPECT: u64 = u64::MAX;

pub(crate) struct Trust {
    from: Box<[AtomicU64]>,
    /// When each shard was last made suspect (local ms since `base`): only
    /// a probe sent after it can clear it.
    since: Box<[AtomicU64]>,
    /// The highest watermark any announcement asked for.
    floor: AtomicU64,
    /// Whether any watermark was ever set: until then a read skips the check.
    touched: AtomicBool,
    /// Bumped by every suspicion and raise: a fill whose lease was taken
    /// before one does not store (it may have loaded before a write whose
    /// invalidation this instance could not see).
    epoch: AtomicU64,
    /// Held while marking or clearing.
    writing: Mutex<()>,
    /// When the probe in flight was sent (ms since `base`, plus one; 0:
    /// none), and how long it may take before nothing is trusted.
    probing: AtomicU64,
    overdue_ms: u64,
    base: Instant,
}

impl Trust {
    /// `overdue`: how long a probe may go unanswered before its nodes are
    /// taken to be stalled.
    pub(crate) fn new(shards: usize, overdue: Duration) -> Trust {
        let shards = shards.max(1);
        Trust {
            from: (0..shards).map(|_| AtomicU64::new(0)).collect(),
            since: (0..shards).map(|_| AtomicU64::new(0)).collect(),
            floor: AtomicU64::new(0),
            touched: AtomicBool::new(false),
            epoch: AtomicU64::new(0),
            writing: Mutex::new(()),
            probing: AtomicU64::new(0),
            // On a cluster a probe asks every primary at once, and one
            // stalled primary must not stop the others' hits: there each
            // node's own probe timeout marks its slots.
            overdue_ms: match shards {
                1 => u64::try_from(overdue.as_millis()).unwrap_or(u64::MAX),
                _ => u64::MAX,
            },
            base: Instant::now(),
        }
    }

    /// Local ms since `base` (monotonic).
    pub(crate) fn clock(&self) -> u64 {
        u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Whether an entry of `shard` stored at `filled_at` (server ms) may be
    /// served. `shard` is asked for only when a watermark was ever set.
    ///
    /// While a probe is overdue nothing is trusted, whether or not the task
    /// that sent it has run since: a read answered the moment a stalled
    /// server resumes may have run before invalidations queued behind it.
    pub(crate) fn trusts(&self, shard: impl FnOnce() -> usize, filled_at: u64) -> bool {
        let probing = self.probing.load(SeqCst);
        if probing != 0 && self.clock().saturating_sub(probing - 1) > self.overdue_ms {
            return false;
        }
        if !self.touched.load(SeqCst) {
            return true;
        }
        let from = self.from.get(shard()).map_or(SUSPECT, |w| w.load(SeqCst));
        filled_at >= from && from != SUSPECT
    }

    /// A probe goes out now; when (local ms), to pass to [`Trust::recover`].
    pub(crate) fn probe_sent(&self) -> u64 {
        let now = self.clock();
        self.probing.store(now.saturating_add(1), SeqCst);
        now
    }

    /// The probe came back (or gave up).
    pub(crate) fn probe_done(&self) {
        self.probing.store(0, SeqCst);
    }

    /// Changes whenever this instance learns it may have missed
    /// invalidations (a suspicion, an announced watermark).
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load(SeqCst)
    }

    /// Marks shards suspect.
    pub(crate) fn suspect(&self, shards: &[RangeInclusive<usize>]) {
        let _one_at_a_time = self.writing.lock().unwrap_or_else(|e| e.into_inner());
        let now = self.clock().saturating_add(1);
        self.touched.store(true, SeqCst);
        for range in shards {
            let (Some(from), Some(since)) =
                (self.from.get(range.clone()), self.since.get(range.clone()))
            else {
                continue;
            };
            for (w, s) in from.iter().zip(since) {
                w.store(SUSPECT, SeqCst);
                s.fetch_max(now, SeqCst);
            }
        }
        self.epoch.fetch_add(1, SeqCst);
    }

    /// Marks every shard suspect.
    pub(crate) fn suspect_all(&self) {
        self.suspect(&[0..=self.from.len() - 1]);
    }

    /// A probe sent at `sent` (local ms, from [`Trust::probe_sent`]) found
    /// the node of `shards` answering with its clock at `now_ms`: those of
    /// its shards made suspect before the probe went out trust what is
    /// stored from then on.
    pub(crate) fn recover(&self, shards: &[RangeInclusive<usize>], now_ms: u64, sent: u64) {
        let _one_at_a_time = self.writing.lock().unwrap_or_else(|e| e.into_inner());
        let at = now_ms.max(self.floor.load(SeqCst)).min(SUSPECT - 1);
        for range in shards {
            let (Some(from), Some(since)) =
                (self.from.get(range.clone()), self.since.get(range.clone()))
            else {
                continue;
            };
            for (w, s) in from.iter().zip(since) {
                if w.load(SeqCst) == SUSPECT && s.load(SeqCst) <= sent {
                    w.store(at, SeqCst);
                }
            }
        }
    }

    /// Raises every watermark to at least `at_ms` (an announcement).
    pub(crate) fn raise(&self, at_ms: u64) {
        let _one_at_a_time = self.writing.lock().unwrap_or_else(|e| e.into_inner());
        let at_ms = at_ms.min(SUSPECT - 1);
        self.touched.store(true, SeqCst);
        self.floor.fetch_max(at_ms, SeqCst);
        for w in self.from.iter() {
            w.fetch_max(at_ms, SeqCst);
        }
        self.epoch.fetch_add(1, SeqCst);
    }

    /// How many shards are suspect now.
    pub(crate) fn suspect_shards(&self) -> usize {
        self.from
            .iter()
            .filter(|w| w.load(SeqCst) == SUSPECT)
            .count()
    }

    /// The highest watermark in force (server ms), suspect shards aside.
    pub(crate) fn watermark(&self) -> u64 {
        self.from
            .iter()
            .map(|w| w.load(SeqCst))
            .filter(|&w| w != SUSPECT)
            .max()
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suspicion_and_recovery() {
        let trust = Trust::new(4, Duration::from_secs(1));
        assert!(trust.trusts(|| 0, 0), "no outage yet: everything trusted");
        let early = trust.probe_sent();
        std::thread::sleep(Duration::from_millis(2));
        trust.suspect(&[1..=2]);
        assert!(trust.trusts(|| 0, 5));
        assert!(
            !trust.trusts(|| 1, u64::MAX - 1),
            "suspect: nothing trusted"
        );
        trust.recover(&[1..=2], 1_000, early);
        assert_eq!(
            trust.suspect_shards(),
            2,
            "a probe sent before the suspicion clears nothing"
        );
        std::thread::sleep(Duration::from_millis(2));
        let sent = trust.probe_sent();
        trust.recover(&[1..=1], 1_000, sent);
        assert!(!trust.trusts(|| 1, 999), "stored before the recovery");
        assert!(trust.trusts(|| 1, 1_000));
        assert_eq!(
            trust.suspect_shards(),
            1,
            "its node answered; not shard 2's"
        );
    }

    #[test]
    fn an_announced_watermark_holds_through_a_later_recovery() {
        let trust = Trust::new(2, Duration::from_secs(1));
        let epoch = trust.epoch();
        trust.suspect_all();
        assert_ne!(trust.epoch(), epoch);
        std::thread::sleep(Duration::from_millis(2));
        let sent = trust.probe_sent();
        trust.raise(5_000);
        assert_eq!(trust.suspect_shards(), 2, "raising keeps suspicion");
        trust.recover(&[0..=1], 3_000, sent);
        assert!(!trust.trusts(|| 0, 4_000), "the announced watermark wins");
        assert!(trust.trusts(|| 0, 5_000));
        assert_eq!(trust.watermark(), 5_000);
        trust.raise(u64::MAX);
        assert_eq!(
            trust.suspect_shards(),
            0,
            "no announcement makes a shard suspect"
        );
    }
}
