//! [`CacheBuilder`]: settings, checked when the cache is built.

use std::sync::Arc;
use std::time::Duration;

use super::cluster_url;
use super::handle::{Cache, Settings};
use super::startup;
use super::url::{self, Param};
use crate::Error;
use crate::store::breaker::{Breaker, BreakerConfig, MAX_COOL_DOWN};
use crate::store::memory::MemoryStore;
use crate::store::redis::{RedisStore, redact};
use crate::store::tier::TierConfig;
use crate::store::{Store, Unavailable};

const DEFAULT_OP_TIMEOUT: Duration = Duration::from_millis(250);
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
const DEFAULT_MEMORY_BYTES: u64 = 64 * 1024 * 1024;
const DEFAULT_LOCAL_TTL: Duration = Duration::from_secs(60);

/// A duration no longer than [`EntryOptions::LONGEST`](crate::EntryOptions::LONGEST).
fn capped(d: Duration) -> Duration {
    d.min(crate::EntryOptions::LONGEST)
}

/// Configures a [`Cache`]. Start from [`Cache::builder`].
///
/// ```no_run
/// # async fn demo() -> Result<(), cachemacro_runtime::Error> {
/// use std::time::Duration;
/// use cachemacro_runtime::Cache;
///
/// let cache = Cache::builder()
///     .url("redis://127.0.0.1:6379")
///     .namespace("shop")
///     .operation_timeout(Duration::from_millis(100))
///     .connect()
///     .await?;
/// # Ok(()) }
/// ```
///
/// ## Behavior
///
/// Setters never panic: every value is checked by [`CacheBuilder::build`]
/// (and [`CacheBuilder::connect`]), which returns [`Error::Config`] naming
/// the setting and the range it takes. A duration longer than
/// [`EntryOptions::LONGEST`](crate::EntryOptions::LONGEST) (100 years,
/// "forever" for a cache) is taken as that long.
///
/// [`CacheBuilder::build`] of a Redis cache, inside a tokio runtime, checks
/// in the background that Redis answers within the connect timeout; if it
/// does not, it logs one warning naming the URL (password removed), the
/// error and what it says about the setup ([`Problem`](crate::Problem)),
/// such as "the server does not speak TLS: use redis:// or enable TLS on
/// the server". The cache runs uncached meanwhile and keeps retrying.
#[derive(Debug, Clone)]
#[must_use]
pub struct CacheBuilder {
    url: Option<String>,
    /// Seed nodes from [`CacheBuilder::cluster`].
    cluster: Option<Vec<String>>,
    namespace: String,
    op_timeout: Duration,
    connect_timeout: Duration,
    memory_bytes: u64,
    local_capacity: u64,
    local_ttl: Duration,
    breaker: BreakerConfig,
    settings: Settings,
}

impl Default for CacheBuilder {
    fn default() -> Self {
        CacheBuilder {
            url: None,
            cluster: None,
            namespace: String::new(),
            op_timeout: DEFAULT_OP_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            memory_bytes: DEFAULT_MEMORY_BYTES,
            local_capacity: 0,
            local_ttl: DEFAULT_LOCAL_TTL,
            breaker: BreakerConfig::default(),
            settings: Settings::default(),
        }
    }
}

