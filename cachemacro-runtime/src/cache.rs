//! The [`Cache`] handle, its builder and the manual API.

use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::Error;
use crate::backend::memory::MemoryBackend;
use crate::backend::redis::{RedisBackend, redact};
use crate::backend::{Backend, LEASE_MAGIC};
use crate::codec::{Bincode, Cacheable, Decoded, Meta, decode_entry, encode_entry, parse_entry};
use crate::flight::Flights;
use crate::key::Pattern;
use crate::replay::Queue;
use crate::stats::{Recorder, Stats, StatsRegistry};

const DEFAULT_OP_TIMEOUT: Duration = Duration::from_millis(250);
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
const DEFAULT_MEMORY_BYTES: u64 = 64 * 1024 * 1024;
const DEFAULT_LEASE: Duration = Duration::from_secs(10);
const DEFAULT_QUEUE_CAPACITY: usize = 10_000;
const DEFAULT_LOCK_WAIT: Duration = Duration::from_secs(3);
const DEFAULT_BETA: f64 = 1.0;
const DEFAULT_FAIL_SAFE_THROTTLE: Duration = Duration::from_secs(30);
/// Where tag versions live, under the namespace.
const TAG_PREFIX: &str = "__cachemacro:tag:";
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
/// * Generated code never turns a cache failure into the caller's failure:
///   the function body runs and its value is returned. Failures are counted
///   in [`Stats::errors`] and logged with `tracing` (one warning per 5 s
///   while a backend keeps failing, the rest at debug).
/// * The manual methods return [`Error`] so the caller decides.
/// * A value that no longer decodes (a changed type, corrupt bytes) reads as
///   a miss, is counted in [`Stats::decode_errors`], and is overwritten by
///   the next fill.
#[derive(Clone)]
pub struct Cache(pub(crate) Arc<Inner>);

pub(crate) struct Inner {
    pub(crate) backend: Backend,
    /// Empty, or the namespace followed by `:`.
    pub(crate) namespace: String,
    stats: StatsRegistry,
    started: Instant,
    last_warn_ms: AtomicU64,
    /// How long a fill lease holds a key (see `__private`).
    pub(crate) lease_ttl: Duration,
    /// Failed invalidations waiting to be replayed (see `replay`).
    pub(crate) pending: Mutex<Queue>,
    pub(crate) has_pending: AtomicBool,
    pub(crate) replaying: tokio::sync::Mutex<()>,
    pub(crate) replayer_running: AtomicBool,
    pub(crate) queue_capacity: usize,
    /// Single-flight in this process (see `flight`).
    pub(crate) flights: Flights,
    /// How long `lock = true` waits for another process's load.
    pub(crate) lock_wait: Duration,
    pub(crate) single_flight: bool,
    /// Defaults for functions that do not say (see the builder).
    pub(crate) defaults: Defaults,
}

/// What a `#[cached]` function gets when its attribute does not say.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Defaults {
    pub(crate) beta: f64,
    pub(crate) lock: bool,
    pub(crate) jitter: f64,
    pub(crate) fail_safe_throttle: Duration,
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults {
            beta: DEFAULT_BETA,
            lock: false,
            jitter: 0.0,
            fail_safe_throttle: DEFAULT_FAIL_SAFE_THROTTLE,
        }
    }
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("backend", &self.0.backend.describe())
            .field("namespace", &self.0.namespace)
            .finish()
    }
}

impl AsRef<Cache> for Cache {
    fn as_ref(&self) -> &Cache {
        self
    }
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
#[derive(Debug, Clone)]
#[must_use]
pub struct CacheBuilder {
    url: Option<String>,
    namespace: String,
    op_timeout: Duration,
    connect_timeout: Duration,
    memory_bytes: u64,
    lease_ttl: Duration,
    queue_capacity: usize,
    lock_wait: Duration,
    single_flight: bool,
    defaults: Defaults,
}

impl Default for CacheBuilder {
    fn default() -> Self {
        CacheBuilder {
            url: None,
            namespace: String::new(),
            op_timeout: DEFAULT_OP_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            memory_bytes: DEFAULT_MEMORY_BYTES,
            lease_ttl: DEFAULT_LEASE,
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
            lock_wait: DEFAULT_LOCK_WAIT,
            single_flight: true,
            defaults: Defaults::default(),
        }
    }
}

impl CacheBuilder {
    /// `redis://…`, `rediss://…` (with the `tls` feature) or `memory://`.
    /// Without a URL the cache is in memory.
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.url = Some(url.into());
        self
    }

