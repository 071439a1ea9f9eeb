//! Stampedes: concurrent callers of a cold key share one load.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::time::Duration;

use cachemacro_runtime::{Cache, cached};
use cachemacro_tests::{Backend, on_every_backend};
use tokio::sync::Notify;

/// Counts body runs and can hold the body until released.
#[derive(Default)]
struct Db {
    runs: AtomicU64,
    gate: Notify,
}

#[cached(key = "hot:<id>", ttl = "10m", cache = cache)]
async fn hot(cache: &Cache, db: &Db, id: u32) -> Result<u64, String> {
    db.runs.fetch_add(1, SeqCst);
    db.gate.notified().await;
    Ok(u64::from(id) * 10)
}

#[cached(key = "failing:<id>", ttl = "10m", cache = cache)]
async fn failing(cache: &Cache, db: &Db, id: u32) -> Result<u64, String> {
    let run = db.runs.fetch_add(1, SeqCst);
    db.gate.notified().await;
    if run == 0 {
        Err("database down".into())
    } else {
        Ok(u64::from(id))
    }
}

#[cached(key = "panicky:<id>", ttl = "10m", cache = cache)]
async fn panicky(cache: &Cache, db: &Db, id: u32) -> u64 {
    let run = db.runs.fetch_add(1, SeqCst);
    db.gate.notified().await;
    assert!(run > 0, "the first load panics");
    u64::from(id)
}

/// Releases held bodies until `done` reports every task finished.
async fn release_until<T>(
    gate: &Notify,
    tasks: Vec<tokio::task::JoinHandle<T>>,
) -> Vec<Result<T, tokio::task::JoinError>> {
    let mut out = Vec::new();
    for t in tasks {
        let mut t = t;
        loop {
            gate.notify_waiters();
            match tokio::time::timeout(Duration::from_millis(5), &mut t).await {
                Ok(result) => {
                    out.push(result);
                    break;
                }
                Err(_) => continue,
            }
        }
    }
    out
}

fn spawn_many<T: Send + 'static>(
    n: usize,
    f: impl Fn() -> tokio::task::JoinHandle<T>,
) -> Vec<tokio::task::JoinHandle<T>> {
    (0..n).map(|_| f()).collect()
}

async fn a_thousand_cold_callers_run_the_body_once(b: Backend) {
    let db = Arc::new(Db::default());
    let tasks = spawn_many(1_000, || {
        let (cache, db) = (b.cache.clone(), db.clone());
        tokio::spawn(async move { hot(&cache, &db, 7).await })
    });
    // Every caller is in: the leader is held in its body, the rest wait.
    while b.cache.stats().coalesced < 999 {
        tokio::task::yield_now().await;
    }
    let results = release_until(&db.gate, tasks).await;
    assert!(results.into_iter().all(|r| r.unwrap() == Ok(70)));
    assert_eq!(db.runs.load(SeqCst), 1, "one body run for 1000 callers");
    let s = b.cache.stats();
    assert_eq!((s.loads, s.coalesced), (1, 999), "{s:?}");
}

async fn an_error_releases_the_waiters_who_load_themselves(b: Backend) {
    let db = Arc::new(Db::default());
    let tasks = spawn_many(10, || {
        let (cache, db) = (b.cache.clone(), db.clone());
        tokio::spawn(async move { failing(&cache, &db, 3).await })
    });
    while b.cache.stats().coalesced < 9 {
        tokio::task::yield_now().await;
    }
    let results: Vec<_> = release_until(&db.gate, tasks)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        results.iter().filter(|r| r.is_err()).count(),
        1,
        "only the leader saw the error"
    );
    assert_eq!(
        results.iter().filter(|r| **r == Ok(3)).count(),
        9,
        "each waiter ran its own body"
    );
}

async fn a_panic_releases_the_waiters(b: Backend) {
    let db = Arc::new(Db::default());
    let tasks = spawn_many(5, || {
        let (cache, db) = (b.cache.clone(), db.clone());
        tokio::spawn(async move { panicky(&cache, &db, 4).await })
    });
    while b.cache.stats().coalesced < 4 {
        tokio::task::yield_now().await;
    }
    let results = release_until(&db.gate, tasks).await;
    assert_eq!(
        results.iter().filter(|r| r.is_err()).count(),
        1,
        "the leader panicked"
    );
    assert!(
        results.into_iter().flatten().all(|v| v == 4),
        "no waiter hung or failed"
    );
}

