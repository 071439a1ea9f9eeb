//! The `tracing` side of one cached call: its span, and how it was answered.
//!
//! ## Behavior
//!
//! * Each call of [`run`](super::run) (so each `#[cached]` call and each
//!   [`Cache::get_or_load`](crate::Cache::get_or_load)) runs in a
//!   `cachemacro.get` span at debug level, with the fields `family` (the
//!   template, `""` when the options name none) and `outcome`, recorded
//!   once the call is answered. No key is recorded.
//! * `outcome` is how the caller was answered, the strongest of what
//!   happened: `hit`, `local_hit` (the in-process tier), `miss` (this call
//!   loaded; an early refresh the caller ran itself is still a `hit`),
//!   `coalesced` (it waited for another caller's load, single-flight),
//!   `stale` (a value past its freshness, `stale`/`timeout`), `fail_safe`
//!   (the load failed and the last value was served), `error` (the backend
//!   failed, or the key could not be built, and the body ran), `bypass`
//!   (invalidations wait to be replayed, and the body ran).
//! * One event per call at trace level, in the span ("cache hit", "cache
//!   miss", …).
//! * **Cost without a subscriber** (or with one that filters debug out):
//!   one check of `tracing`'s max level (an atomic load), before any span
//!   is made, field evaluated, or anything formatted or allocated; noting
//!   the outcome is then a branch on a `bool`. A call that may be traced
//!   runs in a box of its own (one allocation), so the span never makes an
//!   untraced hit's future larger. (So spans reach `tracing` subscribers
//!   only, not the `log` crate's loggers through `tracing`'s `log` feature.)

use std::sync::atomic::{AtomicU8, Ordering::Relaxed};

use tracing::Span;

/// How a call was answered, weakest first: a later, stronger note wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub(super) enum Answered {
    None = 0,
    Hit,
    LocalHit,
    Miss,
    Coalesced,
    Stale,
    FailSafe,
    Error,
    Bypass,
}

impl Answered {
    const ALL: [Answered; 9] = [
        Answered::None,
        Answered::Hit,
        Answered::LocalHit,
        Answered::Miss,
        Answered::Coalesced,
        Answered::Stale,
        Answered::FailSafe,
        Answered::Error,
        Answered::Bypass,
    ];

    fn name(self) -> &'static str {
        match self {
            Answered::None => "none",
            Answered::Hit => "hit",
            Answered::LocalHit => "local_hit",
            Answered::Miss => "miss",
            Answered::Coalesced => "coalesced",
            Answered::Stale => "stale",
            Answered::FailSafe => "fail_safe",
            Answered::Error => "error",
            Answered::Bypass => "bypass",
        }
    }
}

/// Whether any subscriber may want a call's span or events: `tracing`'s
/// global max level (one atomic load) is at least debug. An untraced call
/// (no subscriber, or one at info and above, as in most productions) skips
/// the span, and its future carries none of this.
#[inline]
pub(super) fn wanted() -> bool {
    tracing::level_enabled!(tracing::Level::DEBUG)
}

/// The span of one cached call of `family`.
pub(super) fn span(family: &str) -> Span {
    tracing::debug_span!("cachemacro.get", family, outcome = tracing::field::Empty)
}

/// How one call is being answered, noted as it goes; kept only while its
/// span or the trace events are enabled.
pub(super) struct Answer {
    on: bool,
    noted: AtomicU8,
}

impl Answer {
    pub(super) fn new(span: &Span) -> Answer {
        Answer {
            on: !span.is_disabled() || tracing::level_enabled!(tracing::Level::TRACE),
            noted: AtomicU8::new(0),
        }
    }

    /// For a load in a task of its own: no caller's span to report to.
    pub(super) fn off() -> Answer {
        Answer {
            on: false,
            noted: AtomicU8::new(0),
        }
    }

    #[inline]
    pub(super) fn note(&self, outcome: Answered) {
        if self.on {
            self.noted.fetch_max(outcome as u8, Relaxed);
        }
    }

    /// Records the outcome in `span` and emits the call's trace event.
    pub(super) fn finish(&self, span: &Span) {
        if !self.on {
            return;
        }
        let outcome = Answered::ALL
            .get(usize::from(self.noted.load(Relaxed)))
            .copied()
            .unwrap_or(Answered::None);
        span.record("outcome", outcome.name());
        match outcome {
            Answered::Hit => tracing::trace!(parent: span, "cache hit"),
            Answered::LocalHit => tracing::trace!(parent: span, "cache hit (in-process tier)"),
            Answered::Miss => tracing::trace!(parent: span, "cache miss; loaded"),
            Answered::Coalesced => {
                tracing::trace!(parent: span, "cache miss; waited for a load in flight")
            }
            Answered::Stale => tracing::trace!(parent: span, "served a value past its freshness"),
            Answered::FailSafe => {
                tracing::trace!(parent: span, "load failed; served the last value")
            }
            Answered::Error => tracing::trace!(parent: span, "cache failed; the body ran"),
            Answered::Bypass => {
                tracing::trace!(parent: span, "cache bypassed while invalidations are replayed")
            }
            Answered::None => {}
        }
    }
}