    /// A prefix for every key, joined with `:` (`shop` makes `user:1` into
    /// `shop:user:1`), so several services can share one Redis.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// The longest one Redis round trip may take before the cache gives up
    /// and the function body runs (default 250 ms).
    pub fn operation_timeout(mut self, timeout: Duration) -> Self {
        self.op_timeout = timeout;
        self
    }

    /// The longest one connection attempt may take (default 1 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The most bytes (keys plus values) the memory backend keeps before it
    /// evicts (default 64 MiB).
    pub fn memory_capacity(mut self, bytes: u64) -> Self {
        self.memory_bytes = bytes;
        self
    }

    /// How long a miss reserves its key for the value it is loading (default
    /// 10 s). A load that takes longer still returns its value but may not
    /// store it; a crashed loader blocks fills of that key for this long.
    pub fn fill_lease(mut self, lease: Duration) -> Self {
        self.lease_ttl = lease;
        self
    }

    /// How long a `#[cached(lock = true)]` call waits for another process's
    /// load of the same key before loading itself (default 3 s).
    pub fn lock_wait(mut self, wait: Duration) -> Self {
        self.lock_wait = wait;
        self
    }

    /// Whether concurrent callers of one key in this process share one read
    /// and one load (default `true`; see the `flight` module docs). Off, each
    /// caller reads, and on a miss loads, for itself.
    pub fn single_flight(mut self, on: bool) -> Self {
        self.single_flight = on;
        self
    }

    /// XFetch's β for `#[cached]` functions without `beta = …` (default
    /// 1.0): how eagerly a hot entry is refreshed before it expires; larger
    /// is earlier, 0 turns early refresh off. Panics on a negative or
    /// non-finite value.
    pub fn beta(mut self, beta: f64) -> Self {
        assert!(
            beta.is_finite() && beta >= 0.0,
            "beta must be finite and not negative"
        );
        self.defaults.beta = beta;
        self
    }

    /// Whether `#[cached]` functions without `lock = …` wait for another
    /// process's load of the same key (default `false`).
    pub fn lock(mut self, on: bool) -> Self {
        self.defaults.lock = on;
        self
    }

    /// The TTL jitter of `#[cached]` functions without `jitter = …`: each
    /// entry's TTL is shortened by a random part of up to this fraction
    /// (default 0; `0.1` is 10%). Panics outside `0.0..1.0`.
    pub fn jitter(mut self, fraction: f64) -> Self {
        assert!(
            (0.0..1.0).contains(&fraction),
            "jitter is a fraction from 0 up to (not including) 1"
        );
        self.defaults.jitter = fraction;
        self
    }

    /// How long fail-safe serves an old value before a call runs the
    /// failing body again (default 30 s): the old value is stored as fresh
    /// for this long, so a database that is down is not hit by every call.
    /// Panics below 1 ms.
    pub fn fail_safe_throttle(mut self, throttle: Duration) -> Self {
        assert!(
            throttle >= Duration::from_millis(1),
            "the fail-safe throttle must be at least 1ms"
        );
        self.defaults.fail_safe_throttle = throttle;
        self
    }

    /// How many failed invalidations are kept for replay before the whole
    /// namespace is marked for a flush instead (default 10 000).
    pub fn invalidation_queue_capacity(mut self, capacity: usize) -> Self {
        self.queue_capacity = capacity.max(1);
        self
    }

    /// Builds the cache and, for Redis, checks that the server answers.
    ///
    /// # Errors
    /// [`Error::InvalidUrl`] for a malformed URL or unknown scheme;
    /// [`Error::Connect`] if Redis does not answer within the connect timeout.
    pub async fn connect(self) -> Result<Cache, Error> {
        let connect_timeout = self.connect_timeout;
        let cache = self.build()?;
        if let Backend::Redis(redis) = &cache.0.backend {
            redis.ping(connect_timeout).await?;
        }
        Ok(cache)
    }