impl CacheBuilder {
    /// `redis://…`, `rediss://…` (with the `tls` feature), a Redis Cluster
    /// as `redis+cluster://host:port,host:port` (or `rediss+cluster://`),
    /// or `memory://`. Without a URL the cache is in memory. Settings may
    /// ride along as query parameters (`?namespace=shop&operation_timeout=100ms`),
    /// named as the builder's methods; they win over the builder's own.
    /// Replaces an earlier [`CacheBuilder::cluster`].
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.url = Some(url.into());
        self.cluster = None;
        self
    }

    /// A Redis Cluster, from any of its nodes (`redis://host:port`,
    /// `rediss://host:port` or a bare `host:port`): the client discovers
    /// the rest, and follows resharding and failover by itself. Replaces
    /// an earlier [`CacheBuilder::url`].
    pub fn cluster<I, S>(mut self, nodes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let nodes = nodes
            .into_iter()
            .map(|node| {
                let node: String = node.into();
                if node.contains("://") {
                    node
                } else {
                    format!("redis://{node}")
                }
            })
            .collect();
        self.cluster = Some(nodes);
        self.url = None;
        self
    }

    /// A prefix for every key, joined with `:` (`shop` makes `user:1` into
    /// `shop:user:1`), so several services can share one Redis.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// The longest one Redis round trip may take before the cache gives up
    /// and the function body runs (default 250 ms; at least 1 ms).
    pub fn operation_timeout(mut self, timeout: Duration) -> Self {
        self.op_timeout = capped(timeout);
        self
    }

    /// The longest one connection attempt may take (default 1 s; at least 1 ms).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = capped(timeout);
        self
    }

    /// The most bytes (keys plus values) the in-memory backend keeps before
    /// it evicts (default 64 MiB; at least 1 KiB).
    pub fn memory_capacity(mut self, bytes: u64) -> Self {
        self.memory_bytes = bytes;
        self
    }

    /// How long a miss reserves its key for the value it is loading (default
    /// 10 s; at least 1 ms). A load that takes longer still returns its value
    /// but may not store it; a crashed loader blocks fills of that key for
    /// this long.
    pub fn fill_lease(mut self, lease: Duration) -> Self {
        self.settings.lease_ttl = capped(lease);
        self
    }

    /// How long a `lock = true` call waits for another process's load of the
    /// same key before loading itself (default 3 s).
    pub fn lock_wait(mut self, wait: Duration) -> Self {
        self.settings.lock_wait = capped(wait);
        self
    }

    /// Whether concurrent misses of one key in this process share one load
    /// (default `true`). Off, each caller loads for itself.
    pub fn single_flight(mut self, on: bool) -> Self {
        self.settings.single_flight = on;
        self
    }

    /// XFetch's β for calls that do not set one (default 1.0): how eagerly a
    /// hot entry is refreshed before it expires; larger is earlier, 0 turns
    /// early refresh off. Finite and not negative.
    pub fn beta(mut self, beta: f64) -> Self {
        self.settings.beta = beta;
        self
    }

    /// Whether calls that do not say wait for another process's load of the
    /// same key (default `false`).
    pub fn lock(mut self, on: bool) -> Self {
        self.settings.lock = on;
        self
    }

    /// The TTL jitter of calls that do not set one: each entry's TTL is
    /// shortened by a random part of up to this fraction (default 0; `0.1`
    /// is 10%). From 0 up to (not including) 1.
    pub fn jitter(mut self, fraction: f64) -> Self {
        self.settings.jitter = fraction;
        self
    }

    /// How long fail-safe serves an old value before a call runs the
    /// failing loader again (default 30 s; at least 1 ms): the old value is
    /// stored as fresh for this long, so a database that is down is not hit
    /// by every call.
    pub fn fail_safe_throttle(mut self, throttle: Duration) -> Self {
        self.settings.fail_safe_throttle = capped(throttle);
        self
    }

    /// Turns on the in-process tier in front of Redis (or a cluster),
    /// holding up to `entries` decoded values: a hit there is a lookup and
    /// a clone, with no round trip. Every instance drops what another
    /// invalidates as soon as the announcement arrives; see the README's
    /// "Two tiers" for exactly what is guaranteed. 0 (the default) turns it
    /// off; ignored for the in-memory cache, which is in process already.
    pub fn local_capacity(mut self, entries: u64) -> Self {
        self.local_capacity = entries;
        self
    }

    /// The longest an entry is served from the in-process tier (60 s by
    /// default; never past its freshness, and a function's `local_ttl` may
    /// shorten it): the bound on staleness should an announcement be lost
    /// while this instance still hears the others.
    pub fn local_ttl(mut self, ttl: Duration) -> Self {
        self.local_ttl = capped(ttl);
        self
    }

    /// The circuit breaker in front of Redis (default: 5 failures, 250 ms): after
    /// `threshold` failures in a row (timeouts, lost connections, refused
    /// credentials) every operation fails at once, so cached calls cost
    /// their body and no operation timeout; a background probe after
    /// `cool_down` (and every `cool_down` after, while it fails) closes it again
    /// when Redis answers. `threshold` 0 turns it off; at most 1000.
    /// `cool_down` from 1 ms to 30 s. The in-memory backend has none.
    /// See [`Cache::breaker_health`].
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), cachemacro_runtime::Error> {
    /// use std::time::Duration;
    /// use cachemacro_runtime::Cache;
    ///
    /// let cache = Cache::builder()
    ///     .url("redis://127.0.0.1:6379")
    ///     .breaker(3, Duration::from_millis(500))
    ///     .connect()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn breaker(mut self, threshold: u32, cool_down: Duration) -> Self {
        self.breaker = BreakerConfig {
            threshold,
            cool_down,
        };
        self
    }

    /// How many failed invalidations are kept for replay before the whole
    /// namespace is marked for a flush instead (default 10 000; at least 1).
    pub fn invalidation_queue_capacity(mut self, capacity: usize) -> Self {
        self.settings.queue_capacity = capacity;
        self
    }

    /// Takes the settings the URL carries (`?namespace=…&…`) off it; they
    /// win over the builder's (see `url.rs`).
    fn apply_url_params(&mut self) -> Result<(), Error> {
        let Some(url) = self.url.as_deref().map(str::trim) else {
            return Ok(());
        };
        let (base, params) = url::split(url, || redact(url))?;
        for param in params {
            match param {
                Param::Namespace(ns) => self.namespace = ns,
                Param::OperationTimeout(d) => self.op_timeout = capped(d),
                Param::ConnectTimeout(d) => self.connect_timeout = capped(d),
                Param::FillLease(d) => self.settings.lease_ttl = capped(d),
                Param::LockWait(d) => self.settings.lock_wait = capped(d),
                Param::FailSafeThrottle(d) => self.settings.fail_safe_throttle = capped(d),
                Param::MemoryCapacity(bytes) => self.memory_bytes = bytes,
                Param::QueueCapacity(n) => self.settings.queue_capacity = n,
                Param::SingleFlight(on) => self.settings.single_flight = on,
                Param::Lock(on) => self.settings.lock = on,
                Param::Beta(beta) => self.settings.beta = beta,
                Param::Jitter(fraction) => self.settings.jitter = fraction,
                Param::LocalCapacity(n) => self.local_capacity = n,
                Param::LocalTtl(d) => self.local_ttl = capped(d),
            }
        }
        self.url = Some(base);
        Ok(())
    }

    /// Checks every setting.
    fn validate(&self) -> Result<(), Error> {
        let ms = Duration::from_millis(1);
        let s = &self.settings;
        let breaker = self.breaker;
        let checks: [(bool, &str, &str); 12] = [
            (
                s.beta.is_finite() && s.beta >= 0.0,
                "beta",
                "a finite number, 0 or more",
            ),
            (
                (0.0..1.0).contains(&s.jitter),
                "jitter",
                "a fraction from 0 up to (not including) 1",
            ),
            (
                s.fail_safe_throttle >= ms,
                "fail_safe_throttle",
                "at least 1ms",
            ),
            (s.lease_ttl >= ms, "fill_lease", "at least 1ms"),
            (
                s.queue_capacity >= 1,
                "invalidation_queue_capacity",
                "at least 1",
            ),
            (
                self.memory_bytes >= 1024,
                "memory_capacity",
                "at least 1024 bytes",
            ),
            (self.op_timeout >= ms, "operation_timeout", "at least 1ms"),
            (self.local_ttl >= ms, "local_ttl", "at least 1ms"),
            (
                self.connect_timeout >= ms,
                "connect_timeout",
                "at least 1ms",
            ),
            (
                !self.namespace.contains(['*', '?', '[']),
                "namespace",
                "free of the glob characters * ? [",
            ),
            (
                breaker.threshold <= 1000,
                "breaker",
                "a threshold from 0 (no breaker) to 1000 failures",
            ),
            (
                (ms..=MAX_COOL_DOWN).contains(&breaker.cool_down),
                "breaker",
                "a cool-down from 1ms to 30s",
            ),
        ];
        match checks.iter().find(|(ok, ..)| !ok) {
            None => Ok(()),
            Some((_, setting, range)) => Err(Error::Config {
                setting,
                reason: format!("must be {range}"),
            }),
        }
    }

    /// Builds the cache and, for Redis, checks that the server answers.
    ///
    /// # Errors
    /// [`Error::Config`] for a setting out of range; [`Error::InvalidUrl`]
    /// for a malformed URL or unknown scheme; [`Error::Connect`] if Redis
    /// does not answer within the connect timeout.
    ///
    /// The [`Error::Connect`] says what the failure tells about the setup
    /// when it can ([`Problem`](crate::Problem): a wrong password, TLS on
    /// one side only, nothing listening), in its message too; finding out
    /// may take up to 250 ms past the connect timeout.
    pub async fn connect(self) -> Result<Cache, Error> {
        let connect_timeout = self.connect_timeout;
        let (cache, _) = self.assemble()?;
        cache.store().ping(connect_timeout).await?;
        Ok(cache)
    }

    /// Builds the cache without waiting for Redis: it connects on first use
    /// and reconnects by itself, and operations fail fast until it answers.
    /// For Redis this must run inside a tokio runtime; a check in the
    /// background logs one warning if Redis does not answer (see
    /// [`CacheBuilder`]).
    ///
    /// # Errors
    /// [`Error::Config`] for a setting out of range; [`Error::InvalidUrl`]
    /// for a malformed URL or unknown scheme.
    pub fn build(self) -> Result<Cache, Error> {
        let connect_timeout = self.connect_timeout;
        let (cache, remote) = self.assemble()?;
        if let Some(store) = remote {
            startup::spawn_check(store, connect_timeout);
        }
        Ok(cache)
    }

    /// The cache, and its store if that is remote (to check at start-up).
    fn assemble(mut self) -> Result<(Cache, Option<Arc<dyn Store>>), Error> {
        self.apply_url_params()?;
        self.validate()?;
        if let Some(nodes) = self.cluster.take() {
            return self.build_cluster(
                &nodes,
                format!(
                    "cluster {}",
                    nodes
                        .iter()
                        .map(|n| redact(n))
                        .collect::<Vec<_>>()
                        .join(",")
                ),
            );
        }
        if let Some(url) = self.url.as_deref().map(str::trim)
            && let Some(nodes) = cluster_url::nodes(url)
        {
            let nodes = nodes.map_err(|reason| Error::InvalidUrl {
                url: redact(url),
                reason,
            })?;
            let described = redact(url);
            return self.build_cluster(&nodes, described);
        }
        let store: Arc<dyn Store> = match self.url.as_deref().map(str::trim) {
            None | Some("") => return Ok((self.local(), None)),
            Some(url) if url.starts_with("memory://") => return Ok((self.local(), None)),
            Some(url) if url.starts_with("redis://") || url.starts_with("rediss://") => {
                #[cfg(not(feature = "tls"))]
                if url.starts_with("rediss://") {
                    return Err(Error::InvalidUrl {
                        url: redact(url),
                        reason: "rediss:// needs the `tls` feature of cachemacro-runtime".into(),
                    });
                }
                self.guarded(RedisStore::lazy(
                    url,
                    self.connect_timeout,
                    self.op_timeout,
                )?)
            }
            Some(url) => {
                return Err(Error::InvalidUrl {
                    url: redact(url),
                    reason: "expected redis://, rediss://, redis+cluster://, rediss+cluster:// or memory://".into(),
                });
            }
        };
        Ok((self.remote(store.clone()), Some(store)))
    }

    /// An in-memory cache with these settings.
    fn local(&self) -> Cache {
        let store = Arc::new(MemoryStore::new(self.memory_bytes));
        Cache::from_parts(store, &self.namespace, self.settings)
    }

    /// A cache on a shared (Redis) store, with its tier.
    fn remote(&self, store: Arc<dyn Store>) -> Cache {
        Cache::with_tier(store, &self.namespace, self.settings, Some(self.tier()))
    }

    /// A Redis store behind its circuit breaker (unless it is off); with
    /// the `metrics` feature, its round trips timed (`store/timed.rs`).
    fn guarded(&self, store: RedisStore) -> Arc<dyn Store> {
        let store: Arc<dyn Store> = Arc::new(store);
        #[cfg(feature = "metrics")]
        let store: Arc<dyn Store> = Arc::new(crate::store::timed::Timed::new(store));
        if self.breaker.threshold == 0 {
            return store;
        }
        Arc::new(Breaker::new(store, self.breaker, self.op_timeout))
    }

    /// The tier a shared backend gets.
    fn tier(&self) -> TierConfig {
        TierConfig {
            local_capacity: self.local_capacity,
            local_ttl: self.local_ttl,
            op_timeout: self.op_timeout,
            connect_timeout: self.connect_timeout,
        }
    }

    /// A cache on the cluster `nodes` belong to.
    fn build_cluster(
        self,
        nodes: &[String],
        described: String,
    ) -> Result<(Cache, Option<Arc<dyn Store>>), Error> {
        if nodes.is_empty() {
            return Err(Error::InvalidUrl {
                url: described,
                reason: "a cluster needs at least one seed node".into(),
            });
        }
        #[cfg(not(feature = "tls"))]
        if nodes.iter().any(|n| n.starts_with("rediss://")) {
            return Err(Error::InvalidUrl {
                url: described,
                reason: "TLS (rediss) needs the `tls` feature of cachemacro-runtime".into(),
            });
        }
        let store = self.guarded(RedisStore::lazy_cluster(
            nodes,
            described,
            self.connect_timeout,
            self.op_timeout,
        )?);
        Ok((self.remote(store.clone()), Some(store)))
    }
}

