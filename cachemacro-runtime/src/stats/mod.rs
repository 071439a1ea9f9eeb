//! Counters: totals per [`Cache`](crate::Cache) and per key family, the
//! manual API's apart.
//!
//! A key family is one `#[cached]` or `#[invalidates]` template, such as
//! `user-collections:<user_id>`. Reads, loads and stores count under the
//! `#[cached]` template; invalidations under the template as written in
//! `#[invalidates]` (`sets:user:<set.user_id>:*`), which is the cached
//! family's own name when the two are written alike. Counting is a few
//! relaxed atomic adds; the family table is read-locked on the hot path
//! and written once per family.
//!
//! ## Behavior
//!
//! * **Totals and families describe cached calls** (`#[cached]`,
//!   [`Cache::get_or_load`](crate::Cache::get_or_load)) and invalidations.
//!   The manual API's reads and writes (`get`, `get_many`, `set`,
//!   `set_many`, `set_if_absent`, `incr`) count in [`Stats::manual`]
//!   instead: a health endpoint probing `cache.get("health")` every second
//!   would otherwise drag the hit ratio of the whole cache. Manual
//!   invalidations (`delete`, `delete_pattern`, `invalidate_tag`) are
//!   invalidations like any other and count in the totals.
//! * **A template both cached and invalidated** (an `#[invalidates]`
//!   pattern written exactly as the `#[cached]` key) has one set of
//!   counters, and its [`FamilyKind`] is `Cached` once any cached call
//!   counted under it.
//! * With the `metrics` feature each family's counters also report to the
//!   `metrics` facade (`metrics.rs`), through handles taken when the family
//!   is first counted on a cache.

mod count;
#[cfg(feature = "metrics")]
pub(crate) mod metrics;
mod snapshot;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock, RwLock};

pub(crate) use count::Count;
pub use snapshot::{FamilyKind, ManualStats};