    /// Builds the cache without waiting for Redis: it connects on first use
    /// and reconnects by itself, and operations fail fast until it answers.
    /// For Redis this must run inside a tokio runtime.
    ///
    /// # Errors
    /// [`Error::InvalidUrl`] for a malformed URL or unknown scheme.
    pub fn build(self) -> Result<Cache, Error> {
        let backend = match self.url.as_deref().map(str::trim) {
            None | Some("") => Backend::Memory(MemoryBackend::new(self.memory_bytes)),
            Some(url) if url.starts_with("memory://") => {
                Backend::Memory(MemoryBackend::new(self.memory_bytes))
            }
            Some(url) if url.starts_with("redis://") || url.starts_with("rediss://") => {
                if url.starts_with("rediss://") {
                    #[cfg(not(feature = "tls"))]
                    return Err(Error::InvalidUrl {
                        url: redact(url),
                        reason: "rediss:// needs the `tls` feature of cachemacro-runtime".into(),
                    });
                    // rustls panics at connect time when the dependency graph
                    // enables two crypto providers and none is installed;
                    // install ours unless the application already chose one.
                    #[cfg(feature = "tls")]
                    let _ = rustls::crypto::ring::default_provider().install_default();
                }
                Backend::Redis(RedisBackend::lazy(
                    url,
                    self.connect_timeout,
                    self.op_timeout,
                )?)
            }
            Some(url) => {
                return Err(Error::InvalidUrl {
                    url: redact(url),
                    reason: "expected redis://, rediss:// or memory://".into(),
                });
            }
        };
        let mut cache = Cache::from_backend(backend, self.namespace);
        let inner = Arc::get_mut(&mut cache.0).expect("a new cache has one handle");
        inner.lease_ttl = self.lease_ttl;
        inner.queue_capacity = self.queue_capacity;
        inner.lock_wait = self.lock_wait;
        inner.single_flight = self.single_flight;
        inner.defaults = self.defaults;
        Ok(cache)
    }
}

