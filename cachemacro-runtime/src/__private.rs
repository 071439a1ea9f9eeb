//! What the macros expand to. Not public API: names and signatures here
//! change with the macro crate, which is always the same version.
//!
//! ## Behavior
//!
//! * **Reads** are one round trip (a Lua script on Redis): the entry is a hit
//!   only if every tag it recorded still has the version it recorded. On a
//!   miss the same round trip reads the current tag versions and reserves
//!   the key with a *fill lease*.
//! * **Race-free fills.** The loaded value is stored only if the key still
//!   holds this caller's lease, checked atomically on the server. Deleting
//!   the key (an exact invalidation, or a prefix one whose `SCAN` finds the
//!   lease) drops the fill; invalidating a tag changes its version, so an
//!   entry recorded with the old one is never served. A reader that loaded
//!   the old row before a write can therefore never store it after the
//!   write's invalidation (counted in `fills_dropped`).
//! * A read failure (backend error, timeout) runs the body and does not try
//!   to store its value: Redis is likely unreachable, and a second timeout
//!   would double the caller's wait.
//! * A key that cannot be built (a `<name:hash>` value that fails to
//!   serialize) bypasses the cache for that call.
//! * **Invalidations** run after the body succeeded (any value of a
//!   non-`Result` function, `Ok` of a `Result`), and before it too with
//!   `before = true`: all exact keys and tags in one `UNLINK`, then each
//!   prefix. A failure is logged at warn with the key or prefix, counted, and
//!   queued for replay (see `replay.rs`); it never changes the value returned.

use std::sync::Arc;
use std::time::Duration;

pub use crate::Cache;
pub use crate::codec::{Bincode, Cacheable, Codec};
pub use crate::key::{KeyBuilder, Pattern};
pub use crate::registry::Registration;
pub use inventory;

use crate::Error;
use crate::backend::{Lease, MissKind, Read, ReadRequest, new_lease};
use crate::codec::{Decoded, TagVersion, decode_entry, encode_entry};
use crate::flight::{self, Join, Outcome};
use crate::stats::Recorder;

/// One `#[cached]` function, as static data.
pub struct Site {
    pub template: &'static str,
    pub function: &'static str,
    pub file: &'static str,
    pub line: u32,
    pub ttl: Duration,
    pub none_ttl: Option<Duration>,
    /// Tag templates, as written.
    pub tags: &'static [&'static str],
    /// `lock = true`: wait for another process's load of the key.
    pub lock: bool,
    /// `jitter`: fraction of the TTL taken off at random, 0 to < 1.
    pub jitter: f64,
}

/// One `#[invalidates]` function, as static data.
pub struct InvalidationSite {
    pub function: &'static str,
    pub file: &'static str,
    pub line: u32,
    /// Key patterns, as written (a trailing `*` clears a prefix).
    pub patterns: &'static [&'static str],
    /// Tag templates, as written.
    pub tags: &'static [&'static str],
    /// Also invalidate before the body runs.
    pub before: bool,
}

/// The default cache, as an owned handle (one `Arc` clone).
pub fn default_cache() -> Cache {
    crate::default_cache().clone()
}

/// Builds `Duration`s in consts without naming `std` in generated code.
pub const fn millis(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

/// A call's key and tags, as built from its arguments.
pub struct Request {
    key: String,
    tags: Vec<String>,
}

/// Joins a key and its tags; the first one that could not be built wins.
pub fn request(
    key: Result<String, Error>,
    tags: Vec<Result<String, Error>>,
) -> Result<Request, Error> {
    Ok(Request {
        key: key?,
        tags: tags.into_iter().collect::<Result<_, _>>()?,
    })
}

/// What a miss may store, and under which lease and tag versions.
struct Fill<'a> {
    key: &'a str,
    lease: Option<LeaseGuard<'a>>,
    tags: Vec<(String, TagVersion)>,
}

impl Fill<'_> {
    /// Gives the key back when nothing will be stored (an `Err`, an
    /// uncached `None`), so the next caller can fill it at once.
    async fn give_back(mut self) {
        if let Some(mut guard) = self.lease.take() {
            // Disarmed only once it landed; otherwise the guard retries.
            if guard
                .cache
                .0
                .backend
                .release(self.key, &guard.lease)
                .await
                .is_ok()
            {
                guard.armed = false;
            }
        }
    }
}

/// Holds a fill lease; if the body panics or the call is cancelled, gives
/// the lease back in the background instead of leaving the key reserved
/// for the whole lease time.
///
/// Borrows the cache and key: a read that hits costs no allocation here;
/// they are cloned only when a release has to be spawned.
struct LeaseGuard<'a> {
    cache: &'a Cache,
    key: &'a str,
    lease: Lease,
    armed: bool,
}

