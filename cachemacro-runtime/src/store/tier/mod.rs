//! What keeps the instances sharing one Redis coherent: the in-process
//! tier (`local.rs`), announcements of every invalidation (`message.rs`,
//! heard by `listen.rs`), and which stored entries an instance may trust
//! after an outage (`trust.rs`, fed by the probes of `watch.rs`). The
//! store in front of Redis that announces is `coherent.rs`.
//!
//! ## Behavior
//!
//! * **Announcements.** Every invalidation (keys, tag versions, prefixes)
//!   and every store that replaces an entry is published on one pub/sub
//!   channel per namespace after it lands; an invalidation whose
//!   announcement cannot be published fails like one that did not land
//!   (queued, replayed, bypassed meanwhile). Every other instance drops the
//!   matching local entries; the sender skips its own echo, having dropped
//!   them itself before and after the delete (read-your-writes).
//! * **Deafness.** While the subscription is down, or its heartbeat goes
//!   unanswered for half the operation timeout, the local tier is flushed
//!   and not used (and it is not used either once no heartbeat was
//!   confirmed, after the messages before it, for a heartbeat and a half
//!   operation timeout), and every shard is suspect (see `trust.rs`): Redis is
//!   read, but what it holds is refilled until this instance listens again
//!   and its probes reach the nodes.
//! * **Outages.** A node that does not answer a probe (every quarter of the
//!   operation timeout, between 10 and 250 ms, each bounded by half of it) or a read is suspect
//!   until a later probe reaches it; an instance that replays invalidations
//!   announces first that entries stored before now are not to be trusted.

mod coherent;
mod listen;
pub(crate) mod local;
mod message;
mod reach;
pub(crate) mod trust;
mod watch;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

pub(crate) use coherent::Coherent;
use local::Local;
use message::{Announcement, Sender};
use trust::Trust;

use crate::store::Store;

/// What a [`Tier`] is built with.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TierConfig {
    /// Entries kept in process; 0: no local tier.
    pub(crate) local_capacity: u64,
    pub(crate) local_ttl: Duration,
    pub(crate) op_timeout: Duration,
    pub(crate) connect_timeout: Duration,
}

/// How the subscription is doing, for [`Cache::health`](crate::Cache::health).
#[derive(Debug, Clone, Default)]
pub(crate) struct Hearing {
    /// The node it listens on.
    pub(crate) node: Option<String>,
    pub(crate) subscribed_at: Option<std::time::SystemTime>,
    pub(crate) reconnects: u64,
    pub(crate) last_error: Option<String>,
}

pub(crate) struct Tier {
    pub(crate) local: Option<Local>,
    pub(crate) trust: Trust,
    channel: String,
    sender: Sender,
    listening: AtomicBool,
    /// Redis refused pub/sub.
    unsupported: AtomicBool,
    /// When the last heartbeat whose reply came after every message before
    /// it was sent (local ms, `trust.clock()`), and how long that vouches.
    confirmed: AtomicU64,
    confirm_for_ms: u64,
    hearing: Mutex<Hearing>,
    pub(crate) flushes: AtomicU64,
    /// This instance's last announcement number.
    sequence: AtomicU64,
    /// The last number heard from each other instance.
    senders: Mutex<std::collections::HashMap<Sender, u64>>,
    pub(crate) announced: AtomicU64,
    pub(crate) heard: AtomicU64,
    heartbeat: Duration,
    deaf_after: Duration,
    clock_margin_ms: u64,
    connect_timeout: Duration,
    /// Whether the listener and the watch run (restarted by a call that
    /// finds them gone, e.g. after the runtime that ran them shut down).
    running: AtomicBool,
}

/// Margin for other nodes' clocks on a watermark announced from a cluster,
/// whose nodes' clocks may differ (a single node has one clock).
const CLOCK_MARGIN_MS: u64 = 1_000;