macro_rules! counters {
    ($( $(#[doc = $doc:literal])* $name:ident ),* $(,)?) => {
        /// One set of counters (a cache's totals, one family's, or the
        /// manual API's).
        #[derive(Default, Debug)]
        pub(crate) struct Counters {
            $( pub(crate) $name: Count, )*
            /// What counted here (see [`FamilyKind`]).
            kinds: Kinds,
            #[cfg(feature = "metrics")]
            extra: metrics::Extra,
        }

        impl Counters {
            fn snapshot(&self) -> FamilyStats {
                let mut figures = FamilyStats { $( $name: self.$name.get(), )* ..FamilyStats::default() };
                figures.kind = self.kinds.kind();
                figures
            }

            /// Each figure's name, its doc, and the figure.
            #[cfg(feature = "metrics")]
            fn each_mut(&mut self, mut f: impl FnMut(&'static str, &'static str, &mut Count)) {
                $( f(
                    concat!("cachemacro_", stringify!($name), "_total"),
                    concat!($($doc),*).trim_ascii(),
                    &mut self.$name,
                ); )*
            }
        }

        /// Figures for one key family; see [`Stats::family`].
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        #[non_exhaustive]
        pub struct FamilyStats {
            /// Whether the template is a `#[cached]` family or only an
            /// invalidation pattern (see [`FamilyKind`]).
            pub kind: FamilyKind,
            $( $(#[doc = $doc])* pub $name: u64, )*
        }

        impl FamilyStats {
            /// Each figure, by name, in declaration order (for serde).
            pub(crate) fn figures(&self) -> [(&'static str, u64); COUNTERS] {
                [ $( (stringify!($name), self.$name), )* ]
            }
        }

        /// How many figures a [`FamilyStats`] has.
        const COUNTERS: usize = [$( stringify!($name) ),*].len();

        /// A snapshot of a cache's counters: totals of the cached calls,
        /// plus [`Stats::family`] and the manual API's own [`Stats::manual`].
        ///
        /// ```
        /// # #[tokio::main(flavor = "current_thread")] async fn main() {
        /// use std::time::Duration;
        /// use cachemacro_runtime::{Cache, EntryOptions};
        ///
        /// let cache = Cache::memory();
        /// let options = EntryOptions::new(Duration::from_secs(60)).family("answer:<id>");
        /// for _ in 0..2 {
        ///     let _: Result<u32, String> = cache.get_or_load("answer:1", &options, || async { Ok(42) }).await;
        /// }
        /// let _ = cache.get::<u32>("health").await; // a probe: counted apart
        /// let stats = cache.stats();
        /// assert_eq!((stats.hits, stats.misses), (1, 1));
        /// assert_eq!(stats.manual.misses, 1);
        /// assert_eq!(stats.family("answer:<id>").unwrap().hit_ratio(), Some(0.5));
        /// # }
        /// ```
        #[derive(Debug, Clone, Default, PartialEq, Eq)]
        #[non_exhaustive]
        pub struct Stats {
            $( $(#[doc = $doc])* pub $name: u64, )*
            /// The manual API's reads and writes ([`Cache::get`](crate::Cache::get),
            /// `set`, `get_many`, `incr`, …), counted here and not in the
            /// totals above, so a health probe does not move the hit ratio.
            pub manual: ManualStats,
            families: BTreeMap<String, FamilyStats>,
        }

        impl Stats {
            fn new(
                total: FamilyStats,
                manual: ManualStats,
                families: BTreeMap<String, FamilyStats>,
            ) -> Self {
                Stats { $( $name: total.$name, )* manual, families }
            }

            /// The totals, as one family's figures (for serde).
            pub(crate) fn totals(&self) -> FamilyStats {
                FamilyStats { $( $name: self.$name, )* ..FamilyStats::default() }
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

/// What a family's counters have counted: cached calls, invalidations, or both.
#[derive(Debug, Default)]
struct Kinds {
    cached: AtomicBool,
    invalidation: AtomicBool,
}

impl Kinds {
    fn mark(&self, kind: FamilyKind) {
        let flag = match kind {
            FamilyKind::Cached => &self.cached,
            FamilyKind::Invalidation => &self.invalidation,
        };
        if !flag.load(Relaxed) {
            flag.store(true, Relaxed);
        }
    }

    /// `Cached` once any cached call counted (see the module's Behavior).
    fn kind(&self) -> FamilyKind {
        if !self.cached.load(Relaxed) && self.invalidation.load(Relaxed) {
            FamilyKind::Invalidation
        } else {
            FamilyKind::Cached
        }
    }
}

/// All counters of one cache.
#[derive(Debug)]
pub(crate) struct StatsRegistry {
    /// Tells this registry's counters apart in a [`FamilySlot`].
    id: u64,
    total: Counters,
    /// The manual API's reads and writes.
    manual: Counters,
    families: RwLock<HashMap<Box<str>, Arc<Counters>>>,
    /// The handles events of no family report to (`family=""`).
    #[cfg(feature = "metrics")]
    unnamed: OnceLock<Counters>,
    /// Whether this cache described its series to the recorder.
    #[cfg(feature = "metrics")]
    described: std::sync::Once,
}

impl Default for StatsRegistry {
    fn default() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        StatsRegistry {
            id: NEXT.fetch_add(1, Relaxed),
            total: Counters::default(),
            manual: Counters::default(),
            families: RwLock::default(),
            #[cfg(feature = "metrics")]
            unnamed: OnceLock::new(),
            #[cfg(feature = "metrics")]
            described: std::sync::Once::new(),
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
    /// No family: only the `metrics` handles of `family=""` are bumped.
    #[cfg(feature = "metrics")]
    Unnamed(&'a Counters),
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

    #[inline]
    pub(crate) fn add(&self, field: fn(&Counters) -> &Count, n: u64) {
        field(self.total).count(n);
        let family = match &self.family {
            Family::None => return,
            Family::Remembered(f) => *f,
            Family::Looked(f) => f,
            #[cfg(feature = "metrics")]
            Family::Unnamed(f) => {
                field(f).report(n);
                return;
            }
        };
        let count = field(family);
        count.count(n);
        count.report(n);
    }

    /// A load's duration (`cachemacro_load_duration_seconds`); nothing
    /// without the `metrics` feature.
    #[inline]
    pub(crate) fn load_took(&self, _took: std::time::Duration) {
        #[cfg(feature = "metrics")]
        match &self.family {
            Family::None => {}
            Family::Remembered(f) | Family::Unnamed(f) => f.extra.load_took(_took),
            Family::Looked(f) => f.extra.load_took(_took),
        }
    }
}

impl StatsRegistry {
    /// As [`StatsRegistry::recorder`] for a cached call, remembering the
    /// family's counters in `slot` for the next call with the same options.
    pub(crate) fn recorder_in<'a>(&'a self, family: &str, slot: &'a FamilySlot) -> Recorder<'a> {
        if family.is_empty() {
            return self.recorder("", FamilyKind::Cached);
        }
        if let Some((id, counters)) = slot.0.get()
            && *id == self.id
        {
            return Recorder {
                total: &self.total,
                family: Family::Remembered(counters),
            };
        }
        let recorder = self.recorder(family, FamilyKind::Cached);
        if let Family::Looked(counters) = &recorder.family {
            let _ = slot.0.set((self.id, counters.clone()));
        }
        recorder
    }

    /// Where to count events of `family` (`""`: the totals only), marking
    /// the family as counting `kind`.
    pub(crate) fn recorder(&self, family: &str, kind: FamilyKind) -> Recorder<'_> {
        if family.is_empty() {
            return Recorder {
                total: &self.total,
                family: self.unnamed(),
            };
        }
        let counters = {
            let read = self.families.read().unwrap_or_else(|e| e.into_inner());
            match read.get(family) {
                Some(c) => c.clone(),
                None => {
                    drop(read);
                    let mut write = self.families.write().unwrap_or_else(|e| e.into_inner());
                    write
                        .entry(family.into())
                        .or_insert_with(|| Arc::new(self.counters_for(family)))
                        .clone()
                }
            }
        };
        counters.kinds.mark(kind);
        Recorder {
            total: &self.total,
            family: Family::Looked(counters),
        }
    }

    /// Where the manual API counts its reads and writes: [`Stats::manual`].
    pub(crate) fn manual(&self) -> Recorder<'_> {
        Recorder {
            total: &self.manual,
            family: Family::None,
        }
    }

    #[cfg(feature = "metrics")]
    fn unnamed(&self) -> Family<'_> {
        Family::Unnamed(self.unnamed.get_or_init(|| self.counters_for("")))
    }

    #[cfg(not(feature = "metrics"))]
    fn unnamed(&self) -> Family<'_> {
        Family::None
    }

    pub(crate) fn snapshot(&self) -> Stats {
        let families = self.families.read().unwrap_or_else(|e| e.into_inner());
        let families = families
            .iter()
            .map(|(k, v)| (k.to_string(), v.snapshot()))
            .collect();
        let manual = ManualStats::from(&self.manual.snapshot());
        Stats::new(self.total.snapshot(), manual, families)
    }
}

impl StatsRegistry {
    /// The counters of a family first counted now: with the `metrics`
    /// feature, holding the handles of its series (the first family of a
    /// cache describes every series).
    fn counters_for(&self, _family: &str) -> Counters {
        #[allow(unused_mut)]
        let mut counters = Counters::default();
        #[cfg(feature = "metrics")]
        {
            self.described.call_once(metrics::describe);
            metrics::attach(&mut counters, _family);
        }
        counters
    }
}