impl Cache {
    /// An in-memory cache (64 MiB, see [`CacheBuilder::memory_capacity`]).
    pub fn memory() -> Cache {
        Cache::from_backend(
            Backend::Memory(MemoryBackend::new(DEFAULT_MEMORY_BYTES)),
            String::new(),
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
        let cache = Cache::from_env_lazy()?;
        if let Backend::Redis(redis) = &cache.0.backend {
            let limit = DEFAULT_CONNECT_TIMEOUT;
            if let Err(e) = redis.ping(limit).await {
                tracing::warn!(error = %e, "CACHE_URL does not answer yet; the cache will keep trying to connect");
            }
        }
        Ok(cache)
    }

    pub(crate) fn from_env_lazy() -> Result<Cache, Error> {
        let mut builder = Cache::builder();
        if let Ok(url) = std::env::var("CACHE_URL") {
            builder = builder.url(url);
        }
        builder.build()
    }

    pub(crate) fn unavailable(why: String) -> Cache {
        Cache::from_backend(Backend::Unavailable(why), String::new())
    }

    fn from_backend(backend: Backend, namespace: String) -> Cache {
        let namespace = if namespace.is_empty() {
            namespace
        } else {
            format!("{namespace}:")
        };
        Cache(Arc::new(Inner {
            backend,
            namespace,
            stats: StatsRegistry::default(),
            started: Instant::now(),
            last_warn_ms: AtomicU64::new(0),
            lease_ttl: DEFAULT_LEASE,
            pending: Mutex::new(Queue::default()),
            has_pending: AtomicBool::new(false),
            replaying: tokio::sync::Mutex::new(()),
            replayer_running: AtomicBool::new(false),
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
            flights: Flights::default(),
            lock_wait: DEFAULT_LOCK_WAIT,
            single_flight: true,
            defaults: Defaults::default(),
        }))
    }

    /// A snapshot of this cache's counters.
    pub fn stats(&self) -> Stats {
        self.0.stats.snapshot()
    }

    /// `memory`, the Redis URL (password removed), or why it is unavailable.
    pub fn describe(&self) -> String {
        self.0.backend.describe()
    }

    /// Reads a value written by [`Cache::set`] or a `#[cached]` function.
    /// Absent, expired and undecodable entries are `Ok(None)`, and so is an
    /// entry one of whose tags was invalidated.
    ///
    /// # Errors
    /// A backend failure or timeout; [`Error::InvalidationsPending`] while
    /// failed invalidations wait to be replayed.
    pub async fn get<T: Cacheable>(&self, key: &str) -> Result<Option<T>, Error> {
        Ok(self.get_many(&[key]).await?.pop().flatten())
    }

    /// Reads several values in one round trip (`MGET`; a second one only
    /// to check tags, when entries carry any), in the order asked.
    ///
    /// # Errors
    /// As [`Cache::get`].
    pub async fn get_many<T: Cacheable>(&self, keys: &[&str]) -> Result<Vec<Option<T>>, Error> {
        self.gate().await?;
        let rec = self.recorder(None);
        let full: Vec<String> = keys.iter().map(|k| self.full_key(k).into_owned()).collect();
        let raws = self
            .read_checked(&full)
            .await
            .inspect_err(|_| rec.add(|c| &c.errors, 1))?;
        Ok(raws
            .into_iter()
            .zip(keys)
            .map(|(raw, key)| self.decode_or_miss::<Bincode, T>(&rec, raw, key))
            .collect())
    }

    /// Fetches entries and drops those whose recorded tag versions are no
    /// longer current.
    async fn read_checked(&self, full: &[String]) -> Result<Vec<Option<Vec<u8>>>, Error> {
        let mut raws = self.0.backend.get_many(full).await?;
        // A fill lease in the key: nothing stored yet, a plain miss.
        for raw in &mut raws {
            if raw.as_deref().is_some_and(|b| b.starts_with(&LEASE_MAGIC)) {
                *raw = None;
            }
        }
        self.drop_expired(full, &mut raws).await?;
        let mut tag_keys: Vec<String> = Vec::new();
        for raw in raws.iter().flatten() {
            if let Some(entry) = parse_entry(raw) {
                for (name, _) in &entry.tags {
                    tag_keys.push(String::from_utf8_lossy(name).into_owned());
                }
            }
        }
        if tag_keys.is_empty() {
            return Ok(raws);
        }
        tag_keys.sort();
        tag_keys.dedup();
        let versions = self.0.backend.get_many(&tag_keys).await?;
        let current = |name: &[u8], version: &[u8]| {
            tag_keys
                .binary_search_by(|k| k.as_bytes().cmp(name))
                .is_ok_and(|i| versions[i].as_deref() == Some(version))
        };
        for raw in &mut raws {
            let stale = raw
                .as_deref()
                .and_then(parse_entry)
                .is_some_and(|entry| !entry.tags.iter().all(|(n, v)| current(n, v)));
            if stale {
                *raw = None;
            }
        }
        Ok(raws)
    }

    /// Drops entries kept past their freshness (for `stale` or `fail_safe`):
    /// to the manual API they have expired. Costs a round trip only when
    /// some entry is kept so.
    async fn drop_expired(
        &self,
        full: &[String],
        raws: &mut [Option<Vec<u8>>],
    ) -> Result<(), Error> {
        let kept: Vec<(usize, Duration)> = raws
            .iter()
            .enumerate()
            .filter_map(|(i, raw)| {
                let grace = parse_entry(raw.as_deref()?)?.meta.grace;
                (!grace.is_zero()).then_some((i, grace))
            })
            .collect();
        if kept.is_empty() {
            return Ok(());
        }
        let keys: Vec<String> = kept.iter().map(|(i, _)| full[*i].clone()).collect();
        let pttls = self.0.backend.pttls(&keys).await?;
        for ((i, grace), pttl) in kept.into_iter().zip(pttls) {
            let fresh = pttl == -1 || (pttl >= 0 && pttl as u128 > grace.as_millis());
            if !fresh {
                raws[i] = None;
            }
        }
        Ok(())
    }

    /// Refuses while invalidations wait to be replayed.
    async fn gate(&self) -> Result<(), Error> {
        if self.ready() {
            Ok(())
        } else {
            self.recorder(None).add(|c| &c.bypassed, 1);
            Err(Error::InvalidationsPending)
        }
    }

    /// Stores a value for `ttl`.
    ///
    /// # Errors
    /// An encoding failure, or a backend failure or timeout.
    pub async fn set<T: Cacheable>(
        &self,
        key: &str,
        value: &T,
        ttl: Duration,
    ) -> Result<(), Error> {
        self.gate().await?;
        let rec = self.recorder(None);
        let bytes = encode_entry::<Bincode, T>(value, &[], Meta::default())?;
        self.backend_set(&rec, &self.full_key(key), bytes, ttl)
            .await
    }

    /// Stores several values for `ttl` in one round trip (a pipeline).
    ///
    /// # Errors
    /// An encoding failure, or a backend failure or timeout.
    pub async fn set_many<T: Cacheable>(
        &self,
        entries: &[(&str, &T)],
        ttl: Duration,
    ) -> Result<(), Error> {
        self.gate().await?;
        let rec = self.recorder(None);
        let mut encoded = Vec::with_capacity(entries.len());
        for (key, value) in entries {
            encoded.push((
                self.full_key(key).into_owned(),
                encode_entry::<Bincode, T>(value, &[], Meta::default())?,
            ));
        }
        let n = encoded.len() as u64;
        self.0
            .backend
            .set_many(encoded, ttl)
            .await
            .inspect_err(|_| rec.add(|c| &c.errors, 1))?;
        rec.add(|c| &c.stores, n);
        Ok(())
    }

    /// Stores a value only if the key holds none (`SET NX`); `true` if stored.
    ///
    /// # Errors
    /// An encoding failure, or a backend failure or timeout.
    pub async fn set_if_absent<T: Cacheable>(
        &self,
        key: &str,
        value: &T,
        ttl: Duration,
    ) -> Result<bool, Error> {
        self.gate().await?;
        let rec = self.recorder(None);
        let bytes = encode_entry::<Bincode, T>(value, &[], Meta::default())?;
        let stored = self
            .0
            .backend
            .set_if_absent(&self.full_key(key), bytes, ttl)
            .await
            .inspect_err(|_| rec.add(|c| &c.errors, 1))?;
        if stored {
            rec.add(|c| &c.stores, 1);
        }
        Ok(stored)
    }

    /// Deletes one key; `true` if it existed.
    ///
    /// # Errors
    /// A backend failure or timeout.
    pub async fn delete(&self, key: &str) -> Result<bool, Error> {
        let n = self
            .invalidate(None, &Pattern::Exact(key.to_owned()))
            .await?;
        Ok(n > 0)
    }

    /// Deletes every key under a prefix: `"sets:user:42:*"` deletes all keys
    /// starting with `sets:user:42:`. Only a trailing `*` is a wildcard; every
    /// other character, `?` and `[` included, is literal. Without a trailing
    /// `*` this deletes the one exact key. Returns how many keys went.
    ///
    /// On Redis this is `SCAN` + `UNLINK` in batches, never `KEYS`.
    ///
    /// # Errors
    /// A backend failure or timeout (keys already unlinked stay deleted).
    pub async fn delete_pattern(&self, pattern: &str) -> Result<u64, Error> {
        self.invalidate(None, &Pattern::parse(pattern)).await
    }

    /// Adds `delta` to the integer at `key` (starting from 0) and returns the
    /// result, like Redis `INCRBY`. With `ttl`, a key that has no expiry gets
    /// one, so a rate-limit window starts at its first increment.
    ///
    /// Counters are stored as decimal text, not as cached values: read them
    /// with `incr(key, 0, None)`, not [`Cache::get`].
    ///
    /// # Errors
    /// [`Error::NotAnInteger`] if the key holds something else or the sum
    /// overflows; a backend failure or timeout.
    pub async fn incr(&self, key: &str, delta: i64, ttl: Option<Duration>) -> Result<i64, Error> {
        let rec = self.recorder(None);
        self.0
            .backend
            .incr(&self.full_key(key), delta, ttl)
            .await
            .inspect_err(|e| {
                if !matches!(e, Error::NotAnInteger(_)) {
                    rec.add(|c| &c.errors, 1);
                }
            })
    }

    // ---- shared by the manual API and generated code ----

    pub(crate) fn recorder(&self, family: Option<&'static str>) -> Recorder<'_> {
        self.0.stats.recorder(family)
    }

    pub(crate) fn full_key<'a>(&self, key: &'a str) -> Cow<'a, str> {
        if self.0.namespace.is_empty() {
            Cow::Borrowed(key)
        } else {
            Cow::Owned(format!("{}{key}", self.0.namespace))
        }
    }

