//! [`Count`]: one figure of a set of counters, and (with the `metrics`
//! feature) the `metrics` counter it reports to.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// One figure: a relaxed atomic, read by [`Cache::stats`](crate::Cache::stats).
/// With the `metrics` feature it also holds the handle of its `metrics`
/// counter, taken once when its family is first counted, so reporting is
/// an increment on a handle, never a registry lookup.
#[derive(Debug)]
pub(crate) struct Count {
    n: AtomicU64,
    #[cfg(feature = "metrics")]
    pub(super) metric: metrics::Counter,
}

impl Default for Count {
    fn default() -> Self {
        Count {
            n: AtomicU64::new(0),
            #[cfg(feature = "metrics")]
            metric: metrics::Counter::noop(),
        }
    }
}

impl Count {
    /// Adds to the figure.
    #[inline]
    pub(super) fn count(&self, n: u64) {
        self.n.fetch_add(n, Relaxed);
    }

    /// Adds to the `metrics` counter (nothing without the feature, or
    /// before a recorder was installed).
    #[inline]
    pub(super) fn report(&self, _n: u64) {
        #[cfg(feature = "metrics")]
        self.metric.increment(_n);
    }

    pub(super) fn get(&self) -> u64 {
        self.n.load(Relaxed)
    }
}