impl Drop for LeaseGuard<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let (cache, key, lease) = (self.cache.clone(), self.key.to_owned(), self.lease);
            // A read that timed out may still run on a stalled server and
            // take its lease later: retry the (idempotent) release a while.
            runtime.spawn(async move {
                let mut delay = Duration::from_millis(100);
                for _ in 0..6 {
                    if cache.0.backend.release(&key, &lease).await.is_ok()
                        && delay > Duration::from_millis(100)
                    {
                        return;
                    }
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
            });
        }
    }
}

enum Lookup<'a, T> {
    /// The value, and the entry bytes it came from (for waiting callers).
    Hit(T, Vec<u8>),
    /// Absent, stale or undecodable: load, then store if leased.
    Miss(Fill<'a>),
    /// The backend failed or invalidations are pending: load, don't store.
    Bypass,
}

/// Reads `key` for a generated call; with `lock`, waits while another
/// process holds the key's fill lease (polling, 5 ms doubling to 100 ms, up
/// to the cache's lock wait), then loads itself rather than hang.
async fn lookup<'a, C: Codec, T: Cacheable>(
    cache: &'a Cache,
    rec: &Recorder<'_>,
    site: &'static Site,
    key: &'a str,
    request: &Request,
    recursive: bool,
) -> Lookup<'a, T> {
    if !cache.ready() {
        rec.add(|c| &c.bypassed, 1);
        return Lookup::Bypass;
    }
    let tags: Vec<String> = request.tags.iter().map(|t| cache.tag_key(t)).collect();
    let lease = new_lease();
    // Armed before the read: if the read errors, times out or is cancelled,
    // the script may still have taken the lease on the server; the guard
    // gives it back (a compare-and-delete, harmless if it was never taken).
    let mut guard = LeaseGuard {
        cache,
        key,
        lease,
        armed: true,
    };
    let mut read = ReadRequest {
        tags: &tags,
        lease: &lease,
        lease_ttl: cache.0.lease_ttl,
        tag_ttl: site.ttl.max(site.none_ttl.unwrap_or_default()),
        force_miss: false,
    };
    let mut outcome = cache.0.backend.read(key, &read).await;
    // A recursive call would wait on its own outer lease.
    if site.lock
        && !recursive
        && matches!(
            outcome,
            Ok(Read::Miss {
                kind: MissKind::Leased,
                leased: false,
                ..
            })
        )
    {
        rec.add(|c| &c.lock_waits, 1);
        let now = tokio::time::Instant::now();
        let deadline = now
            .checked_add(cache.0.lock_wait)
            .unwrap_or(now + Duration::from_secs(86_400 * 365));
        let mut delay = Duration::from_millis(5);
        while matches!(
            outcome,
            Ok(Read::Miss {
                kind: MissKind::Leased,
                leased: false,
                ..
            })
        ) {
            if tokio::time::Instant::now() + delay > deadline {
                rec.add(|c| &c.lock_timeouts, 1);
                tracing::debug!(
                    key,
                    "waited the whole lock wait for another process's load; loading here"
                );
                break;
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_millis(100));
            outcome = cache.0.backend.read(key, &read).await;
        }
    }
    if let Ok(Read::Hit(bytes)) = &outcome {
        match decode_entry::<C, T>(bytes) {
            Decoded::Value(value) => {
                rec.add(|c| &c.hits, 1);
                guard.armed = false;
                let Ok(Read::Hit(bytes)) = outcome else {
                    unreachable!("matched above")
                };
                return Lookup::Hit(value, bytes);
            }
            Decoded::Mismatch(why) => {
                rec.add(|c| &c.decode_errors, 1);
                tracing::debug!(key, reason = ?why, "cached bytes do not decode as {}; treating as a miss", std::any::type_name::<T>());
                // Rare: a second round trip to reserve the key over the bad bytes.
                read.force_miss = true;
                outcome = cache.0.backend.read(key, &read).await;
            }
        }
    }
    match outcome {
        Ok(Read::Miss {
            kind,
            leased,
            versions,
        }) => {
            rec.add(|c| &c.misses, 1);
            if kind == MissKind::Unreadable && !read.force_miss {
                rec.add(|c| &c.decode_errors, 1);
            }
            guard.armed = leased;
            let lease = leased.then_some(guard);
            Lookup::Miss(Fill {
                key,
                lease,
                tags: tags.into_iter().zip(versions).collect(),
            })
        }
        Ok(Read::Hit(_)) => {
            rec.add(|c| &c.misses, 1);
            guard.armed = false;
            Lookup::Bypass
        }
        Err(e) => {
            rec.add(|c| &c.errors, 1);
            cache.log_failure("read", site.template, key, &e);
            Lookup::Bypass // the guard releases any lease the read took
        }
    }
}

