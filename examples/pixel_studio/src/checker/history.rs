//! The oracle's record: every write's start and completion, and the value
//! of every read path in each database state `S_0, S_1, …` (state `S_k` is
//! the one the snapshot after write `k` saw), kept as the list of changes
//! per path so that a run of thousands of writes costs only what changed.
//!
//! ## The staleness rule
//!
//! A read of path `R` sent at `t0` and answered at `t1` with value `v`,
//! where `k` is the last write completed before `t0` and `m` the last one
//! started before `t1`, is **fresh** iff `v == S_j[R]` for some `j` in
//! `k..=m`. Otherwise it is stale, and its age is `t0 - c_{j*+1}`, where
//! `j*` is the newest state before `k` that had `v`: the time since the
//! write that made `v` obsolete completed. A value no state `0..=m` had is
//! *unexplained*.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

/// One write, numbered from 1 (state `S_k` follows write `k`).
#[derive(Debug, Clone)]
pub(crate) struct WriteRecord {
    pub(crate) begin: Instant,
    pub(crate) complete: Option<Instant>,
    pub(crate) instance: usize,
    pub(crate) action: String,
}

/// What the record says of one read.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Verdict {
    Fresh,
    /// `v` was obsoleted by write `by`, which completed `age` before `t0`.
    Stale {
        age: Duration,
        by: usize,
    },
    /// No state up to `m` had `v`.
    Unexplained,
    /// A state the verdict needs is not stored yet (a write in progress).
    Pending,
}

/// The bounds of a read: writes `1..=k` completed before it was sent,
/// writes `1..=m` had started before its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Bounds {
    pub(crate) k: usize,
    pub(crate) m: usize,
}

#[derive(Default)]
pub(crate) struct History {
    /// `writes[k - 1]` is write `k`.
    writes: Vec<WriteRecord>,
    /// States `S_0..S_{stored - 1}` are recorded.
    stored: usize,
    /// Per path, `(state, value)` for each state whose value differs from
    /// the one before (the first entry: the first state the path was in).
    paths: HashMap<String, Vec<(usize, Arc<Value>)>>,
}

impl History {
    /// Write `k` starts now; returns `k`. The clock is read under the
    /// caller's lock, so a read answered before this call never counts it.
    pub(crate) fn begin(&mut self, instance: usize, action: String) -> usize {
        self.writes.push(WriteRecord {
            begin: Instant::now(),
            complete: None,
            instance,
            action,
        });
        self.writes.len()
    }

    /// Write `k` has its answer now.
    pub(crate) fn complete(&mut self, k: usize) {
        self.writes[k - 1].complete = Some(Instant::now());
    }

    /// Records state `S_k` (after states `0..k`); whether it differs from
    /// `S_{k-1}` on some path (a path first read in `S_k` counts: a write
    /// made what it names).
    pub(crate) fn store(&mut self, k: usize, state: HashMap<String, Value>) -> bool {
        debug_assert_eq!(k, self.stored, "states are stored in order");
        let mut changed = false;
        for (path, value) in state {
            let changes = self.paths.entry(path).or_default();
            if changes.last().is_none_or(|(_, last)| **last != value) {
                changes.push((k, Arc::new(value)));
                changed = true;
            }
        }
        self.stored = k + 1;
        changed && k > 0
    }

    pub(crate) fn write(&self, k: usize) -> &WriteRecord {
        &self.writes[k - 1]
    }

