//! Early refresh (XFetch), stale-while-revalidate, fail-safe and load
//! timeouts, on every backend. Memory runs on a paused clock; Redis and the
//! cluster age a key by shortening its TTL (`Backend::age`), so all are exact.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::time::Duration;

use cachemacro_runtime::{Cache, LoadTimeout, cached, invalidates};
use cachemacro_tests::{Backend, Server, eventually, on_every_backend_paused};
use tokio::sync::watch;

/// A source whose row changes, that can fail, be slow, or be held mid-load.
/// Cheap to clone, like a pool handle: `stale` and `timeout` copy it into
/// their background loads.
#[derive(Clone)]
struct Db(Arc<Inner>);

struct Inner {
    version: AtomicU64,
    loads: AtomicU64,
    failing: AtomicBool,
    slow_ms: AtomicU64,
    held: watch::Sender<bool>,
}

impl Db {
    fn new() -> Db {
        Db(Arc::new(Inner {
            version: AtomicU64::new(0),
            loads: AtomicU64::new(0),
            failing: AtomicBool::new(false),
            slow_ms: AtomicU64::new(0),
            held: watch::Sender::new(false),
        }))
    }

    /// Reads the row as it is when the load starts, then waits while held
    /// and for `slow_ms`: a load that began before a write returns the old row.
    async fn row(&self) -> Result<u64, String> {
        self.0.loads.fetch_add(1, SeqCst);
        let version = self.0.version.load(SeqCst);
        let mut held = self.0.held.subscribe();
        let _ = held.wait_for(|h| !h).await;
        let slow = self.0.slow_ms.load(SeqCst);
        if slow > 0 {
            tokio::time::sleep(Duration::from_millis(slow)).await;
        }
        if self.0.failing.load(SeqCst) {
            Err("database down".into())
        } else {
            Ok(version)
        }
    }

    fn loads(&self) -> u64 {
        self.0.loads.load(SeqCst)
    }

    fn write(&self, version: u64) {
        self.0.version.store(version, SeqCst);
    }

    fn fail(&self, on: bool) {
        self.0.failing.store(on, SeqCst);
    }

    fn slow(&self, ms: u64) {
        self.0.slow_ms.store(ms, SeqCst);
    }

    fn hold(&self, on: bool) {
        self.0.held.send_replace(on);
    }
}

/// The caller must not wait on a held or slow load: it must answer within
/// this (on the paused clock, a wait that blocks makes this fire at once).
async fn at_once<T>(call: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_millis(500), call)
        .await
        .expect("the caller waited for the load")
}

const MINUTE: Duration = Duration::from_secs(60);

#[cached(key = "swr:<id>", ttl = "1m", stale = "10m", cache = cache)]
async fn swr(cache: &Cache, db: &Db, id: u32) -> Result<u64, String> {
    db.row().await
}

async fn stale_serves_the_old_value_while_one_refresh_runs(b: Backend) {
    let (c, db) = (&b.cache, Db::new());
    assert_eq!(swr(c, &db, 1).await, Ok(0));
    db.write(1);
    db.hold(true);
    b.age("swr:1", MINUTE + Duration::from_secs(1)).await;
    // Past its TTL, within `stale`: every caller gets the old row at once,
    // and one refresh (held in the source) runs in the background.
    for _ in 0..10 {
        assert_eq!(at_once(swr(c, &db, 1)).await, Ok(0));
    }
    eventually("the refresh started", async || db.loads() == 2).await;
    let s = c.stats();
    assert_eq!((s.stale_served, s.loads), (10, 2), "{s:?}");
    db.hold(false);
    eventually("the refresh landed", async || swr(c, &db, 1).await == Ok(1)).await;
    assert_eq!(db.loads(), 2, "one refresh for all the stale reads");
    // The refresh counts its store after the server has it: a read may see
    // the new row a moment before the counter does.
    eventually("the refresh's store was counted", async || {
        c.stats().stores == 2
    })
    .await;
}

/// A refresh that loaded the old row before a write's invalidation never
/// stores it over the invalidation.
async fn a_refresh_never_lands_over_an_invalidation(b: Backend) {
    let (c, db) = (&b.cache, Db::new());
    assert_eq!(swr(c, &db, 2).await, Ok(0));
    db.hold(true);
    b.age("swr:2", MINUTE + Duration::from_secs(1)).await;
    assert_eq!(at_once(swr(c, &db, 2)).await, Ok(0));
    eventually("the refresh started", async || db.loads() == 2).await; // the refresh read version 0
    db.write(1);
    assert!(c.delete("swr:2").await.unwrap(), "the write's invalidation");
    db.hold(false);
    eventually("the refresh was dropped", async || {
        c.stats().fills_dropped == 1
    })
    .await;
    assert_eq!(c.get::<u64>("swr:2").await.unwrap(), None);
    assert_eq!(
        swr(c, &db, 2).await,
        Ok(1),
        "the next read loads the new row"
    );
}

