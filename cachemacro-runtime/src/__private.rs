//! What the macros expand to. Not public API: names and signatures here
//! change with the macro crate, which is always the same version.
//!
//! ## Behavior
//!
//! * A read failure (backend error, timeout) runs the body and does not try
//!   to store its value: Redis is likely unreachable, and a second timeout
//!   would double the caller's wait.
//! * A key that cannot be built (a `<name:hash>` value that fails to
//!   serialize) bypasses the cache for that call.
//! * Invalidations run after the body succeeded (any value of a non-`Result`
//!   function, `Ok` of a `Result`), all exact keys in one `UNLINK`, then each
//!   prefix. A failure is logged at warn with the key or prefix and counted;
//!   it never changes the value returned.

use std::time::Duration;

pub use crate::Cache;
use crate::Error;
use crate::codec::encode_entry;
pub use crate::codec::{Bincode, Cacheable, Codec};
pub use crate::key::{KeyBuilder, Pattern};
use crate::stats::Recorder;

/// One `#[cached]` function, as static data.
pub struct Site {
    pub template: &'static str,
    pub function: &'static str,
    pub file: &'static str,
    pub line: u32,
    pub ttl: Duration,
    pub none_ttl: Option<Duration>,
}

/// One `#[invalidates]` function, as static data.
pub struct InvalidationSite {
    pub function: &'static str,
    pub file: &'static str,
    pub line: u32,
}

/// The default cache, as an owned handle (one `Arc` clone).
pub fn default_cache() -> Cache {
    crate::default_cache().clone()
}

