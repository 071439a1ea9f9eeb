//! [`Cache::health`]: what a health endpoint reports about the cache.

use std::sync::atomic::Ordering::Relaxed;

use serde::Serialize;

use super::handle::Cache;

/// A snapshot of how the cache is doing, for a health endpoint: serialize
/// it with serde (JSON, say).
///
/// ```
/// let cache = cachemacro_runtime::Cache::memory();
/// let health = cache.health();
/// assert!(health.reachable && health.queued_invalidations == 0);
/// ```
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Health {
    /// `memory`, or the Redis URL without its password.
    pub backend: String,
    /// Whether the backend answers now, as far as this instance knows
    /// (every node answered its last probe).
    pub reachable: bool,
    /// Failed invalidations waiting to be replayed; while any wait, the
    /// cache is bypassed.
    pub queued_invalidations: usize,
    /// The circuit breaker in front of Redis (see
    /// [`Cache::breaker_health`]); `None` without one.
    pub breaker: Option<crate::BreakerHealth>,
    /// The in-process tier.
    pub local: LocalHealth,
    /// Announcements between the instances sharing the backend; `None` for
    /// the in-memory cache.
    pub announcements: Option<AnnouncementHealth>,
}

/// The in-process tier, in [`Health`].
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct LocalHealth {
    /// Whether [`CacheBuilder::local_capacity`](crate::CacheBuilder::local_capacity) turned it on.
    pub enabled: bool,
    /// Whether it serves now: it does only while this instance hears the
    /// others' announcements.
    pub coherent: bool,
    /// Entries held (an estimate).
    pub entries: u64,
    /// How often it was flushed because announcements stopped arriving.
    pub flushes: u64,
}

/// The announcement channel, in [`Health`].
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct AnnouncementHealth {
    /// Subscribed and answering its heartbeat.
    pub listening: bool,
    /// The node it listens on.
    pub node: Option<String>,
    /// Times it lost the subscription.
    pub reconnects: u64,
    /// Why it last lost it (or could not subscribe).
    pub last_error: Option<String>,
    /// Announcements this instance sent.
    pub sent: u64,
    /// Announcements heard from other instances.
    pub heard: u64,
    /// Shards (the node, or a cluster's slots) this instance does not
    /// trust now, after a node stopped answering: their entries are
    /// refilled until it answers again.
    pub suspect_shards: usize,
    /// Entries stored before this server time (ms since the epoch) are
    /// refilled rather than served: the end of the last period in which
    /// invalidations may have been missed. 0: none.
    pub trusted_from_ms: u64,
}

impl Cache {
    /// How the cache is doing now; cheap, and never waits on the backend.
    pub fn health(&self) -> Health {
        let tier = self.tier();
        let local = LocalHealth {
            enabled: tier.is_some_and(|t| t.local.is_some()),
            coherent: tier.is_some_and(|t| t.local.is_some() && t.coherent()),
            entries: tier.and_then(|t| t.local.as_ref()).map_or(0, |l| l.len()),
            flushes: tier.map_or(0, |t| t.flushes.load(Relaxed)),
        };
        let announcements = tier.map(|t| {
            let hearing = t.hearing();
            AnnouncementHealth {
                listening: t.coherent(),
                node: hearing.node,
                reconnects: hearing.reconnects,
                last_error: hearing.last_error,
                sent: t.announced.load(Relaxed),
                heard: t.heard.load(Relaxed),
                suspect_shards: t.trust.suspect_shards(),
                trusted_from_ms: t.trust.watermark(),
            }
        });
        let breaker = self.breaker_health();
        let reachable = announcements.as_ref().is_none_or(|a| a.suspect_shards == 0)
            && breaker
                .as_ref()
                .is_none_or(|b| b.state == crate::BreakerState::Closed);
        Health {
            backend: self.describe(),
            reachable,
            queued_invalidations: self.queued(),
            breaker,
            local,
            announcements,
        }
    }
}
