//! The Redis server's clock, as this process measures it: entries carry
//! their expiry on the server's clock, and a read judges an entry far from
//! its expiry by this estimate instead of asking for the key's TTL.
//!
//! ## Behavior
//!
//! * Measured from every script reply (each returns the server's `TIME`),
//!   and by a `TIME` sent with a read when the last measure is older than
//!   [`FRESH_FOR`]. The error is at most one round trip.
//! * Kept against a monotonic local clock, so a jump of this host's wall
//!   clock changes nothing.
//! * Used only with a wide [`MARGIN`]: an entry whose estimated remaining
//!   TTL is within it of a freshness decision (its end of freshness, or an
//!   early-refresh window) is judged by an exact `PTTL` instead.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// How long a measure is trusted before a read asks for `TIME` again.
pub(super) const FRESH_FOR: Duration = Duration::from_secs(10);

/// How far from a freshness decision an estimate must be to be used.
pub(super) const MARGIN_MS: i64 = 1_000;

pub(super) struct ServerClock {
    base: Instant,
    /// Server ms minus local ms since `base`.
    offset: AtomicI64,
    /// Local ms since `base` at the last measure, plus one (0: never).
    measured: AtomicU64,
}

impl ServerClock {
    pub(super) fn new() -> ServerClock {
        ServerClock {
            base: Instant::now(),
            offset: AtomicI64::new(0),
            measured: AtomicU64::new(0),
        }
    }

    /// Local ms since `base`.
    pub(super) fn local_ms(&self) -> u64 {
        u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Records a server time seen in a reply to a request sent at
    /// `sent` (local ms) and received now.
    pub(super) fn observe(&self, sent: u64, server_ms: i64) {
        let received = self.local_ms();
        let midpoint = i64::try_from(sent / 2 + received / 2).unwrap_or(i64::MAX);
        self.offset
            .store(server_ms.saturating_sub(midpoint), Relaxed);
        self.measured.store(received.saturating_add(1), Relaxed);
    }

    /// Whether a read should measure again.
    pub(super) fn stale(&self) -> bool {
        let measured = self.measured.load(Relaxed);
        measured == 0 || self.local_ms().saturating_sub(measured - 1) > FRESH_FOR.as_millis() as u64
    }

    /// The server's clock now, in ms, if measured.
    pub(super) fn now(&self) -> Option<i64> {
        if self.measured.load(Relaxed) == 0 {
            return None;
        }
        let local = i64::try_from(self.local_ms()).unwrap_or(i64::MAX);
        Some(local.saturating_add(self.offset.load(Relaxed)))
    }
}