#[cached(key = "safe:<id>", ttl = "1m", fail_safe = "1h", tags = ["t:<id>"], cache = cache)]
async fn safe(cache: &Cache, db: &Db, id: u32) -> Result<u64, String> {
    db.row().await
}

#[invalidates(tag = "t:<id>", cache = cache)]
async fn touch(cache: &Cache, id: u32) {}

async fn fail_safe_serves_the_last_value_when_the_body_fails(b: Backend) {
    let (c, db) = (&b.cache, Db::new());
    assert_eq!(safe(c, &db, 1).await, Ok(0));
    db.fail(true);
    b.age("safe:1", MINUTE + Duration::from_secs(1)).await;
    assert_eq!(
        safe(c, &db, 1).await,
        Ok(0),
        "the last value, not the error"
    );
    assert_eq!(c.stats().fail_safe_activations, 1);
    // Throttled: the old value is fresh again for 30 s, so the failing
    // source is not called on every request.
    assert_eq!(safe(c, &db, 1).await, Ok(0));
    assert_eq!(db.loads(), 2);
    b.age("safe:1", Duration::from_secs(31)).await;
    assert_eq!(safe(c, &db, 1).await, Ok(0));
    assert_eq!((db.loads(), c.stats().fail_safe_activations), (3, 2));
    // The source recovers: the next load after the throttle stores anew.
    db.fail(false);
    db.write(1);
    b.age("safe:1", Duration::from_secs(31)).await;
    assert_eq!(safe(c, &db, 1).await, Ok(1));
    assert_eq!(safe(c, &db, 1).await, Ok(1));
    assert_eq!(db.loads(), 4);
}

async fn fail_safe_never_serves_an_invalidated_value(b: Backend) {
    let (c, db) = (&b.cache, Db::new());
    assert_eq!(safe(c, &db, 2).await, Ok(0));
    assert_eq!(safe(c, &db, 3).await, Ok(0));
    db.fail(true);
    c.delete("safe:2").await.unwrap();
    touch(c, 3).await;
    b.age("safe:3", MINUTE + Duration::from_secs(1)).await;
    assert_eq!(safe(c, &db, 2).await, Err("database down".into()));
    assert_eq!(safe(c, &db, 3).await, Err("database down".into()));
    assert_eq!(c.stats().fail_safe_activations, 0);
}

async fn the_manual_api_sees_a_kept_entry_as_expired(b: Backend) {
    let (c, db) = (&b.cache, Db::new());
    assert_eq!(safe(c, &db, 9).await, Ok(0));
    assert_eq!(c.get::<u64>("safe:9").await.unwrap(), Some(0));
    b.age("safe:9", MINUTE + Duration::from_secs(1)).await;
    assert_eq!(c.get::<u64>("safe:9").await.unwrap(), None);
}

#[cached(key = "soft:<id>", ttl = "1m", fail_safe = "1h", timeout = "200ms", cache = cache)]
async fn soft(cache: &Cache, db: &Db, id: u32) -> Result<u64, String> {
    db.row().await
}

async fn a_slow_load_serves_the_last_value_and_lands_later(b: Backend) {
    let (c, db) = (&b.cache, Db::new());
    assert_eq!(soft(c, &db, 1).await, Ok(0));
    db.write(1);
    db.hold(true);
    b.age("soft:1", MINUTE + Duration::from_secs(1)).await;
    assert_eq!(
        at_once(soft(c, &db, 1)).await,
        Ok(0),
        "after the 200 ms timeout"
    );
    assert_eq!(c.stats().soft_timeouts, 1);
    // While that load runs, callers get the last value at once, and start none.
    assert_eq!(at_once(soft(c, &db, 1)).await, Ok(0));
    assert_eq!(db.loads(), 2);
    db.hold(false);
    eventually("the slow load landed", async || {
        soft(c, &db, 1).await == Ok(1)
    })
    .await;
    assert_eq!(db.loads(), 2, "the timed-out load stored its value");
}

#[derive(Debug)]
enum LoadError {
    #[allow(dead_code)] // read through `Debug` only
    Db(String),
    Slow(LoadTimeout),
}

impl From<LoadTimeout> for LoadError {
    fn from(t: LoadTimeout) -> Self {
        LoadError::Slow(t)
    }
}

#[cached(key = "hard:<id>", ttl = "1m", hard_timeout = "100ms", cache = cache)]
async fn hard(cache: &Cache, db: &Db, id: u32) -> Result<u64, LoadError> {
    db.row().await.map_err(LoadError::Db)
}