async fn different_keys_never_wait_on_each_other(b: Backend) {
    let db = Arc::new(Db::default());
    let held = {
        let (cache, db) = (b.cache.clone(), db.clone());
        tokio::spawn(async move { hot(&cache, &db, 1).await })
    };
    while db.runs.load(SeqCst) == 0 {
        tokio::task::yield_now().await;
    }
    // Key 1's load is held; key 2 must still complete (its body is released below).
    let other = {
        let (cache, db) = (b.cache.clone(), db.clone());
        tokio::spawn(async move { hot(&cache, &db, 2).await })
    };
    while db.runs.load(SeqCst) < 2 {
        tokio::task::yield_now().await;
    }
    assert_eq!(b.cache.stats().coalesced, 0);
    let results = release_until(&db.gate, vec![other, held]).await;
    assert_eq!(
        results.into_iter().map(|r| r.unwrap()).collect::<Vec<_>>(),
        [Ok(20), Ok(10)]
    );
}

/// `depth` is not in the key: every level of the recursion uses one key.
#[cached(key = "tree:<node>", ttl = "10m", cache = cache)]
async fn subtree_size(cache: &Cache, node: u32, depth: u32) -> u32 {
    if depth == 0 {
        1
    } else {
        1 + Box::pin(subtree_size(cache, node, depth - 1)).await
    }
}

async fn recursion_on_the_same_key_does_not_deadlock(b: Backend) {
    let size = tokio::time::timeout(Duration::from_secs(10), subtree_size(&b.cache, 1, 3)).await;
    assert_eq!(size.expect("no deadlock"), 4);
}

#[cached(key = "search:<q>", ttl = "10m", cache = cache, cache_if = |rows| !rows.is_empty())]
async fn search(cache: &Cache, q: &str) -> Vec<String> {
    if q == "none" {
        vec![]
    } else {
        vec![q.to_uppercase()]
    }
}

#[cached(key = "user:<id>", ttl = "10m", cache = cache, unless = |name: &String| name.starts_with("tmp"))]
async fn user_name(cache: &Cache, id: u32) -> Option<String> {
    Some(if id == 0 {
        "tmp-guest".into()
    } else {
        format!("user{id}")
    })
}

async fn cache_if_and_unless_choose_what_is_stored(b: Backend) {
    let c = &b.cache;
    search(c, "none").await;
    search(c, "cats").await;
    assert_eq!(
        c.get::<Vec<String>>("search:none").await.unwrap(),
        None,
        "empty result not stored"
    );
    assert_eq!(
        c.get::<Vec<String>>("search:cats").await.unwrap(),
        Some(vec!["CATS".into()])
    );
    user_name(c, 0).await;
    user_name(c, 1).await;
    assert_eq!(
        c.get::<Option<String>>("user:0").await.unwrap(),
        None,
        "`unless` held"
    );
    assert_eq!(
        c.get::<Option<String>>("user:1").await.unwrap(),
        Some(Some("user1".into()))
    );
}

#[cached(key = "jittered:<i>", ttl = 100, jitter = "20%", cache = cache)]
async fn jittered(cache: &Cache, i: u32) -> u32 {
    i
}

async fn jitter_spreads_expiries_within_bounds(b: Backend) {
    let Some(server) = &b.server else { return };
    let mut raw = server.raw().await;
    let mut ttls = Vec::new();
    for i in 0..50 {
        jittered(&b.cache, i).await;
        let ms: i64 = redis::cmd("PTTL")
            .arg(server.stored_key(&format!("jittered:{i}")))
            .query_async(&mut raw)
            .await
            .unwrap();
        ttls.push(ms);
    }
    assert!(
        ttls.iter().all(|&ms| (79_000..=100_000).contains(&ms)),
        "{ttls:?}"
    );
    let spread = ttls.iter().max().unwrap() - ttls.iter().min().unwrap();
    assert!(
        spread > 5_000,
        "entries written together expire apart: {ttls:?}"
    );
}

on_every_backend!(
    a_thousand_cold_callers_run_the_body_once,
    an_error_releases_the_waiters_who_load_themselves,
    a_panic_releases_the_waiters,
    different_keys_never_wait_on_each_other,
    recursion_on_the_same_key_does_not_deadlock,
    cache_if_and_unless_choose_what_is_stored,
    jitter_spreads_expiries_within_bounds,
);