impl Tier {
    pub(crate) fn new(config: TierConfig, namespace: &str, shards: usize) -> Tier {
        let heartbeat =
            (config.op_timeout / 4).clamp(Duration::from_millis(10), Duration::from_millis(250));
        let deaf_after = (config.op_timeout / 2).max(Duration::from_millis(20));
        Tier {
            local: (config.local_capacity > 0)
                .then(|| Local::new(config.local_capacity, config.local_ttl)),
            trust: Trust::new(shards, deaf_after),
            channel: format!("{namespace}__cachemacro:announce"),
            sender: rand::random(),
            listening: AtomicBool::new(false),
            unsupported: AtomicBool::new(false),
            confirmed: AtomicU64::new(0),
            confirm_for_ms: u64::try_from((heartbeat + deaf_after).as_millis()).unwrap_or(u64::MAX),
            hearing: Mutex::new(Hearing::default()),
            flushes: AtomicU64::new(0),
            sequence: AtomicU64::new(0),
            senders: Mutex::new(std::collections::HashMap::new()),
            announced: AtomicU64::new(0),
            heard: AtomicU64::new(0),
            heartbeat,
            deaf_after,
            clock_margin_ms: if shards > 1 { CLOCK_MARGIN_MS } else { 0 },
            connect_timeout: config.connect_timeout,
            running: AtomicBool::new(false),
        }
    }

    /// Starts the listener and the watch if they do not run (inside a
    /// tokio runtime only).
    pub(crate) fn ensure_running(self: &Arc<Tier>, store: &Arc<dyn Store>) {
        if self.running.load(SeqCst) || self.running.swap(true, SeqCst) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.running.store(false, SeqCst);
            return;
        };
        let clients = store.listen_on();
        let tier = Arc::downgrade(self);
        runtime.spawn(listen::listen(tier.clone(), clients));
        runtime.spawn(watch::watch(tier, Arc::downgrade(store)));
    }

    /// Whether pub/sub was refused (see [`pubsub_refused`]).
    pub(crate) fn unsupported(&self) -> bool {
        self.unsupported.load(SeqCst)
    }

    /// Pub/sub is refused: no announcements, no local tier, and no
    /// suspicion from a subscription that can never be.
    fn refused(&self, why: String) {
        if !self.unsupported.swap(true, SeqCst) {
            self.listening.store(false, SeqCst);
            if let Some(local) = &self.local {
                local.flush();
            }
            tracing::warn!(reason = %why, "Redis refuses pub/sub here: invalidations are not announced to other instances and the local tier is off");
            let mut hearing = self.hearing.lock().unwrap_or_else(|e| e.into_inner());
            hearing.last_error = Some(format!("pub/sub refused: {why}"));
        }
    }

    /// Whether local entries may be served: listening for announcements,
    /// and every announcement published before a recent heartbeat applied
    /// (so a listener that stopped running, or a connection that died
    /// without closing, stops local hits within a heartbeat and a half
    /// operation timeout, never later).
    pub(crate) fn coherent(&self) -> bool {
        self.listening.load(SeqCst)
            && self
                .trust
                .clock()
                .saturating_sub(self.confirmed.load(SeqCst))
                <= self.confirm_for_ms
    }

    /// Everything published before `sent` (local ms) was applied.
    fn confirm(&self, sent: u64) {
        self.confirmed.fetch_max(sent, SeqCst);
    }

    pub(crate) fn hearing(&self) -> Hearing {
        self.hearing
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Listening again. Every shard stays suspect until a probe sent from
    /// now on answers: one sent before could miss a watermark announced
    /// while this instance was not yet subscribed.
    fn heard_on(&self, node: String) {
        if self.trust.suspect_shards() > 0 {
            self.trust.suspect_all();
        }
        self.confirm(self.trust.clock());
        let mut hearing = self.hearing.lock().unwrap_or_else(|e| e.into_inner());
        hearing.node = Some(node);
        hearing.subscribed_at = Some(std::time::SystemTime::now());
        self.listening.store(true, SeqCst);
    }

    /// Lost the subscription (or never had it): flush, and trust nothing
    /// stored until listening again.
    fn deaf(&self, why: String) {
        let was = self.listening.swap(false, SeqCst);
        self.trust.suspect_all();
        if let Some(local) = &self.local {
            local.flush();
        }
        let mut hearing = self.hearing.lock().unwrap_or_else(|e| e.into_inner());
        if was {
            hearing.reconnects += 1;
            self.flushes.fetch_add(1, SeqCst);
            tracing::warn!(reason = %why, "cache announcements lost; the local tier is flushed and entries are refilled until they are heard again");
        }
        hearing.subscribed_at = None;
        hearing.last_error = Some(why);
    }

    /// Applies an announcement from another instance.
    fn hear(&self, payload: &[u8]) {
        let Some((sender, sequence, announcement)) = Announcement::decode(payload) else {
            tracing::debug!(
                len = payload.len(),
                "ignoring a message that is not a cache announcement"
            );
            return;
        };
        if sender == self.sender {
            return;
        }
        let last = self
            .senders
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(sender, sequence);
        // A number skipped: an announcement was lost without a disconnect.
        if last.is_some_and(|last| sequence > last + 1) {
            self.trust.suspect_all();
            if let Some(local) = &self.local {
                local.flush();
            }
            self.flushes.fetch_add(1, SeqCst);
            tracing::warn!(
                "a cache announcement went missing; the local tier is flushed and entries are refilled"
            );
        }
        match announcement {
            Announcement::Keys(keys) => self.drop_keys(&keys),
            Announcement::Prefix(prefix) => self.drop_prefix(&prefix),
            Announcement::Distrust(at) => self.trust.raise(at.saturating_add(self.clock_margin_ms)),
        }
        // Counted once applied: whoever sees `heard` move (a test, the
        // announcement-delay bench) may rely on the drop having happened.
        self.heard.fetch_add(1, SeqCst);
    }

    pub(crate) fn drop_keys(&self, keys: &[String]) {
        if let Some(local) = &self.local {
            local.drop_keys(keys);
        }
    }

    pub(crate) fn drop_prefix(&self, prefix: &str) {
        if let Some(local) = &self.local {
            local.drop_prefix(prefix);
        }
    }

    /// The bytes of an announcement from this instance, numbered one past
    /// the last that was published (a failed publish burns no number, so a
    /// gap a receiver sees is a message that was lost), and that number.
    fn message(&self, announcement: &Announcement) -> (Vec<u8>, u64) {
        let number = self.sequence.load(SeqCst) + 1;
        (announcement.encode(&self.sender, number), number)
    }

    /// An announcement numbered `number` was published.
    fn published(&self, number: u64) {
        self.sequence.fetch_max(number, SeqCst);
        self.announced.fetch_add(1, SeqCst);
    }
}