#[cached(key = "hard-safe:<id>", ttl = "1m", fail_safe = "1h", hard_timeout = "100ms", cache = cache)]
async fn hard_safe(cache: &Cache, db: &Db, id: u32) -> Result<u64, LoadError> {
    db.row().await.map_err(LoadError::Db)
}

async fn a_hard_timeout_gives_up_with_the_functions_error(b: Backend) {
    let (c, db) = (&b.cache, Db::new());
    db.slow(60_000);
    let err = at_once(hard(c, &db, 1)).await.unwrap_err();
    assert!(
        matches!(&err, LoadError::Slow(t) if t.after == Duration::from_millis(100) && t.function.ends_with("::hard")),
        "{err:?}"
    );
    assert_eq!(
        c.get::<u64>("hard:1").await.unwrap(),
        None,
        "nothing stored"
    );
    assert_eq!(c.stats().hard_timeouts, 1);
    // With an old value kept, fail-safe serves it instead.
    db.slow(0);
    assert!(matches!(hard_safe(c, &db, 1).await, Ok(0)));
    db.slow(60_000);
    b.age("hard-safe:1", MINUTE + Duration::from_secs(1)).await;
    assert!(matches!(at_once(hard_safe(c, &db, 1)).await, Ok(0)));
    let s = c.stats();
    assert_eq!((s.hard_timeouts, s.fail_safe_activations), (2, 1), "{s:?}");
}

#[cached(key = "bounded:<id>", ttl = "1m", stale = "10m", hard_timeout = "100ms", cache = cache)]
async fn bounded(cache: &Cache, db: &Db, id: u32) -> Result<u64, LoadError> {
    db.row().await.map_err(LoadError::Db)
}

/// A background refresh nobody waits for is still given up at the hard
/// timeout, so a stuck source does not pile up loads: the old value is
/// then kept fresh for the throttle instead of loaded again at once.
async fn a_hard_timeout_bounds_a_background_refresh(b: Backend) {
    let (c, db) = (&b.cache, Db::new());
    assert!(matches!(bounded(c, &db, 1).await, Ok(0)));
    db.slow(60_000);
    b.age("bounded:1", MINUTE + Duration::from_secs(1)).await;
    assert!(matches!(at_once(bounded(c, &db, 1)).await, Ok(0)));
    eventually("the refresh was given up", async || {
        c.stats().hard_timeouts == 1
    })
    .await;
    for _ in 0..5 {
        assert!(matches!(at_once(bounded(c, &db, 1)).await, Ok(0)));
    }
    assert_eq!(db.loads(), 2, "one given-up refresh, then the throttle");
}

/// With a load of 100 ms and β = 50, a read with 5 s left refreshes with
/// probability e^(−5/(0.1·50)) ≈ 0.37, one of a fresh 60 s entry with
/// e^(−12) ≈ 6·10⁻⁶.
#[cached(key = "hot:<id>", ttl = "1m", beta = 50, cache = cache)]
async fn hot(cache: &Cache, db: &Db, id: u32) -> Result<u64, String> {
    db.row().await
}

#[cached(key = "cold:<id>", ttl = "1m", beta = 0, cache = cache)]
async fn cold(cache: &Cache, db: &Db, id: u32) -> Result<u64, String> {
    db.row().await
}

async fn early_refresh_reloads_a_hot_entry_before_it_expires(b: Backend) {
    let (c, db) = (&b.cache, Db::new());
    db.slow(100); // the load time the entry records
    assert_eq!(hot(c, &db, 1).await, Ok(0));
    db.write(1);
    b.age("hot:1", Duration::from_secs(55)).await;
    let mut reads = 0;
    while hot(c, &db, 1).await == Ok(0) {
        reads += 1;
        assert!(reads < 200, "no early refresh in 200 reads");
    }
    let s = c.stats();
    assert_eq!(s.early_refreshes, 1, "{s:?}");
    let hot_stats = s.family("hot:<id>").unwrap();
    assert_eq!(
        (hot_stats.misses, hot_stats.stores),
        (1, 2),
        "never expired"
    );
    assert_eq!(hot(c, &db, 1).await, Ok(1), "the refreshed entry is served");
    assert_eq!(c.stats().early_refreshes, 1);
}

async fn beta_zero_never_refreshes_early(b: Backend) {
    let (c, db) = (&b.cache, Db::new());
    db.slow(100);
    assert_eq!(cold(c, &db, 1).await, Ok(0));
    db.write(1);
    b.age("cold:1", Duration::from_secs(59)).await;
    for _ in 0..200 {
        assert_eq!(cold(c, &db, 1).await, Ok(0));
    }
    assert_eq!((c.stats().early_refreshes, db.loads()), (0, 1));
}

