//! One log line when the backend stops answering, one when it answers
//! again: what an operator looks for in the logs of an outage.
//!
//! ## Behavior
//!
//! * Judged by the tier's probes (`watch.rs`: every node's clock, every
//!   quarter of the operation timeout, whatever the traffic and whether or
//!   not a circuit breaker is on), so a quiet service notices too.
//! * The first probe round in which a node does not answer, after one in
//!   which all did (or at start), logs one warning: the backend, how many
//!   nodes did not answer, and the first error. Later failed rounds log
//!   nothing more (each call's own failure is logged, throttled, by the
//!   cache handle).
//! * The first round in which every node answers again logs one info line
//!   with how long the backend was unreachable (from the first failed
//!   round, on this host's monotonic clock).

use std::time::Instant;

use crate::Error;

/// Whether the backend is down, as the probes saw it, and since when.
#[derive(Debug, Default)]
pub(super) struct Reach {
    down_since: Option<Instant>,
}

impl Reach {
    /// One round of probes: `failed` of `nodes` did not answer, the first
    /// with `error`.
    pub(super) fn observe(
        &mut self,
        backend: impl FnOnce() -> String,
        nodes: usize,
        failed: usize,
        error: Option<&Error>,
    ) {
        match (self.down_since, failed) {
            (None, 1..) => {
                self.down_since = Some(Instant::now());
                tracing::warn!(
                    backend = %backend(),
                    nodes_down = failed,
                    nodes,
                    error = error.map(tracing::field::display),
                    "the cache backend stopped answering; cached calls run their bodies until it answers again"
                );
            }
            (Some(since), 0) if nodes > 0 => {
                self.down_since = None;
                let down_for = since.elapsed();
                tracing::info!(
                    backend = %backend(),
                    down_for = ?down_for,
                    "the cache backend answers again, after {down_for:.1?} unreachable"
                );
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_transition() {
        let mut reach = Reach::default();
        let backend = || "redis://x".to_string();
        reach.observe(backend, 1, 0, None);
        assert!(reach.down_since.is_none(), "healthy: nothing to say");
        reach.observe(
            backend,
            1,
            1,
            Some(&Error::Timeout(std::time::Duration::ZERO)),
        );
        let since = reach.down_since;
        assert!(since.is_some());
        reach.observe(backend, 1, 1, None);
        assert_eq!(reach.down_since, since, "still down: the same outage");
        reach.observe(backend, 1, 0, None);
        assert!(reach.down_since.is_none(), "back");
    }
}