/// Builds `Duration`s in consts without naming `std` in generated code.
pub const fn millis(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

enum Lookup<T> {
    Hit(T),
    /// Absent or undecodable: load and store.
    Miss(String),
    /// The backend failed or the key could not be built: load, don't store.
    Bypass,
}

async fn lookup<C: Codec, T: Cacheable>(
    cache: &Cache,
    rec: &Recorder<'_>,
    site: &'static Site,
    key: Result<String, Error>,
) -> Lookup<T> {
    let key = match key {
        Ok(key) => key,
        Err(e) => {
            rec.add(|c| &c.errors, 1);
            cache.log_failure("key building", site.template, "", &e);
            return Lookup::Bypass;
        }
    };
    match cache.backend_get(rec, &cache.full_key(&key)).await {
        Ok(raw) => match cache.decode_or_miss::<C, T>(rec, raw, &key) {
            Some(value) => Lookup::Hit(value),
            None => Lookup::Miss(key),
        },
        Err(e) => {
            cache.log_failure("read", site.template, &key, &e);
            Lookup::Bypass
        }
    }
}

async fn store<C: Codec, T: Cacheable>(
    cache: &Cache,
    rec: &Recorder<'_>,
    site: &'static Site,
    key: &str,
    value: &T,
    ttl: Duration,
) {
    let stored = match encode_entry::<C, T>(value) {
        Ok(bytes) => {
            cache
                .backend_set(rec, &cache.full_key(key), bytes, ttl)
                .await
        }
        Err(e) => {
            rec.add(|c| &c.errors, 1);
            Err(e)
        }
    };
    if let Err(e) = stored {
        cache.log_failure("write", site.template, key, &e);
    }
}

fn count_load(rec: &Recorder<'_>) {
    rec.add(|c| &c.loads, 1);
}

/// `#[cached]` on a function returning a plain `T`: every value is stored.
pub async fn cached<C: Codec, T: Cacheable, F: Future<Output = T>>(
    cache: Cache,
    site: &'static Site,
    key: Result<String, Error>,
    body: F,
) -> T {
    let rec = cache.recorder(Some(site.template));
    match lookup::<C, T>(&cache, &rec, site, key).await {
        Lookup::Hit(value) => value,
        Lookup::Miss(key) => {
            let value = body.await;
            count_load(&rec);
            store::<C, T>(&cache, &rec, site, &key, &value, site.ttl).await;
            value
        }
        Lookup::Bypass => {
            count_load(&rec);
            body.await
        }
    }
}

/// `#[cached]` on a function returning `Result<T, E>`: only `Ok` is stored.
pub async fn cached_result<C: Codec, T: Cacheable, E, F: Future<Output = Result<T, E>>>(
    cache: Cache,
    site: &'static Site,
    key: Result<String, Error>,
    body: F,
) -> Result<T, E> {
    let rec = cache.recorder(Some(site.template));
    match lookup::<C, T>(&cache, &rec, site, key).await {
        Lookup::Hit(value) => Ok(value),
        Lookup::Miss(key) => {
            let result = body.await;
            count_load(&rec);
            if let Ok(value) = &result {
                store::<C, T>(&cache, &rec, site, &key, value, site.ttl).await;
            }
            result
        }
        Lookup::Bypass => {
            count_load(&rec);
            body.await
        }
    }
}

/// `#[cached]` on a function returning `Option<T>`: `Some` is stored for
/// the TTL; `None` only when `none_ttl` is set, for that long.
pub async fn cached_option<C: Codec, T: Cacheable, F: Future<Output = Option<T>>>(
    cache: Cache,
    site: &'static Site,
    key: Result<String, Error>,
    body: F,
) -> Option<T> {
    let rec = cache.recorder(Some(site.template));
    match lookup::<C, Option<T>>(&cache, &rec, site, key).await {
        Lookup::Hit(value) => value,
        Lookup::Miss(key) => {
            let value = body.await;
            count_load(&rec);
            let ttl = if value.is_some() {
                Some(site.ttl)
            } else {
                site.none_ttl
            };
            if let Some(ttl) = ttl {
                store::<C, Option<T>>(&cache, &rec, site, &key, &value, ttl).await;
            }
            value
        }
        Lookup::Bypass => {
            count_load(&rec);
            body.await
        }
    }
}

/// One pattern of an `#[invalidates]`: its template, and what it built.
pub type Planned = (&'static str, (Pattern, Option<Error>));

/// `#[invalidates]` on a function not returning `Result`: always invalidates.
pub async fn invalidating<T, F: Future<Output = T>>(
    cache: Cache,
    site: &'static InvalidationSite,
    plan: Vec<Planned>,
    body: F,
) -> T {
    let value = body.await;
    run_invalidations(&cache, site, plan).await;
    value
}

/// `#[invalidates]` on a function returning `Result`: invalidates on `Ok`.
pub async fn invalidating_result<T, E, F: Future<Output = Result<T, E>>>(
    cache: Cache,
    site: &'static InvalidationSite,
    plan: Vec<Planned>,
    body: F,
) -> Result<T, E> {
    let result = body.await;
    if result.is_ok() {
        run_invalidations(&cache, site, plan).await;
    }
    result
}

async fn run_invalidations(cache: &Cache, site: &'static InvalidationSite, plan: Vec<Planned>) {
    let mut exact: Vec<(&'static str, String)> = Vec::new();
    let mut prefixes: Vec<(&'static str, String)> = Vec::new();
    for (template, (pattern, widened)) in plan {
        if let Some(e) = widened {
            tracing::warn!(function = site.function, template, error = %e,
                "an invalidation key could not be built; clearing everything under its literal prefix instead");
        }
        match pattern {
            Pattern::Exact(key) => exact.push((template, key)),
            Pattern::Prefix(prefix) => prefixes.push((template, prefix)),
        }
    }
    if !exact.is_empty() {
        let keys: Vec<String> = exact.iter().map(|(_, k)| k.clone()).collect();
        let result = cache.backend_delete(&keys).await;
        for (template, key) in &exact {
            cache
                .recorder(Some(template))
                .record_invalidation(result.is_ok());
            if let Err(e) = &result {
                warn_lost(cache, site, template, key, e);
            }
        }
    }
    for (template, prefix) in &prefixes {
        if let Err(e) = cache
            .invalidate(Some(template), &Pattern::Prefix(prefix.clone()))
            .await
        {
            warn_lost(cache, site, template, &format!("{prefix}*"), &e);
        }
    }
}

/// Never throttled: a failed invalidation means stale data until its TTL.
fn warn_lost(cache: &Cache, site: &InvalidationSite, template: &str, key: &str, e: &Error) {
    tracing::warn!(
        function = site.function,
        file = site.file,
        line = site.line,
        template,
        key,
        error = %e,
        backend = %cache.describe(),
        "cache invalidation failed; entries may be stale until their TTL"
    );
}