on_every_backend_paused!(
    stale_serves_the_old_value_while_one_refresh_runs,
    a_refresh_never_lands_over_an_invalidation,
    fail_safe_serves_the_last_value_when_the_body_fails,
    fail_safe_never_serves_an_invalidated_value,
    the_manual_api_sees_a_kept_entry_as_expired,
    a_slow_load_serves_the_last_value_and_lands_later,
    a_hard_timeout_gives_up_with_the_functions_error,
    a_hard_timeout_bounds_a_background_refresh,
    early_refresh_reloads_a_hot_entry_before_it_expires,
    beta_zero_never_refreshes_early,
);

/// Plants another process's refresh lock on `key` (it is refreshing): a
/// token and an expiry a minute ahead on the server's clock, written into
/// the entry's header where the protocol keeps its lock (bytes 32..56).
async fn foreign_refresh(server: &Server, key: &str) {
    let mut raw = server.raw().await;
    let (secs, micros): (u64, u64) = redis::cmd("TIME").query_async(&mut raw).await.unwrap();
    let until = secs * 1000 + micros / 1000 + 60_000;
    let mut lock = vec![7u8; 16];
    lock.extend_from_slice(&until.to_le_bytes());
    let _: i64 = redis::cmd("SETRANGE")
        .arg(server.stored_key(key))
        .arg(32)
        .arg(lock)
        .query_async(&mut raw)
        .await
        .unwrap();
}

#[cached(key = "locked-soft:<id>", ttl = "1m", lock = true, fail_safe = "1h", timeout = "200ms", cache = cache)]
async fn locked_soft(cache: &Cache, db: &Db, id: u32) -> Result<u64, String> {
    db.row().await
}

/// With `lock`, a reader finding another process refreshing an entry that
/// `timeout` and `fail_safe` would serve does not wait out the lock wait:
/// it gets the old value at once.
#[tokio::test]
async fn lock_with_timeout_serves_the_kept_value_at_once() {
    let Some(b) = Backend::redis().await else {
        return;
    };
    let (c, db) = (&b.cache, Db::new());
    assert_eq!(locked_soft(c, &db, 1).await, Ok(0));
    b.age("locked-soft:1", MINUTE + Duration::from_secs(1))
        .await;
    foreign_refresh(b.server.as_ref().unwrap(), "locked-soft:1").await;
    assert_eq!(at_once(locked_soft(c, &db, 1)).await, Ok(0));
    let s = c.stats();
    assert_eq!(
        (s.lock_waits, s.stale_served, db.loads()),
        (0, 1, 1),
        "{s:?}"
    );
}

/// A caller that does not hold the refresh lock and whose load fails
/// serves the old value but does not re-store it: that would refuse the
/// lock holder's refresh, which stores over the entry it read.
#[tokio::test]
async fn only_the_refreshing_caller_throttles_a_failure() {
    let Some(b) = Backend::redis().await else {
        return;
    };
    let (c, db) = (&b.cache, Db::new());
    assert_eq!(safe(c, &db, 5).await, Ok(0));
    db.fail(true);
    b.age("safe:5", MINUTE + Duration::from_secs(1)).await;
    foreign_refresh(b.server.as_ref().unwrap(), "safe:5").await;
    assert_eq!(safe(c, &db, 5).await, Ok(0), "fail-safe");
    assert_eq!(safe(c, &db, 5).await, Ok(0), "fail-safe again");
    let s = c.stats();
    assert_eq!(
        (db.loads(), s.fail_safe_activations, s.stores),
        (3, 2, 1),
        "no throttle: each call loaded, nothing re-stored ({s:?})"
    );
}

#[cached(key = "slow-store:<id>", ttl = "1m", stale = "10m", hard_timeout = "1s", cache = cache)]
async fn slow_store(cache: &Cache, db: &Db, id: u32) -> Result<u64, LoadError> {
    db.row().await.map_err(LoadError::Db)
}

/// `hard_timeout` times the body, as inline: a body done in time is not
/// turned into a timeout error by a slow store after it (Redis stalls for
/// the whole 1 s operation timeout here).
#[tokio::test]
async fn a_timeout_times_the_body_not_the_store() {
    let Some(server) = cachemacro_tests::RedisServer::start_controllable() else {
        return;
    };
    let cache = server
        .builder()
        .operation_timeout(Duration::from_secs(1))
        .connect()
        .await
        .unwrap();
    let db = Db::new();
    db.slow(500);
    let call = tokio::spawn({
        let (cache, db) = (cache.clone(), db.clone());
        async move { slow_store(&cache, &db, 1).await }
    });
    eventually("the load started", async || db.loads() == 1).await;
    server.pause();
    let result = call.await.unwrap();
    server.resume();
    assert!(matches!(result, Ok(0)), "{result:?}");
    assert_eq!(cache.stats().hard_timeouts, 0);
}
