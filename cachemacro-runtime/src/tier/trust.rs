//! Which stored entries an instance may serve, after a period in which it
//! may have missed invalidations.
//!
//! ## Behavior
//!
//! * Each shard (the one Redis node, or each slot of a cluster) has a
//!   watermark on the server's clock: an entry stored before it is not
//!   trusted (read as a miss and refilled). It starts at 0: an instance
//!   that has seen no outage trusts what it finds.
//! * A shard whose node failed to answer (a probe, a read), or every shard
//!   while the announcement channel is down, is *suspect*: nothing stored
//!   in it is trusted until a probe sent after the last suspicion reaches
//!   its node again; the watermark then becomes that node's clock at the
//!   probe, so everything stored before the recovery is refilled.
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
    /// The highest watermark any announcement asked for.
    floor: AtomicU64,
    /// Whether any watermark was ever set: until then a read skips the check.
    touched: AtomicBool,
    /// Bumped by every suspicion; a probe that began before one cannot
    /// clear it. Held while marking or clearing.
    suspicions: Mutex<u64>,
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
        Trust {
            from: (0..shards.max(1)).map(|_| AtomicU64::new(0)).collect(),
            floor: AtomicU64::new(0),
            touched: AtomicBool::new(false),
            suspicions: Mutex::new(0),
            probing: AtomicU64::new(0),
            // On a cluster a probe asks every primary at once, and one
            // stalled primary must not stop the others' hits: there each
            // node's own probe timeout marks its slots.
            overdue_ms: match shards {
                0 | 1 => u64::try_from(overdue.as_millis()).unwrap_or(u64::MAX),
                _ => u64::MAX,
            },
            base: Instant::now(),
        }
    }

    fn now_ms(&self) -> u64 {
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
        if probing != 0 && self.now_ms().saturating_sub(probing - 1) > self.overdue_ms {
            return false;
        }
        if !self.touched.load(SeqCst) {
            return true;
        }
        let from = self.from.get(shard()).map_or(SUSPECT, |w| w.load(SeqCst));
        filled_at >= from && from != SUSPECT
    }

    /// A probe goes out now.
    pub(crate) fn probe_sent(&self) {
        self.probing.store(self.now_ms().saturating_add(1), SeqCst);
    }

    /// The probe came back (or gave up).
    pub(crate) fn probe_done(&self) {
        self.probing.store(0, SeqCst);
    }

    /// The suspicion count a probe must see unchanged to clear anything.
    pub(crate) fn generation(&self) -> u64 {
        *self.suspicions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Marks shards suspect.
    pub(crate) fn suspect(&self, shards: &[RangeInclusive<usize>]) {
        let mut suspicions = self.suspicions.lock().unwrap_or_else(|e| e.into_inner());
        *suspicions += 1;
        self.touched.store(true, SeqCst);
        for range in shards {
            for w in self.from.get(range.clone()).unwrap_or_default() {
                w.store(SUSPECT, SeqCst);
            }
        }
    }

    /// Marks every shard suspect.
    pub(crate) fn suspect_all(&self) {
        self.suspect(&[0..=self.from.len() - 1]);
    }

    /// A probe sent at suspicion `generation` found the node of `shards`
    /// answering with its clock at `now_ms`: its suspect shards trust what
    /// is stored from then on. False when a newer suspicion came meanwhile.
    pub(crate) fn recover(
        &self,
        shards: &[RangeInclusive<usize>],
        now_ms: u64,
        generation: u64,
    ) -> bool {
        let suspicions = self.suspicions.lock().unwrap_or_else(|e| e.into_inner());
        if *suspicions != generation {
            return false;
        }
        let at = now_ms.max(self.floor.load(SeqCst));
        for range in shards {
            for w in self.from.get(range.clone()).unwrap_or_default() {
                if w.load(SeqCst) == SUSPECT {
                    w.store(at, SeqCst);
                }
            }
        }
        true
    }

    /// Raises every watermark to at least `at_ms` (an announcement).
    pub(crate) fn raise(&self, at_ms: u64) {
        let _one_at_a_time = self.suspicions.lock().unwrap_or_else(|e| e.into_inner());
        self.touched.store(true, SeqCst);
        self.floor.fetch_max(at_ms, SeqCst);
        for w in self.from.iter() {
            w.fetch_max(at_ms, SeqCst);
        }
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
        let generation = trust.generation();
        trust.suspect(&[1..=2]);
        assert!(trust.trusts(|| 0, 5));
        assert!(
            !trust.trusts(|| 1, u64::MAX - 1),
            "suspect: nothing trusted"
        );
        assert!(
            !trust.recover(&[1..=2], 1_000, generation),
            "a probe sent before the suspicion clears nothing"
        );
        let generation = trust.generation();
        assert!(trust.recover(&[1..=2], 1_000, generation));
        assert!(!trust.trusts(|| 1, 999), "stored before the recovery");
        assert!(trust.trusts(|| 1, 1_000));
        assert_eq!(trust.suspect_shards(), 0);
    }

    #[test]
    fn an_announced_watermark_holds_through_a_later_recovery() {
        let trust = Trust::new(2, Duration::from_secs(1));
        trust.suspect_all();
        let generation = trust.generation();
        trust.raise(5_000);
        assert_eq!(trust.suspect_shards(), 2, "raising keeps suspicion");
        assert!(trust.recover(&[0..=1], 3_000, generation));
        assert!(!trust.trusts(|| 0, 4_000), "the announced watermark wins");
        assert!(trust.trusts(|| 0, 5_000));
        assert_eq!(trust.watermark(), 5_000);
    }
}
