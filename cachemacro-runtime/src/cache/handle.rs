//! The [`Cache`] handle and what its clones share.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use crate::engine::flight::Flights;
use crate::invalidation::Replayer;
use crate::namespace::Namespace;
use crate::stats::{FamilyKind, Recorder, Stats, StatsRegistry};
use crate::store::Store;
use crate::store::tier::{Coherent, Tier, TierConfig};
use crate::{Error, key::Pattern};

/// While a backend keeps failing, one warning per this interval; the rest go to debug.
const WARN_EVERY: Duration = Duration::from_secs(5);

/// A handle to a cache: in-memory or Redis. Cheap to clone (one `Arc`);
/// clones share the connection, the memory and the statistics.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), cachemacro_runtime::Error> {
/// use std::time::Duration;
/// use cachemacro_runtime::Cache;
///
/// let cache = Cache::memory();
/// cache.set("greeting:en", &"hello".to_string(), Duration::from_secs(60)).await?;
/// assert_eq!(cache.get::<String>("greeting:en").await?, Some("hello".into()));
/// # Ok(()) }
/// ```
///
/// ## Behavior
///
/// * [`Cache::get_or_load`] and generated code never turn a cache failure
///   into the caller's failure: the loader runs and its value is returned.
///   Failures are counted in [`Stats::errors`] and logged with `tracing`
///   (one warning per 5 s while a backend keeps failing, the rest at debug).
/// * The manual methods return [`Error`] so the caller decides.
/// * A value that no longer decodes (a changed type, corrupt bytes) reads as
///   a miss, is counted in [`Stats::decode_errors`], and is overwritten by
///   the next fill.
#[derive(Clone)]
pub struct Cache(Arc<Inner>);

struct Inner {
    store: Arc<dyn Store>,
    /// On a shared Redis: the local tier, announcements and trust.
    tier: Option<Arc<Tier>>,
    /// The store behind the coherent one (what the tier's tasks probe).
    remote: Arc<dyn Store>,
    namespace: Namespace,
    stats: Arc<StatsRegistry>,
    settings: Settings,
    flights: Flights,
    replay: Replayer,
    started: Instant,
    last_warn_ms: AtomicU64,
}

/// The cache-wide settings the engine reads (see the builder for each).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings {
    /// How long a fill lease or refresh lock holds a key.
    pub(crate) lease_ttl: Duration,
    /// How long `lock = true` waits for another process's load.
    pub(crate) lock_wait: Duration,
    pub(crate) single_flight: bool,
    /// Defaults for calls whose options do not say.
    pub(crate) beta: f64,
    pub(crate) lock: bool,
    pub(crate) jitter: f64,
    pub(crate) fail_safe_throttle: Duration,
    pub(crate) queue_capacity: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            lease_ttl: Duration::from_secs(10),
            lock_wait: Duration::from_secs(3),
            single_flight: true,
            beta: 1.0,
            lock: false,
            jitter: 0.0,
            fail_safe_throttle: Duration::from_secs(30),
            queue_capacity: 10_000,
        }
    }
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("backend", &self.0.store.describe())
            .field("namespace", &self.0.namespace.prefix())
            .finish()
    }
}

impl AsRef<Cache> for Cache {
    fn as_ref(&self) -> &Cache {
        self
    }
}

impl Cache {
    pub(crate) fn from_parts(store: Arc<dyn Store>, namespace: &str, settings: Settings) -> Cache {
        Cache::with_tier(store, namespace, settings, None)
    }

    /// A cache whose store others share: it is put behind the store that
    /// announces (`store/tier/coherent.rs`), and the tier's tasks start.
    pub(crate) fn with_tier(
        store: Arc<dyn Store>,
        namespace: &str,
        settings: Settings,
        tier: Option<TierConfig>,
    ) -> Cache {
        let namespace = Namespace::new(namespace);
        let tier = tier
            .filter(|_| store.shared())
            .map(|config| Arc::new(Tier::new(config, namespace.prefix(), store.shards())));
        let remote = store.clone();
        let store: Arc<dyn Store> = match &tier {
            Some(tier) => Arc::new(Coherent::new(store, tier.clone())),
            None => store,
        };
        if let Some(tier) = &tier {
            tier.ensure_running(&remote);
        }
        let stats = Arc::new(StatsRegistry::default());
        let replay = Replayer::new(
            store.clone(),
            namespace.prefix().to_owned(),
            stats.clone(),
            settings.queue_capacity,
        );
        Cache(Arc::new(Inner {
            store,
            tier,
            remote,
            namespace,
            stats,
            settings,
            flights: Flights::default(),
            replay,
            started: Instant::now(),
            last_warn_ms: AtomicU64::new(0),
        }))
    }