impl Cache {
    /// An in-memory cache (64 MiB, see [`CacheBuilder::memory_capacity`]).
    pub fn memory() -> Cache {
        Cache::from_parts(
            Arc::new(MemoryStore::new(DEFAULT_MEMORY_BYTES)),
            "",
            Settings::default(),
        )
    }

    /// Starts configuring a cache.
    pub fn builder() -> CacheBuilder {
        CacheBuilder::default()
    }

    /// Connects to `redis://…`, `rediss://…` or `memory://` with default
    /// settings; see [`CacheBuilder::connect`].
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), cachemacro_runtime::Error> {
    /// let cache = cachemacro_runtime::Cache::connect("redis://127.0.0.1:6379").await?;
    /// # Ok(()) }
    /// ```
    pub async fn connect(url: &str) -> Result<Cache, Error> {
        Cache::builder().url(url).connect().await
    }

    /// The cache named by `CACHE_URL`, or an in-memory one when it is unset
    /// or empty.
    ///
    /// ## Behavior
    /// Unlike [`Cache::connect`], an unreachable Redis is not an error here:
    /// it is logged at warn and the cache keeps trying to connect, so a
    /// service that boots before its Redis still starts (and runs uncached
    /// until Redis answers).
    ///
    /// # Errors
    /// [`Error::InvalidUrl`] when `CACHE_URL` is malformed.
    pub async fn from_env() -> Result<Cache, Error> {
        let (cache, remote) = Cache::env_builder().assemble()?;
        if let Some(store) = remote {
            // Logs the warning itself; the cache keeps trying.
            let _ = startup::check(store.as_ref(), DEFAULT_CONNECT_TIMEOUT).await;
        }
        Ok(cache)
    }

    pub(crate) fn from_env_lazy() -> Result<Cache, Error> {
        Cache::env_builder().build()
    }

    fn env_builder() -> CacheBuilder {
        let builder = Cache::builder();
        match std::env::var("CACHE_URL") {
            Ok(url) => builder.url(url),
            Err(_) => builder,
        }
    }

    pub(crate) fn unavailable(why: String) -> Cache {
        Cache::from_parts(Arc::new(Unavailable(why)), "", Settings::default())
    }
}