/// What became of a value to store.
enum Stored {
    /// Stored: the entry's bytes.
    Landed(Arc<Vec<u8>>),
    /// The fill found its lease gone: an invalidation came while it loaded.
    Refused,
    /// Not stored (no lease, or the backend or codec failed); the value is
    /// as good as the caller's own.
    Skipped,
}

/// Stores `value` under the fill's lease.
async fn store<C: Codec, T: Cacheable>(
    cache: &Cache,
    rec: &Recorder<'_>,
    site: &'static Site,
    mut fill: Fill<'_>,
    value: &T,
    ttl: Duration,
) -> Stored {
    // Without the lease another caller is filling this key.
    if fill.lease.is_none() {
        return Stored::Skipped;
    }
    let bytes: Arc<Vec<u8>> = match encode_entry::<C, T>(value, &fill.tags) {
        Ok(bytes) => Arc::new(bytes),
        Err(e) => {
            rec.add(|c| &c.errors, 1);
            cache.log_failure("write", site.template, fill.key, &e);
            fill.give_back().await;
            return Stored::Skipped;
        }
    };
    let Some(mut guard) = fill.lease.take() else {
        return Stored::Skipped;
    };
    let tag_keys: Vec<String> = std::mem::take(&mut fill.tags)
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    let ttl = jittered(ttl, site.jitter);
    match cache
        .0
        .backend
        .fill(fill.key, &guard.lease, &tag_keys, &bytes, ttl)
        .await
    {
        Ok(true) => {
            // The fill script settled the lease.
            guard.armed = false;
            rec.add(|c| &c.stores, 1);
            Stored::Landed(bytes)
        }
        Ok(false) => {
            guard.armed = false;
            rec.add(|c| &c.fills_dropped, 1);
            tracing::debug!(
                key = fill.key,
                "an invalidation came while this value loaded; not storing it"
            );
            Stored::Refused
        }
        Err(e) => {
            rec.add(|c| &c.errors, 1);
            cache.log_failure("write", site.template, fill.key, &e);
            // The fill may not have run: the guard gives the lease back.
            Stored::Skipped
        }
    }
}

/// Shortens a TTL by a random part of `jitter` (0 to < 1), so entries
/// written together do not all expire together; never longer than `ttl`.
fn jittered(ttl: Duration, jitter: f64) -> Duration {
    if jitter <= 0.0 {
        return ttl;
    }
    ttl.mul_f64(1.0 - jitter * rand::random::<f64>())
        .max(Duration::from_millis(1))
}

fn count_load(rec: &Recorder<'_>) {
    rec.add(|c| &c.loads, 1);
}

/// Read, load on a miss, store: one caller's path, and what it can share.
#[allow(clippy::too_many_arguments)]
async fn direct<C, S, O, F>(
    cache: &Cache,
    rec: &Recorder<'_>,
    site: &'static Site,
    key: &str,
    request: &Request,
    body: F,
    store_as: &impl for<'a> Fn(&'a O) -> Option<(&'a S, Duration)>,
    unstore: impl FnOnce(S) -> O,
    recursive: bool,
) -> (O, Outcome)
where
    C: Codec,
    S: Cacheable,
    F: Future<Output = O>,
{
    match lookup::<C, S>(cache, rec, site, key, request, recursive).await {
        Lookup::Hit(value, bytes) => (unstore(value), Outcome::Entry(Arc::new(bytes))),
        Lookup::Miss(fill) => {
            let out = body.await;
            count_load(rec);
            let outcome = match store_as(&out) {
                Some((value, ttl)) => match store::<C, S>(cache, rec, site, fill, value, ttl).await
                {
                    Stored::Landed(bytes) => Outcome::Entry(bytes),
                    Stored::Refused => Outcome::Nothing,
                    Stored::Skipped => unstored::<C, S>(value),
                },
                None => {
                    fill.give_back().await;
                    Outcome::Nothing
                }
            };
            (out, outcome)
        }
        Lookup::Bypass => {
            count_load(rec);
            let out = body.await;
            let outcome =
                store_as(&out).map_or(Outcome::Nothing, |(value, _)| unstored::<C, S>(value));
            (out, outcome)
        }
    }
}