    pub(crate) async fn backend_set(
        &self,
        rec: &Recorder<'_>,
        key: &str,
        bytes: Vec<u8>,
        ttl: Duration,
    ) -> Result<(), Error> {
        self.0
            .backend
            .set(key, bytes, ttl)
            .await
            .inspect_err(|_| rec.add(|c| &c.errors, 1))?;
        rec.add(|c| &c.stores, 1);
        Ok(())
    }

    /// Decodes stored bytes, counting a hit, a miss or a decode error.
    pub(crate) fn decode_or_miss<C: crate::Codec, T: Cacheable>(
        &self,
        rec: &Recorder<'_>,
        raw: Option<Vec<u8>>,
        key: &str,
    ) -> Option<T> {
        let Some(bytes) = raw else {
            rec.add(|c| &c.misses, 1);
            return None;
        };
        match decode_entry::<C, T>(&bytes) {
            Decoded::Value(v) => {
                rec.add(|c| &c.hits, 1);
                Some(v)
            }
            Decoded::Mismatch(why) => {
                rec.add(|c| &c.misses, 1);
                rec.add(|c| &c.decode_errors, 1);
                tracing::debug!(key, reason = ?why, "cached bytes do not decode as {}; treating as a miss", std::any::type_name::<T>());
                None
            }
        }
    }

