//! Counters: totals per [`Cache`](crate::Cache) and per key family.
//!
//! A key family is one `#[cached]` or `#[invalidates]` template, such as
//! `user-collections:<user_id>`. Reads, loads and stores count under the
//! `#[cached]` template; invalidations under the template as written in
//! `#[invalidates]` (`sets:user:<set.user_id>:*`), which is the cached
//! family's own name when the two are written alike. Counting is a few relaxed atomic adds; the
//! family table is read-locked on the hot path and written once per family.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock, RwLock};

macro_rules! counters {
    ($( $(#[$doc:meta])* $name:ident ),* $(,)?) => {
        /// One set of counters (a cache's totals, or one family's).
        #[derive(Default, Debug)]
        pub(crate) struct Counters { $( pub(crate) $name: AtomicU64, )* }

        impl Counters {
            fn snapshot(&self) -> FamilyStats {
                FamilyStats { $( $name: self.$name.load(Relaxed), )* }
            }
        }

        /// Figures for one key family; see [`Stats::family`].
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        #[non_exhaustive]
        pub struct FamilyStats { $( $(#[$doc])* pub $name: u64, )* }

        /// A snapshot of a cache's counters: totals, plus [`Stats::family`].
        ///
        /// ```
        /// # #[tokio::main(flavor = "current_thread")] async fn main() {
        /// let cache = cachemacro_runtime::Cache::memory();
        /// let _ = cache.get::<u32>("nothing-here").await;
        /// let stats = cache.stats();
        /// assert_eq!((stats.hits, stats.misses), (0, 1));
        /// # }
        /// ```
        #[derive(Debug, Clone, Default, PartialEq, Eq)]
        #[non_exhaustive]
        pub struct Stats {
            $( $(#[$doc])* pub $name: u64, )*
            families: BTreeMap<String, FamilyStats>,
        }

        impl Stats {
            fn new(total: FamilyStats, families: BTreeMap<String, FamilyStats>) -> Self {
                Stats { $( $name: total.$name, )* families }
            }
        }
    };
}

counters! {
    /// Reads that found a usable value.
    hits,
    /// Of `hits`, those served by the in-process tier without touching Redis.
    local_hits,
    /// Entries read from Redis that this instance did not trust, because it
    /// may have missed an invalidation since they were stored (refilled).
    distrusted,
    /// Reads that found nothing usable (absent, expired, undecodable).
    misses,
    /// Function bodies run because of a miss or a cache failure.
    loads,
    /// Values written.
    stores,
    /// Backend failures and timeouts (reads, writes, invalidations),
    /// operations the circuit breaker refused while open included.
    errors,
    /// Stored bytes that did not decode as the expected type (counted as misses too).
    decode_errors,
    /// Invalidations that landed: one per exact key or prefix deleted
    /// (whether or not an entry was there), by generated code and by
    /// `delete`/`delete_pattern`.
    invalidations,
    /// Invalidations that failed (also counted in `errors`, always logged at warn).
    invalidation_errors,
    /// Failed invalidations put in the replay queue.
    invalidations_queued,
    /// Queued invalidations that landed later.
    invalidations_replayed,
    /// Queued invalidations dropped because the queue was full (a namespace
    /// flush covers them).
    invalidations_dropped,
    /// Namespace flushes scheduled because the queue overflowed.
    namespace_flushes,
    /// Loaded values not stored because their fill lease was gone: an
    /// invalidation of their key, tag or prefix came while they loaded (the
    /// race that would leave stale data), or the lease expired.
    fills_dropped,
    /// Calls that ran their body without the cache because invalidations
    /// were still waiting to be replayed, or because they ran inside a
    /// [`Pending`](crate::Pending) scope (a transaction's reads).
    bypassed,
    /// Calls that waited for another caller of the same key in this process
    /// (single-flight). Most get its value; those it had none for (it
    /// returned `Err`, panicked, or an invalidation came) then ran their own
    /// body, counted in `loads` too.
    coalesced,
    /// Calls (`lock = true`) that waited for another process's load.
    lock_waits,
    /// Lock waits that ran out and loaded anyway.
    lock_timeouts,
    /// Refreshes of an entry begun before it expired (XFetch, `beta`): by
    /// the caller that drew it, or in the background with `stale`/`timeout`.
    early_refreshes,
    /// Calls answered with a value past its freshness: while one refresh
    /// runs (`stale`), because the load passed its `timeout`, or by fail-safe
    /// (single-flight waiters given such a value count here too).
    stale_served,
    /// Loads that failed (`Err`, or `hard_timeout`) while an expired value
    /// within `fail_safe` was there, which was served instead.
    fail_safe_activations,
    /// Loads that passed their soft `timeout` with an old value to serve;
    /// each went on in the background and stored its value when done.
    soft_timeouts,
    /// Loads given up at their `hard_timeout`.
    hard_timeouts,
}

impl Stats {
    /// The figures for one key family, by its template as written in the
    /// attribute (`"user-collections:<user_id>"`); `None` if this cache has
    /// not served that family.
    pub fn family(&self, template: &str) -> Option<FamilyStats> {
        self.families.get(template).copied()
    }

    /// Every family this cache has served, by template.
    pub fn families(&self) -> impl Iterator<Item = (&str, &FamilyStats)> {
        self.families.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// `hits / (hits + misses)`, or `None` before any read.
    pub fn hit_ratio(&self) -> Option<f64> {
        let reads = self.hits + self.misses;
        (reads > 0).then(|| self.hits as f64 / reads as f64)
    }
}

/// All counters of one cache.
#[derive(Debug)]
pub(crate) struct StatsRegistry {
    /// Tells this registry's counters apart in a [`FamilySlot`].
    id: u64,
    total: Counters,
    families: RwLock<HashMap<Box<str>, Arc<Counters>>>,
}

impl Default for StatsRegistry {
    fn default() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        StatsRegistry {
            id: NEXT.fetch_add(1, Relaxed),
            total: Counters::default(),
            families: RwLock::default(),
        }
    }
}

/// A family's counters, remembered beside the options that name the family
/// (a `#[cached]` site's are `static`), so a call finds them without a
/// lookup: the one of the last registry that used these options.
#[derive(Debug, Default, Clone)]
pub(crate) struct FamilySlot(OnceLock<(u64, Arc<Counters>)>);

impl FamilySlot {
    /// An empty slot, for `const` options.
    pub(crate) const fn new() -> Self {
        FamilySlot(OnceLock::new())
    }
}

/// Where one event is counted: the totals and, for generated code, a family.
pub(crate) struct Recorder<'a> {
    total: &'a Counters,
    family: Family<'a>,
}

enum Family<'a> {
    None,
    Remembered(&'a Counters),
    Looked(Arc<Counters>),
}

impl Recorder<'_> {
    /// Counts an invalidation that landed, or one that failed.
    pub(crate) fn record_invalidation(&self, landed: bool) {
        if landed {
            self.add(|c| &c.invalidations, 1);
        } else {
            self.add(|c| &c.errors, 1);
            self.add(|c| &c.invalidation_errors, 1);
        }
    }

    pub(crate) fn add(&self, field: fn(&Counters) -> &AtomicU64, n: u64) {
        field(self.total).fetch_add(n, Relaxed);
        match &self.family {
            Family::None => {}
            Family::Remembered(f) => {
                field(f).fetch_add(n, Relaxed);
            }
            Family::Looked(f) => {
                field(f).fetch_add(n, Relaxed);
            }
        }
    }
}

impl StatsRegistry {
    /// As [`StatsRegistry::recorder`], remembering the family's counters in
    /// `slot` for the next call with the same options.
    pub(crate) fn recorder_in<'a>(&'a self, family: &str, slot: &'a FamilySlot) -> Recorder<'a> {
        if family.is_empty() {
            return self.recorder("");
        }
        if let Some((id, counters)) = slot.0.get()
            && *id == self.id
        {
            return Recorder {
                total: &self.total,
                family: Family::Remembered(counters),
            };
        }
        let recorder = self.recorder(family);
        if let Family::Looked(counters) = &recorder.family {
            let _ = slot.0.set((self.id, counters.clone()));
        }
        recorder
    }

    /// Where to count events of `family` (`""`: the totals only).
    pub(crate) fn recorder(&self, family: &str) -> Recorder<'_> {
        let family = (!family.is_empty()).then(|| {
            let name = family;
            let read = self.families.read().unwrap_or_else(|e| e.into_inner());
            match read.get(name) {
                Some(c) => c.clone(),
                None => {
                    drop(read);
                    let mut write = self.families.write().unwrap_or_else(|e| e.into_inner());
                    write.entry(name.into()).or_default().clone()
                }
            }
        });
        Recorder {
            total: &self.total,
            family: family.map_or(Family::None, Family::Looked),
        }
    }

    pub(crate) fn snapshot(&self) -> Stats {
        let families = self.families.read().unwrap_or_else(|e| e.into_inner());
        let families = families
            .iter()
            .map(|(k, v)| (k.to_string(), v.snapshot()))
            .collect();
        Stats::new(self.total.snapshot(), families)
    }
}