/// Whether an error says this Redis (or this user) will never do pub/sub:
/// an ACL without channel rights, or a proxy without the commands.
pub(crate) fn pubsub_refused(error: &str) -> bool {
    let error = error.to_ascii_lowercase();
    ["noperm", "no permissions", "unknown command", "not allowed"]
        .iter()
        .any(|p| error.contains(p))
}

/// Runs `f` on the tier while it lives; `None` once the cache is gone.
fn alive<T>(tier: &Weak<Tier>, f: impl FnOnce(&Tier) -> T) -> Option<T> {
    tier.upgrade().map(|t| f(&t))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tier() -> Tier {
        let config = TierConfig {
            local_capacity: 10,
            local_ttl: Duration::from_secs(60),
            op_timeout: Duration::from_millis(200),
            connect_timeout: Duration::from_secs(1),
        };
        Tier::new(config, "ns:", 1)
    }

    #[test]
    fn own_echoes_are_skipped_and_a_missing_number_flushes() {
        let tier = tier();
        let other = [9; 16];
        let keys = Announcement::Keys(vec!["ns:k".into()]);
        let (mine, _) = tier.message(&keys);
        tier.hear(&mine);
        assert_eq!(tier.heard.load(SeqCst), 0, "its own echo");
        tier.hear(&keys.encode(&other, 1));
        tier.hear(&keys.encode(&other, 2));
        assert_eq!((tier.heard.load(SeqCst), tier.flushes.load(SeqCst)), (2, 0));
        tier.hear(&keys.encode(&other, 4));
        assert_eq!(tier.flushes.load(SeqCst), 1, "number 3 was lost");
        assert_eq!(tier.trust.suspect_shards(), 1);
        tier.hear(b"not an announcement");
        assert_eq!(tier.heard.load(SeqCst), 3);
    }

    #[test]
    fn a_failed_publish_burns_no_number() {
        let tier = tier();
        let keys = Announcement::Keys(vec!["ns:k".into()]);
        let (_, first) = tier.message(&keys);
        let (_, again) = tier.message(&keys);
        assert_eq!(first, again, "the first was never published");
        tier.published(again);
        assert_eq!(tier.message(&keys).1, again + 1);
    }
}