    /// The writes among `from..=to` that changed `path`: those whose
    /// state's value of it differs from the one before.
    pub(crate) fn changed_by(
        &self,
        path: &str,
        from: usize,
        to: usize,
    ) -> impl Iterator<Item = usize> + '_ {
        let changes = self.paths.get(path).map(Vec::as_slice).unwrap_or(&[]);
        changes
            .iter()
            .map(|(state, _)| *state)
            .filter(move |state| *state >= from.max(1) && *state <= to)
    }

    /// `k` and `m` of a read sent at `t0` and answered at `t1`.
    pub(crate) fn bounds(&self, t0: Instant, t1: Instant) -> Bounds {
        // Writes are serialized: completions and starts are in order.
        let k = self
            .writes
            .partition_point(|w| w.complete.is_some_and(|c| c < t0));
        let m = self.writes.partition_point(|w| w.begin < t1);
        Bounds { k, m }
    }

    /// The value of `path` in state `j`, if the path was known then.
    fn at(changes: &[(usize, Arc<Value>)], j: usize) -> Option<&Arc<Value>> {
        let i = changes.partition_point(|(state, _)| *state <= j);
        i.checked_sub(1).map(|i| &changes[i].1)
    }

    /// The values `path` had in states `k..=m`, or `None` when one of them
    /// is not stored yet.
    pub(crate) fn allowed(&self, path: &str, b: Bounds) -> Option<Vec<Arc<Value>>> {
        if b.m >= self.stored {
            return None;
        }
        let changes = self.paths.get(path).map(Vec::as_slice).unwrap_or(&[]);
        let mut allowed: Vec<Arc<Value>> = Self::at(changes, b.k).into_iter().cloned().collect();
        allowed.extend(
            changes
                .iter()
                .filter(|(state, _)| *state > b.k && *state <= b.m)
                .map(|(_, v)| v.clone()),
        );
        Some(allowed)
    }

    /// The verdict on a read of `path` with bounds `b` sent at `t0` that
    /// returned `v`.
    pub(crate) fn judge(&self, path: &str, v: &Value, b: Bounds, t0: Instant) -> Verdict {
        let changes = self.paths.get(path).map(Vec::as_slice).unwrap_or(&[]);
        // Only the states stored so far (a later one is not the last
        // change before it).
        let fresh = b.k < self.stored && {
            let upto = b.m.min(self.stored - 1);
            Self::at(changes, b.k).is_some_and(|s| **s == *v)
                || changes
                    .iter()
                    .any(|(state, s)| *state > b.k && *state <= upto && **s == *v)
        };
        if fresh {
            return Verdict::Fresh;
        }
        if b.m >= self.stored {
            return Verdict::Pending;
        }
        // The newest state before k that had v: change i covers states
        // changes[i].0 ..= changes[i + 1].0 - 1.
        let before_k = changes.partition_point(|(state, _)| *state < b.k);
        for i in (0..before_k).rev() {
            if *changes[i].1 == *v {
                let last = changes
                    .get(i + 1)
                    .map_or(b.k - 1, |(next, _)| (next - 1).min(b.k - 1));
                let by = last + 1;
                let completed = self.writes[by - 1]
                    .complete
                    .expect("a write before k completed");
                return Verdict::Stale {
                    age: t0.saturating_duration_since(completed),
                    by,
                };
            }
        }
        Verdict::Unexplained
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn state(pairs: &[(&str, Value)]) -> HashMap<String, Value> {
        pairs
            .iter()
            .map(|(p, v)| ((*p).to_owned(), v.clone()))
            .collect()
    }

    /// Three writes changing `/a` from 0 to 1 to 1 to 2, one reading at a time.
    fn three_writes() -> (History, Vec<Instant>) {
        let mut h = History::default();
        let mut marks = vec![Instant::now()];
        h.store(0, state(&[("/a", json!(0)), ("/b", json!("x"))]));
        for (k, a) in [(1, 1), (2, 1), (3, 2)] {
            assert_eq!(h.begin(0, format!("w{k}")), k);
            h.complete(k);
            marks.push(Instant::now());
            h.store(k, state(&[("/a", json!(a)), ("/b", json!("x"))]));
        }
        (h, marks)
    }

    #[test]
    fn a_value_of_the_states_in_the_bounds_is_fresh() {
        let (h, marks) = three_writes();
        let b = Bounds { k: 1, m: 3 };
        for v in [json!(1), json!(2)] {
            assert_eq!(h.judge("/a", &v, b, marks[3]), Verdict::Fresh);
        }
        assert_eq!(h.allowed("/a", b).unwrap().len(), 2);
        assert_eq!(
            h.judge("/b", &json!("x"), Bounds { k: 3, m: 3 }, marks[3]),
            Verdict::Fresh
        );
    }

    #[test]
    fn an_older_value_is_stale_since_the_write_that_replaced_it() {
        let (h, marks) = three_writes();
        let t0 = Instant::now();
        match h.judge("/a", &json!(0), Bounds { k: 3, m: 3 }, t0) {
            Verdict::Stale { by, age } => {
                assert_eq!(by, 1);
                assert_eq!(age, t0 - h.write(1).complete.unwrap());
            }
            other => panic!("{other:?}"),
        }
        // 1 was the value of states 1 and 2: write 3 made it obsolete.
        match h.judge("/a", &json!(1), Bounds { k: 3, m: 3 }, marks[3]) {
            Verdict::Stale { by, .. } => assert_eq!(by, 3),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_value_no_state_had_is_unexplained_and_a_missing_state_pending() {
        let (mut h, _) = three_writes();
        let now = Instant::now();
        assert_eq!(
            h.judge("/a", &json!(7), Bounds { k: 3, m: 3 }, now),
            Verdict::Unexplained
        );
        assert_eq!(
            h.judge("/nope", &json!(0), Bounds { k: 0, m: 3 }, now),
            Verdict::Unexplained
        );
        let k = h.begin(1, "w4".into());
        let t1 = Instant::now();
        h.complete(k);
        // Write 4 completed but its state is not stored: reads sent after
        // it wait, whatever the last stored state says.
        let later = Instant::now();
        let b4 = h.bounds(later, later);
        assert_eq!(b4, Bounds { k: 4, m: 4 });
        assert_eq!(h.judge("/a", &json!(2), b4, later), Verdict::Pending);
        let b = h.bounds(now, t1);
        assert_eq!(b, Bounds { k: 3, m: 4 });
        assert_eq!(h.judge("/a", &json!(3), b, now), Verdict::Pending);
        assert_eq!(h.judge("/a", &json!(2), b, now), Verdict::Fresh);
        assert!(h.allowed("/a", b).is_none());
        h.store(k, state(&[("/a", json!(3))]));
        assert_eq!(h.judge("/a", &json!(3), b, now), Verdict::Fresh);
    }

    #[test]
    fn the_writes_that_changed_a_path_are_those_its_value_changed_at() {
        let (mut h, _) = three_writes();
        assert_eq!(h.changed_by("/a", 1, 3).collect::<Vec<_>>(), [1, 3]);
        assert_eq!(h.changed_by("/a", 2, 3).collect::<Vec<_>>(), [3]);
        assert_eq!(h.changed_by("/a", 2, 2).count(), 0);
        // S_0 is no write's.
        assert_eq!(h.changed_by("/b", 0, 3).count(), 0);
        assert_eq!(h.changed_by("/nope", 0, 3).count(), 0);
        let k = h.begin(0, "w4".into());
        h.complete(k);
        assert!(!h.store(k, state(&[("/a", json!(2)), ("/b", json!("x"))])));
        let k = h.begin(0, "w5".into());
        h.complete(k);
        assert!(h.store(k, state(&[("/a", json!(2)), ("/b", json!("y"))])));
        assert_eq!(h.changed_by("/b", 1, 5).collect::<Vec<_>>(), [5]);
    }

    #[test]
    fn bounds_count_completed_and_started_writes() {
        let (h, marks) = three_writes();
        assert_eq!(h.bounds(marks[0], marks[0]).k, 0);
        let b = h.bounds(marks[1], Instant::now());
        assert_eq!(b, Bounds { k: 1, m: 3 });
    }
}