#[cached(key = "shared:<id>", ttl = "10m", cache = cache)]
async fn shared(cache: &Cache, db: &Db, id: u32) -> u64 {
    db.runs.fetch_add(1, SeqCst);
    db.gate.notified().await;
    u64::from(id)
}

/// Plants another process's fill lease on `key` for `ms` milliseconds.
async fn foreign_lease(server: &cachemacro_tests::RedisServer, key: &str, ms: u64) {
    let mut lease: Vec<u8> = vec![0xCA, 0x1E];
    lease.extend_from_slice(&[7; 16]);
    server.plant(key, &lease, ms).await;
}

/// When the leader cannot store (another process holds the key's lease, or
/// Redis stalls), the waiters that arrived before its load began still get
/// its value. Those that arrived after (its value may predate a write they
/// must see) read again and share one more load: at most two body runs for
/// 100 callers, never one each.
#[tokio::test]
async fn waiters_share_a_value_the_leader_could_not_store() {
    let Some(server) = cachemacro_tests::RedisServer::start_controllable() else {
        return;
    };
    let cache = server.cache().await;
    foreign_lease(&server, "shared:1", 10_000).await;
    for round in 0..2 {
        let db = Arc::new(Db::default());
        let before = cache.stats().coalesced;
        let tasks = spawn_many(100, || {
            let (cache, db) = (cache.clone(), db.clone());
            tokio::spawn(async move { shared(&cache, &db, 1).await })
        });
        while db.runs.load(SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        let results = release_until(&db.gate, tasks).await;
        assert!(results.into_iter().all(|r| r.unwrap() == 1));
        let runs = db.runs.load(SeqCst);
        assert!(
            (1..=2).contains(&runs),
            "round {round}: {runs} body runs for 100 callers"
        );
        let coalesced = cache.stats().coalesced - before;
        assert!(
            coalesced >= 100 - runs,
            "round {round}: {coalesced} callers waited"
        );
        server.pause(); // second round: the backend stalls instead
    }
    server.resume();
}

/// A row with a version, whose load can be held mid-way.
#[derive(Default)]
struct Versioned {
    version: AtomicU64,
    runs: AtomicU64,
    gate: Notify,
}

#[cached(key = "row:<id>", ttl = "10m", cache = cache)]
async fn row(cache: &Cache, db: &Versioned, id: u32) -> u64 {
    let version = db.version.load(SeqCst);
    db.runs.fetch_add(1, SeqCst);
    db.gate.notified().await;
    let _ = id;
    version
}

/// Two handles on one Redis stand for two instances of a service. A read
/// on instance B that begins after a write on instance A has returned
/// joins B's flight, whose load began before the write (and, as another
/// process held the key's lease, could not store). It must not be handed
/// that load's pre-write value: it reads again and loads the new version.
/// Before the fix it got version 1: B's guard only saw B's invalidations.
#[tokio::test]
async fn a_waiter_never_gets_a_value_older_than_a_write_on_another_instance() {
    let Some(server) = cachemacro_tests::RedisServer::start() else {
        return;
    };
    let (a, b) = (server.cache().await, server.cache().await);
    let db = Arc::new(Versioned::default());
    db.version.store(1, SeqCst);
    // Another process is filling the key: B's leader loads without a lease.
    foreign_lease(&server, "row:1", 10_000).await;
    let leader = {
        let (b, db) = (b.clone(), db.clone());
        tokio::spawn(async move { row(&b, &db, 1).await })
    };
    while db.runs.load(SeqCst) == 0 {
        tokio::task::yield_now().await;
    }
    // Instance A writes version 2 and invalidates; the write has returned.
    db.version.store(2, SeqCst);
    assert!(a.delete("row:1").await.unwrap(), "the foreign lease went");
    // Now a read on B begins, and joins B's flight (still loading version 1).
    let reader = {
        let (b, db) = (b.clone(), db.clone());
        tokio::spawn(async move { row(&b, &db, 1).await })
    };
    cachemacro_tests::eventually("the reader joined B's flight", async || {
        b.stats().coalesced == 1
    })
    .await;
    let results = release_until(&db.gate, vec![leader, reader]).await;
    let versions: Vec<u64> = results.into_iter().map(Result::unwrap).collect();
    assert_eq!(
        versions[0], 1,
        "the leader's own call began before the write"
    );
    assert_eq!(versions[1], 2, "a read that began after the write sees it");
}

#[cached(key = "silent:<id>", ttl = 100, cache = cache)]
async fn silent(cache: &Cache, id: u32) -> u32 {
    id
}

#[cached(key = "unlocked:<id>", ttl = 100, lock = false, jitter = "0%", cache = cache)]
async fn unlocked(cache: &Cache, id: u32) -> u32 {
    id
}

/// `CacheBuilder::lock` and `jitter` apply to functions that say nothing,
/// and a function's own `lock = false`, `jitter = "0%"` wins over them.
#[tokio::test]
async fn builder_defaults_apply_where_the_function_is_silent() {
    let Some(server) = cachemacro_tests::RedisServer::start() else {
        return;
    };
    let cache = server
        .builder()
        .lock(true)
        .jitter(0.2)
        .connect()
        .await
        .unwrap();
    let mut raw = server.raw().await;

    // Another process is loading: the silent function waits (default lock).
    foreign_lease(&server, "silent:1", 300).await;
    assert_eq!(silent(&cache, 1).await, 1);
    assert_eq!(cache.stats().lock_waits, 1, "the builder's lock applies");
    foreign_lease(&server, "unlocked:1", 300).await;
    assert_eq!(unlocked(&cache, 1).await, 1);
    assert_eq!(cache.stats().lock_waits, 1, "`lock = false` wins");

    let mut ttls = Vec::new();
    for i in 2..40 {
        silent(&cache, i).await;
        unlocked(&cache, i).await;
        let ms: (i64, i64) = redis::pipe()
            .cmd("PTTL")
            .arg(server.stored_key(&format!("silent:{i}")))
            .cmd("PTTL")
            .arg(server.stored_key(&format!("unlocked:{i}")))
            .query_async(&mut raw)
            .await
            .unwrap();
        ttls.push(ms);
    }
    let jittered: Vec<i64> = ttls.iter().map(|t| t.0).collect();
    assert!(
        jittered.iter().all(|&ms| (79_000..=100_000).contains(&ms)),
        "{jittered:?}"
    );
    let spread = jittered.iter().max().unwrap() - jittered.iter().min().unwrap();
    assert!(spread > 5_000, "the builder's jitter applies: {jittered:?}");
    assert!(
        ttls.iter().all(|t| (98_000..=100_000).contains(&t.1)),
        "`jitter = \"0%\"` wins: {ttls:?}"
    );
}

#[cached(key = "spawned:<id>", ttl = "10m", cache = cache)]
async fn spawned_inner(cache: &Cache, id: u32) -> u32 {
    id
}

/// Same key as `spawned_inner`: it spawns that call and awaits it.
#[cached(key = "spawned:<id>", ttl = "10m", cache = cache)]
async fn spawns_same_key(cache: &Cache, id: u32) -> u32 {
    let cache = cache.clone();
    tokio::spawn(async move { spawned_inner(&cache, id).await })
        .await
        .unwrap()
}

/// A same-key call from a task the leader spawns and awaits cannot see the
/// leader's task-local; its bounded wait keeps it from deadlocking.
#[tokio::test]
async fn a_spawned_same_key_call_does_not_deadlock() {
    let cache = Cache::builder()
        .fill_lease(Duration::from_millis(200))
        .build()
        .unwrap();
    let got = tokio::time::timeout(Duration::from_secs(10), spawns_same_key(&cache, 5)).await;
    assert_eq!(got.expect("no deadlock"), 5);
}

#[cached(key = "locked-tree:<node>", ttl = "10m", lock = true, cache = cache)]
async fn locked_subtree(cache: &Cache, node: u32, depth: u32) -> u32 {
    if depth == 0 {
        1
    } else {
        1 + Box::pin(locked_subtree(cache, node, depth - 1)).await
    }
}

/// With `lock = true`, recursion on the same key does not wait on its own
/// outer lease, and a huge lock wait does not overflow.
#[tokio::test]
async fn locked_recursion_does_not_wait_on_itself() {
    let Some(server) = cachemacro_tests::RedisServer::start() else {
        return;
    };
    let cache = Cache::builder()
        .url(server.url())
        .lock_wait(Duration::MAX)
        .connect()
        .await
        .unwrap();
    assert_eq!(locked_subtree(&cache, 1, 3).await, 4);
    let s = cache.stats();
    assert_eq!((s.lock_waits, s.lock_timeouts), (0, 0), "{s:?}");

    // Another process's lease that expires: the wait ends, no overflow panic.
    foreign_lease(&server, "locked-tree:2", 300).await;
    assert_eq!(locked_subtree(&cache, 2, 0).await, 1);
    assert_eq!(cache.stats().lock_waits, 1);
}