/// The leader's value for its waiters when it could not be stored.
fn unstored<C: Codec, S: Cacheable>(value: &S) -> Outcome {
    encode_entry::<C, S>(value, &[])
        .map_or(Outcome::Nothing, |bytes| Outcome::Unstored(Arc::new(bytes)))
}

/// The one path behind `cached`, `cached_result` and `cached_option`:
/// single-flight in the process around [`direct`]. `store_as` says what to
/// store (and for how long) for an output; `unstore` rebuilds an output
/// from a stored value.
async fn through<C, S, O, F>(
    cache: Cache,
    site: &'static Site,
    request: Result<Request, Error>,
    body: F,
    store_as: impl for<'a> Fn(&'a O) -> Option<(&'a S, Duration)>,
    unstore: impl FnOnce(S) -> O,
) -> O
where
    C: Codec,
    S: Cacheable,
    F: Future<Output = O>,
{
    let rec = cache.recorder(Some(site.template));
    let request = match request {
        Ok(request) => request,
        Err(e) => {
            rec.add(|c| &c.errors, 1);
            cache.log_failure("key building", site.template, "", &e);
            count_load(&rec);
            return body.await;
        }
    };
    let key = cache.full_key(&request.key).into_owned();
    if !cache.0.single_flight || flight::leading(&key) {
        // Off, or a recursive call with the same key (waiting would wait for itself).
        let recursive = flight::leading(&key);
        return direct::<C, S, O, F>(
            &cache, &rec, site, &key, &request, body, &store_as, unstore, recursive,
        )
        .await
        .0;
    }
    match cache.0.flights.join(&key) {
        Join::Leader(leader) => {
            let run = direct::<C, S, O, F>(
                &cache, &rec, site, &key, &request, body, &store_as, unstore, false,
            );
            let (out, outcome) = flight::as_leader(&key, run).await;
            leader.finish(outcome);
            out
        }
        Join::Follower(slot) => {
            rec.add(|c| &c.coalesced, 1);
            // Bounded: a leader that awaits a task making the same call
            // (where its task-local is not seen) would otherwise never finish.
            let waited = tokio::time::timeout(cache.0.lease_ttl, flight::wait(slot)).await;
            if let Ok(Outcome::Entry(bytes)) = waited {
                if let Decoded::Value(value) = decode_entry::<C, S>(&bytes) {
                    return unstore(value);
                }
            }
            // The leader stored nothing to share: run this caller's own body.
            count_load(&rec);
            body.await
        }
    }
}

/// `cache_if` / `unless` absent: store every value.
pub fn always<V: ?Sized>(_: &V) -> bool {
    true
}

/// `unless` absent.
pub fn never<V: ?Sized>(_: &V) -> bool {
    false
}

/// `cache_if = a, unless = b`: store when `a` holds and `b` does not. `V` is
/// named by the macro so a bare closure's parameter type is known.
pub fn keep<V: ?Sized, A: Fn(&V) -> bool, B: Fn(&V) -> bool>(a: A, b: B) -> impl Fn(&V) -> bool {
    move |v| a(v) && !b(v)
}

/// `#[cached]` on a function returning a plain `T`: every value is stored.
pub async fn cached<C: Codec, T: Cacheable, F: Future<Output = T>, K: Fn(&T) -> bool>(
    cache: Cache,
    site: &'static Site,
    request: Result<Request, Error>,
    body: F,
    keep: K,
) -> T {
    through::<C, T, T, F>(
        cache,
        site,
        request,
        body,
        |v| keep(v).then_some((v, site.ttl)),
        |v| v,
    )
    .await
}

/// `#[cached]` on a function returning `Result<T, E>`: only `Ok` is stored.
pub async fn cached_result<
    C: Codec,
    T: Cacheable,
    E,
    F: Future<Output = Result<T, E>>,
    K: Fn(&T) -> bool,
>(
    cache: Cache,
    site: &'static Site,
    request: Result<Request, Error>,
    body: F,
    keep: K,
) -> Result<T, E> {
    through::<C, T, Result<T, E>, F>(
        cache,
        site,
        request,
        body,
        |r| r.as_ref().ok().filter(|v| keep(v)).map(|v| (v, site.ttl)),
        Ok,
    )
    .await
}

/// `#[cached]` on a function returning `Option<T>`: `Some` is stored for
/// the TTL; `None` only when `none_ttl` is set, for that long.
pub async fn cached_option<
    C: Codec,
    T: Cacheable,
    F: Future<Output = Option<T>>,
    K: Fn(&T) -> bool,
