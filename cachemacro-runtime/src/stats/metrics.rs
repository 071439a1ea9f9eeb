//! The `metrics` feature: what the counters report to the `metrics` facade.
//!
//! ## Behavior
//!
//! * Every counter of [`Stats`](crate::Stats) is a `metrics` counter
//!   `cachemacro_<name>_total` labelled `family` (the template, never a
//!   key; `""` for calls given no family and for events of no family, such
//!   as the replay queue's). Loads are timed in
//!   `cachemacro_load_duration_seconds{family}`, each Redis round trip in
//!   `cachemacro_backend_duration_seconds{op}`; gauges hold the replay
//!   queue's length and the circuit breaker's state.
//! * **Handles, not lookups.** A family's handles are taken from the
//!   recorder in force when the family is first counted on a cache (its
//!   first call) and kept beside its counters, which a `#[cached]` site
//!   remembers: a hit then bumps a handle, as it bumps an atomic, and does
//!   no registry lookup. So the recorder must be installed before the
//!   first cached call (and before a cache is built, for the breaker
//!   gauge); a family first counted before that keeps reporting nowhere.
//! * The library installs no recorder and no exporter: the program does
//!   (`metrics-exporter-prometheus`, say). Each series is described (name,
//!   unit, meaning) once per cache, when it first reports.
//! * Several caches in one process report to the same series (a family's
//!   figures add up); the breaker gauge is labelled by backend.
//! * The manual API's reads and writes ([`Stats::manual`](crate::Stats::manual))
//!   report no counters; their round trips are timed like any other.

use std::sync::OnceLock;
use std::time::Duration;

use ::metrics::{Histogram, Unit};

use super::Counters;

/// A family's other series: its load durations.
#[derive(Debug)]
pub(crate) struct Extra {
    load_seconds: Histogram,
}

impl Default for Extra {
    fn default() -> Self {
        Extra {
            load_seconds: Histogram::noop(),
        }
    }
}

impl Extra {
    #[inline]
    pub(crate) fn load_took(&self, took: Duration) {
        self.load_seconds.record(took.as_secs_f64());
    }
}

const LOAD_SECONDS: &str = "cachemacro_load_duration_seconds";
const BACKEND_SECONDS: &str = "cachemacro_backend_duration_seconds";
const QUEUE_LENGTH: &str = "cachemacro_invalidation_queue_length";
const BREAKER_STATE: &str = "cachemacro_breaker_state";

/// Takes the handles of `family`'s series from the recorder in force.
pub(super) fn attach(counters: &mut Counters, family: &str) {
    let label = family.to_owned();
    counters.each_mut(|name, _, count| {
        count.metric = ::metrics::counter!(name, "family" => label.clone());
    });
    counters.extra.load_seconds = ::metrics::histogram!(LOAD_SECONDS, "family" => label);
}

/// Describes every series to the recorder in force.
pub(super) fn describe() {
    Counters::default().each_mut(|name, doc, _| {
        ::metrics::describe_counter!(name, Unit::Count, doc);
    });
    ::metrics::describe_histogram!(
        LOAD_SECONDS,
        Unit::Seconds,
        "How long function bodies (loads) took, by family."
    );
    ::metrics::describe_histogram!(
        BACKEND_SECONDS,
        Unit::Seconds,
        "How long each Redis round trip took, by operation."
    );
    ::metrics::describe_gauge!(
        QUEUE_LENGTH,
        Unit::Count,
        "Failed invalidations waiting to be replayed (while any wait, the cache is bypassed)."
    );
    ::metrics::describe_gauge!(
        BREAKER_STATE,
        "The circuit breaker in front of Redis: 0 closed, 0.5 half-open (probing), 1 open."
    );
}

/// One kind of backend round trip, the `op` label of
/// `cachemacro_backend_duration_seconds`.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Op {
    /// A cached call's read (the entry and its tag versions).
    Get,
    /// The manual API's read of many keys.
    GetMany,
    /// Tag versions read alone.
    TagVersions,
    /// The fill lease script of a miss.
    Lease,
    /// The refresh lock script.
    RefreshLock,
    /// The store script of a fill or refresh.
    Store,
    /// Giving a lease or lock back.
    Release,
    /// The manual API's writes.
    Set,
    SetIfAbsent,
    Incr,
    /// Exact-key invalidations.
    Delete,
    /// A prefix invalidation (every `SCAN`/`UNLINK` page of it).
    DeletePrefix,
    Ping,
    /// An announcement to other instances.
    Publish,
    /// The announcement before a replay.
    BeforeReplay,
}

impl Op {
    const ALL: [Op; 15] = [
        Op::Get,
        Op::GetMany,
        Op::TagVersions,
        Op::Lease,
        Op::RefreshLock,
        Op::Store,
        Op::Release,
        Op::Set,
        Op::SetIfAbsent,
        Op::Incr,
        Op::Delete,
        Op::DeletePrefix,
        Op::Ping,
        Op::Publish,
        Op::BeforeReplay,
    ];

    fn label(self) -> &'static str {
        match self {
            Op::Get => "get",
            Op::GetMany => "get_many",
            Op::TagVersions => "tag_versions",
            Op::Lease => "lease",
            Op::RefreshLock => "refresh_lock",
            Op::Store => "store",
            Op::Release => "release",
            Op::Set => "set",
            Op::SetIfAbsent => "set_if_absent",
            Op::Incr => "incr",
            Op::Delete => "delete",
            Op::DeletePrefix => "delete_prefix",
            Op::Ping => "ping",
            Op::Publish => "publish",
            Op::BeforeReplay => "before_replay",
        }
    }
}

/// The backend's round-trip histograms, one per [`Op`], taken at the first
/// round trip.
#[derive(Debug, Default)]
pub(crate) struct BackendTimes(OnceLock<Vec<Histogram>>);

impl BackendTimes {
    pub(crate) fn record(&self, op: Op, took: Duration) {
        let handles = self.0.get_or_init(|| {
            describe();
            Op::ALL
                .iter()
                .map(|op| ::metrics::histogram!(BACKEND_SECONDS, "op" => op.label()))
                .collect()
        });
        if let Some(h) = handles.get(op as usize) {
            h.record(took.as_secs_f64());
        }
    }
}

/// The replay queue grew or shrank by `delta` (a gauge several caches add to).
pub(crate) fn queue_changed(delta: i64) {
    let gauge = ::metrics::gauge!(QUEUE_LENGTH);
    if delta >= 0 {
        gauge.increment(delta as f64);
    } else {
        gauge.decrement(delta.unsigned_abs() as f64);
    }
}

/// The breaker of `backend` is now closed (0), half-open (0.5) or open (1).
pub(crate) fn breaker_state(backend: &str, value: f64) {
    ::metrics::gauge!(BREAKER_STATE, "backend" => backend.to_owned()).set(value);
}
