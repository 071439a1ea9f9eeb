//! The Redis server's clock, as this process measures it: entries carry
//! their expiry on the server's clock, and a read judges an entry far from
//! its expiry by this estimate instead of asking for the key's TTL.
//!
//! ## Behavior
//!
//! * Measured from every script reply (each returns the server's `TIME`),
//!   and by a `TIME` sent with a read when the last measure is older than
//!   [`FRESH_FOR`]. A sample whose round trip took longer than
//!   [`MAX_ROUND_TRIP_MS`] is ignored, so the error stays under half of it.
//! * Kept against a monotonic local clock, so a jump of this host's wall
//!   clock changes nothing.
//! * The latest server time wins: a sample that puts the server's clock
//!   earlier than the one in use replaces it only once that one is older
//!   than [`FRESH_FOR`]. On a cluster, where samples come from every
//!   primary, the estimate so leans to the node whose clock runs furthest
//!   ahead, which can only make entries look closer to expiry (an exact
//!   read more often), never fresher than they are.
//! * Used only with a wide [`MARGIN_MS`]: an entry whose estimated
//!   remaining TTL is within it of a freshness decision (its end of
//!   freshness, or an early-refresh window) is judged by an exact `PTTL`.
//! * Limits: while this host is suspended its monotonic clock stops, and a
//!   server's clock can step (or a failover can land on a server whose
//!   clock differs). Until the next measure (at most [`FRESH_FOR`], sooner
//!   on any miss), entries can then be judged by up to that difference off,
//!   within their grace: a kept entry may be served as fresh.

use std::sync::Mutex;
use std::sync::atomic::{
    AtomicI64, AtomicU64,
    Ordering::{Acquire, Relaxed, Release},
};
use std::time::{Duration, Instant};

/// How long a measure is trusted before a read asks for `TIME` again.
pub(super) const FRESH_FOR: Duration = Duration::from_secs(10);

/// How far from a freshness decision an estimate must be to be used.
pub(super) const MARGIN_MS: i64 = 1_000;

/// The longest round trip whose sample is trusted.
pub(super) const MAX_ROUND_TRIP_MS: u64 = 200;

pub(super) struct ServerClock {
    base: Instant,
    /// Server ms minus local ms since `base`.
    offset: AtomicI64,
    /// Local ms since `base` at the last measure, plus one (0: never).
    measured: AtomicU64,
    /// Taken to record a sample: comparing with the offset in use and
    /// replacing it is one step, so a sample behind cannot win a race.
    recording: Mutex<()>,
}

impl ServerClock {
    pub(super) fn new() -> ServerClock {
        ServerClock {
            base: Instant::now(),
            offset: AtomicI64::new(0),
            measured: AtomicU64::new(0),
            recording: Mutex::new(()),
        }
    }

    /// Local ms since `base`.
    pub(super) fn local_ms(&self) -> u64 {
        u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Records a server time seen in a reply to a request sent at
    /// `sent` (local ms) and received now.
    pub(super) fn observe(&self, sent: u64, server_ms: i64) {
        self.record(sent, self.local_ms(), server_ms);
    }

    /// A sample: sent and received at these local ms, the server said this.
    fn record(&self, sent: u64, received: u64, server_ms: i64) {
        if received.saturating_sub(sent) > MAX_ROUND_TRIP_MS {
            return;
        }
        let midpoint = i64::try_from(sent / 2 + received / 2).unwrap_or(i64::MAX);
        let offset = server_ms.saturating_sub(midpoint);
        let _one_at_a_time = self
            .recording
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let measured = self.measured.load(Acquire);
        let expired =
            measured == 0 || received.saturating_sub(measured - 1) > FRESH_FOR.as_millis() as u64;
        if !expired && offset < self.offset.load(Relaxed) {
            return;
        }
        self.offset.store(offset, Relaxed);
        // Release: a reader that sees this measure sees its offset.
        self.measured.store(received.saturating_add(1), Release);
    }

    /// Whether a read should measure again.
    pub(super) fn stale(&self) -> bool {
        let measured = self.measured.load(Acquire);
        measured == 0 || self.local_ms().saturating_sub(measured - 1) > FRESH_FOR.as_millis() as u64
    }

    /// The server's clock now, in ms, if measured.
    pub(super) fn now(&self) -> Option<i64> {
        if self.measured.load(Acquire) == 0 {
            return None;
        }
        let local = i64::try_from(self.local_ms()).unwrap_or(i64::MAX);
        Some(local.saturating_add(self.offset.load(Relaxed)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slow_samples_are_not_trusted() {
        let clock = ServerClock::new();
        assert!(clock.stale() && clock.now().is_none());
        // A reply that took 500 ms could be off by 250: ignored.
        clock.record(0, 500, 5_000_000);
        assert!(clock.stale() && clock.now().is_none());
        // A quick one sets the offset: the server's clock at the midpoint.
        clock.record(0, 10, 5_000_000);
        let offset = clock.offset.load(Relaxed);
        assert_eq!(offset, 5_000_000 - 5);
        let now = clock.now().expect("measured");
        assert!(now >= 5_000_000 - 5);
        // A node whose clock is behind does not pull the estimate back...
        clock.record(20, 30, 4_000_000);
        assert_eq!(clock.offset.load(Relaxed), 5_000_000 - 5);
        // ...one ahead moves it forward...
        clock.record(20, 30, 5_000_100);
        assert_eq!(clock.offset.load(Relaxed), 5_000_100 - 25);
        // ...and an old lead expires: the next sample is taken as it is.
        let later = 30 + FRESH_FOR.as_millis() as u64 + 2;
        clock.record(later, later, 4_000_000 + later as i64);
        assert_eq!(clock.offset.load(Relaxed), 4_000_000);
    }
}