>(
    cache: Cache,
    site: &'static Site,
    request: Result<Request, Error>,
    body: F,
    keep: K,
) -> Option<T> {
    through::<C, Option<T>, Option<T>, F>(
        cache,
        site,
        request,
        body,
        |o| match o {
            Some(v) => keep(v).then_some((o, site.ttl)),
            None => site.none_ttl.map(|ttl| (o, ttl)),
        },
        |v| v,
    )
    .await
}

/// One pattern or tag of an `#[invalidates]`: its template, and what it built.
pub type Planned = (&'static str, (Pattern, Option<Error>));

/// `#[invalidates]` on a function not returning `Result`: always invalidates.
pub async fn invalidating<T, F: Future<Output = T>>(
    cache: Cache,
    site: &'static InvalidationSite,
    plan: Vec<Planned>,
    body: F,
) -> T {
    around(&cache, site, &plan, body, |_| true).await
}

/// `#[invalidates]` on a function returning `Result`: invalidates on `Ok`.
pub async fn invalidating_result<T, E, F: Future<Output = Result<T, E>>>(
    cache: Cache,
    site: &'static InvalidationSite,
    plan: Vec<Planned>,
    body: F,
) -> Result<T, E> {
    around(&cache, site, &plan, body, Result::is_ok).await
}

/// Runs the body between the invalidations: before it with `before = true`,
/// after it when `succeeded` says the write went through.
async fn around<O, F: Future<Output = O>>(
    cache: &Cache,
    site: &'static InvalidationSite,
    plan: &[Planned],
    body: F,
    succeeded: impl FnOnce(&O) -> bool,
) -> O {
    if site.before {
        run_invalidations(cache, site, plan).await;
    }
    let out = body.await;
    if succeeded(&out) {
        run_invalidations(cache, site, plan).await;
    }
    out
}

async fn run_invalidations(cache: &Cache, site: &'static InvalidationSite, plan: &[Planned]) {
    let mut targets = Vec::with_capacity(plan.len());
    for (template, (pattern, widened)) in plan {
        if let Some(e) = widened {
            tracing::warn!(function = site.function, template, error = %e,
                "an invalidation key could not be built; clearing everything under its literal prefix instead");
        }
        targets.push((*template, cache.target(pattern)));
    }
    let full: Vec<Pattern> = targets.iter().map(|(_, t)| t.clone()).collect();
    // If the caller is cancelled while the deletes are in flight (a handler
    // timeout, a dropped request), the guard queues them: after the body
    // ran, an invalidation is never lost silently.
    let guard = CancelGuard {
        cache,
        site,
        targets: Some(full.clone()),
    };
    let result = cache.delete_targets(&full, false).await;
    guard.disarm();
    match result {
        Ok(_) => {
            for (template, _) in &targets {
                cache.recorder(Some(template)).record_invalidation(true);
            }
        }
        Err((e, failed)) => {
            for (template, target) in &targets {
                let lost = failed.contains(target);
                cache.recorder(Some(template)).record_invalidation(!lost);
                if lost {
                    warn_lost(cache, site, template, target, &e);
                }
            }
            cache.enqueue(failed);
        }
    }
}

/// Queues an invalidation whose call was dropped before it landed.
struct CancelGuard<'a> {
    cache: &'a Cache,
    site: &'static InvalidationSite,
    targets: Option<Vec<Pattern>>,
}

impl CancelGuard<'_> {
    fn disarm(mut self) {
        self.targets = None;
    }
}

impl Drop for CancelGuard<'_> {
    fn drop(&mut self) {
        if let Some(targets) = self.targets.take() {
            tracing::warn!(
                function = self.site.function,
                file = self.site.file,
                line = self.site.line,
                "an invalidating call was cancelled before its invalidations landed; queued for replay"
            );
            self.cache.enqueue(targets);
            // delete_targets did not finish, so it did not mark this.
            self.cache.0.flights.invalidated();
        }
    }
}

/// Never throttled: a failed invalidation means stale data until it lands.
fn warn_lost(cache: &Cache, site: &InvalidationSite, template: &str, target: &Pattern, e: &Error) {
    let key = match target {
        Pattern::Exact(k) => k.clone(),
        Pattern::Prefix(p) | Pattern::TagPrefix(p) => format!("{p}*"),
        Pattern::Tag(t) => t.clone(),
    };
    tracing::warn!(
        function = site.function,
        file = site.file,
        line = site.line,
        template,
        key,
        error = %e,
        backend = %cache.describe(),
        "cache invalidation failed; queued for replay, and this cache is bypassed until it lands"
    );
}