    /// The full key of a tag's version.
    pub(crate) fn tag_key(&self, tag: &str) -> String {
        format!("{}{TAG_PREFIX}{tag}", self.0.namespace)
    }

    /// A logical key, prefix or tag as the full (namespaced) key or prefix
    /// to delete: invalidating a tag deletes its version.
    pub(crate) fn target(&self, pattern: &Pattern) -> Pattern {
        match pattern {
            Pattern::Exact(k) => Pattern::Exact(self.full_key(k).into_owned()),
            Pattern::Prefix(p) => Pattern::Prefix(self.full_key(p).into_owned()),
            Pattern::Tag(t) => Pattern::Exact(self.tag_key(t)),
            Pattern::TagPrefix(p) => Pattern::Prefix(self.tag_key(p)),
        }
    }

    /// Deletes full targets: every exact key in one round trip, then each
    /// prefix. Returns how many keys went, or the targets that did not land.
    /// With `stop_on_error` (replays) the first failure ends the attempt, so
    /// an outage costs one timeout, not one per prefix.
    pub(crate) async fn delete_targets(
        &self,
        targets: &[Pattern],
        stop_on_error: bool,
    ) -> Result<u64, (Error, Vec<Pattern>)> {
        let exact: Vec<String> = targets
            .iter()
            .filter_map(|t| match t {
                Pattern::Exact(k) => Some(k.clone()),
                _ => None,
            })
            .collect();
        let mut deleted = 0;
        let mut failed: Vec<Pattern> = Vec::new();
        let mut error = None;
        if !exact.is_empty() {
            match self.0.backend.delete(&exact).await {
                Ok(n) => deleted += n,
                Err(e) => {
                    failed.extend(exact.into_iter().map(Pattern::Exact));
                    error = Some(e);
                }
            }
        }
        for target in targets {
            if let Pattern::Prefix(prefix) = target {
                if stop_on_error && error.is_some() {
                    failed.push(target.clone());
                    continue;
                }
                match self.0.backend.delete_prefix(prefix).await {
                    Ok(n) => deleted += n,
                    Err(e) => {
                        failed.push(target.clone());
                        error = Some(e);
                    }
                }
            }
        }
        // Landed or not, no single-flight begun before these deletes may
        // hand its value to a reader that starts after them.
        self.0.flights.invalidated();
        match error {
            None => Ok(deleted),
            Some(e) => Err((e, failed)),
        }
    }

    /// Deletes one exact key, prefix or tag, counting the invalidation (or
    /// its failure) for `family`. A failure is also logged at warn and
    /// queued for replay, as for generated invalidations, and returned.
    pub(crate) async fn invalidate(
        &self,
        family: Option<&'static str>,
        pattern: &Pattern,
    ) -> Result<u64, Error> {
        let rec = self.recorder(family);
        let target = self.target(pattern);
        let result = self
            .delete_targets(std::slice::from_ref(&target), false)
            .await;
        rec.record_invalidation(result.is_ok());
        result.map_err(|(e, failed)| {
            tracing::warn!(target = ?target, error = %e, backend = %self.describe(),
                "cache delete failed; queued for replay, and this cache is bypassed until it lands");
            self.enqueue(failed);
            e
        })
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