    /// A snapshot of this cache's counters: cached calls and invalidations
    /// in the totals and families, the manual API's reads and writes in
    /// [`Stats::manual`]. Serializable (serde) for a debug endpoint.
    pub fn stats(&self) -> Stats {
        self.0.stats.snapshot()
    }

    /// `memory`, the Redis URL (password removed), or why it is unavailable.
    pub fn describe(&self) -> String {
        self.0.store.describe()
    }

    pub(crate) fn store(&self) -> &dyn Store {
        self.0.store.as_ref()
    }

    /// The tier, on a shared Redis; its tasks restarted if they stopped.
    pub(crate) fn tier(&self) -> Option<&Tier> {
        let tier = self.0.tier.as_ref()?;
        tier.ensure_running(&self.0.remote);
        Some(tier)
    }

    pub(crate) fn settings(&self) -> &Settings {
        &self.0.settings
    }

    pub(crate) fn flights(&self) -> &Flights {
        &self.0.flights
    }

    /// Where a cached call's events of `family` count.
    pub(crate) fn recorder(&self, family: &str) -> Recorder<'_> {
        self.0.stats.recorder(family, FamilyKind::Cached)
    }

    /// Where an invalidation of `template` counts.
    pub(crate) fn invalidation_recorder(&self, template: &str) -> Recorder<'_> {
        self.0.stats.recorder(template, FamilyKind::Invalidation)
    }

    /// Where the manual API's reads and writes count ([`Stats::manual`]).
    pub(crate) fn manual_recorder(&self) -> Recorder<'_> {
        self.0.stats.manual()
    }

    /// The recorder of a call with `options`, its family's counters
    /// remembered in them.
    pub(crate) fn recorder_for<'a>(&'a self, options: &'a crate::EntryOptions) -> Recorder<'a> {
        self.0
            .stats
            .recorder_in(options.family_name(), &options.counters)
    }

    pub(crate) fn full_key(&self, key: &str) -> String {
        self.0.namespace.key(key)
    }

    /// The full key, borrowed when there is no namespace (no allocation
    /// on a hit).
    pub(crate) fn full_key_cow<'a>(&self, key: &'a str) -> std::borrow::Cow<'a, str> {
        match self.0.namespace.prefix() {
            "" => std::borrow::Cow::Borrowed(key),
            _ => std::borrow::Cow::Owned(self.0.namespace.key(key)),
        }
    }

    pub(crate) fn tag_key(&self, tag: &str) -> String {
        self.0.namespace.tag(tag)
    }

    pub(crate) fn target(&self, pattern: &Pattern) -> Pattern {
        self.0.namespace.target(pattern)
    }

    /// How many invalidations wait to be replayed.
    pub(crate) fn queued(&self) -> usize {
        self.0.replay.len()
    }

    /// Whether the cache may be used: no invalidation waits to be replayed.
    pub(crate) fn ready(&self) -> bool {
        self.0.replay.ready()
    }

    /// Deletes full targets; what fails is queued for replay and returned.
    /// (A caller that may be dropped mid-call holds an [`Unfinished`].)
    pub(crate) async fn delete_targets(
        &self,
        targets: &[Pattern],
    ) -> Result<u64, (Error, Vec<Pattern>)> {
        crate::invalidation::run(&self.0.store, &self.0.replay, targets).await
    }

    /// Queues targets whose deletion never finished (a cancelled call).
    pub(crate) fn enqueue(&self, targets: Vec<Pattern>) {
        self.0.replay.enqueue(targets);
    }

    /// Logs a backend failure at warn at most once per [`WARN_EVERY`], so an
    /// outage does not flood the logs; the others go to debug.
    pub(crate) fn log_failure(&self, what: &str, family: &str, key: &str, error: &Error) {
        let now = self.0.started.elapsed().as_millis() as u64;
        let last = self.0.last_warn_ms.load(Relaxed);
        let due = last == 0 || now.saturating_sub(last) >= WARN_EVERY.as_millis() as u64;
        if due
            && self
                .0
                .last_warn_ms
                .compare_exchange(last, now.max(1), Relaxed, Relaxed)
                .is_ok()
        {
            tracing::warn!(family, key, error = %error, backend = %self.describe(), "cache {what} failed; serving from the function body");
        } else {
            tracing::debug!(family, key, error = %error, "cache {what} failed; serving from the function body");
        }
    }
}

/// Queues targets whose deletion was dropped before it finished (a
/// cancelled request): a delete may have landed without its announcement,
/// and the replay announces it.
pub(crate) struct Unfinished<'a> {
    pub(crate) cache: &'a Cache,
    pub(crate) targets: Option<Vec<Pattern>>,
}

impl Drop for Unfinished<'_> {
    fn drop(&mut self) {
        if let Some(targets) = self.targets.take() {
            self.cache.enqueue(targets);
        }
    }
}
