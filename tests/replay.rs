//! Invalidations always land: a failed one is queued, the cache is bypassed
//! while anything is queued, and the queue is replayed when Redis answers.

use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::time::Duration;

use cachemacro_runtime::{Cache, cached, invalidates};
use cachemacro_tests::{RedisServer, eventually};

/// The "database" row each user's collections are read from.
static ROWS: [AtomicU64; 16] = [const { AtomicU64::new(1) }; 16];

#[cached(key = "user-collections:<user_id>", ttl = "1h", tags = ["user:<user_id>"], cache = cache)]
async fn user_collections(cache: &Cache, user_id: usize) -> u64 {
    ROWS[user_id].load(SeqCst)
}

#[cached(key = "sets:user:<user_id>:<filter>", ttl = "1h", cache = cache)]
async fn user_sets(cache: &Cache, user_id: usize, filter: &str) -> String {
    format!("{filter} v{}", ROWS[user_id].load(SeqCst))
}

#[invalidates("user-collections:<user_id>", cache = cache)]
async fn add_image(cache: &Cache, user_id: usize) {
    ROWS[user_id].fetch_add(1, SeqCst);
}

#[invalidates("sets:user:<user_id>:*", cache = cache)]
async fn delete_sets(cache: &Cache, user_id: usize) {
    ROWS[user_id].fetch_add(1, SeqCst);
}

#[invalidates(tag = "user:<user_id>", cache = cache)]
async fn rename(cache: &Cache, user_id: usize) {
    ROWS[user_id].fetch_add(1, SeqCst);
}

/// A hang guard, not a timing assertion.
async fn bounded<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(10), f)
        .await
        .expect("came back instead of hanging")
}

async fn exists(server: &RedisServer, key: &str) -> bool {
    let mut raw = server.raw().await;
    redis::cmd("EXISTS")
        .arg(server.stored_key(key))
        .query_async(&mut raw)
        .await
        .unwrap()
}

/// The scenario: entries stored, Redis stopped, writes invalidate
/// (and fail), Redis started again with its data: the stale entries are
/// still there, and none of them is ever served.
#[tokio::test]
async fn invalidations_during_an_outage_land_after_it() {
    let Some(mut server) = RedisServer::start_persistent() else {
        return;
    };
    let cache = server.cache().await;
    let users = [1, 2, 3];
    for u in users {
        user_collections(&cache, u).await;
        user_sets(&cache, u, "cats").await;
    }
    let mut raw = server.raw().await;
    let _: () = redis::cmd("SET")
        .arg(server.stored_key("marker"))
        .arg(1)
        .query_async(&mut raw)
        .await
        .unwrap();

    server.stop();
    bounded(add_image(&cache, 1)).await;
    bounded(delete_sets(&cache, 2)).await;
    bounded(rename(&cache, 3)).await;
    let s = cache.stats();
    assert_eq!(
        (s.invalidation_errors, s.invalidations_queued),
        (3, 3),
        "{s:?}"
    );

    // While they wait, reads run the body and never serve what they should clear.
    assert_eq!(bounded(user_collections(&cache, 1)).await, 2);
    assert!(cache.stats().bypassed >= 1);

    server.restart();
    assert!(
        exists(&server, "marker").await,
        "the server came back with its data, stale entries included"
    );
    // Fresh at once (the cache is bypassed until the queue lands), and after.
    for _ in 0..2 {
        assert_eq!(
            bounded(user_collections(&cache, 1)).await,
            2,
            "exact key: fresh"
        );
        assert_eq!(
            bounded(user_sets(&cache, 2, "cats")).await,
            "cats v2",
            "prefix: fresh"
        );
        assert_eq!(bounded(user_collections(&cache, 3)).await, 2, "tag: fresh");
        eventually("the queue replayed", async || {
            cache.stats().invalidations_replayed == 3
        })
        .await;
    }
    // An entry no invalidation touched, stored before the outage: not
    // trusted (another instance's invalidation may have been lost with the
    // server), so refilled once from the source, then hit.
    let distrusted = cache.stats().distrusted;
    assert_eq!(bounded(user_sets(&cache, 1, "cats")).await, "cats v2");
    assert_eq!(cache.stats().distrusted, distrusted + 1, "refilled");
    let hits = cache.stats().hits;
    assert_eq!(bounded(user_sets(&cache, 1, "cats")).await, "cats v2");
    assert_eq!(cache.stats().hits, hits + 1, "untouched entries hit again");
    let s = cache.stats();
    assert_eq!(s.invalidations_replayed, 3, "{s:?}");
    assert_eq!(
        cache
            .get::<String>("sets:user:2:cats")
            .await
            .unwrap()
            .as_deref(),
        Some("cats v2"),
        "refilled fresh"
    );
}

/// SIGSTOP: invalidations time out, get queued, and the background replay
/// lands them once Redis answers, with no call needed to trigger it.
#[tokio::test]
async fn the_queue_replays_by_itself_after_a_pause() {
    let Some(server) = RedisServer::start_controllable() else {
        return;
    };
    let cache = server.cache().await;
    user_collections(&cache, 4).await;
    user_sets(&cache, 4, "dogs").await;
    user_sets(&cache, 4, "cats").await;

    server.pause();
    bounded(add_image(&cache, 4)).await;
    bounded(delete_sets(&cache, 4)).await;
    assert_eq!(cache.stats().invalidations_queued, 2);
    server.resume();

    eventually("the queue replayed", async || {
        cache.stats().invalidations_replayed == 2
    })
    .await;
    assert!(!exists(&server, "user-collections:4").await);
    assert!(
        !exists(&server, "sets:user:4:dogs").await && !exists(&server, "sets:user:4:cats").await
    );
    assert_eq!(user_collections(&cache, 4).await, ROWS[4].load(SeqCst));
}

/// When more invalidations fail than the queue holds, the whole namespace
/// is flushed on recovery: conservative, and other namespaces keep theirs.
#[tokio::test]
async fn an_overflowing_queue_flushes_the_namespace() {
    let Some(server) = RedisServer::start_controllable() else {
        return;
    };
    let app = Cache::builder()
        .url(server.url())
        .namespace("app")
        .operation_timeout(Duration::from_millis(200))
        .invalidation_queue_capacity(2)
        .connect()
        .await
        .unwrap();
    let other = Cache::builder()
        .url(server.url())
        .namespace("other")
        .connect()
        .await
        .unwrap();
    for u in [5, 6, 7, 8] {
        user_collections(&app, u).await;
        user_collections(&other, u).await;
    }

    server.pause();
    for u in [5, 6, 7] {
        bounded(add_image(&app, u)).await;
    }
    assert_eq!(
        app.stats().namespace_flushes,
        1,
        "the third failure overflowed a queue of two"
    );
    server.resume();

    eventually("the flush ran", async || {
        app.stats().invalidations_replayed >= 2
    })
    .await;
    assert!(
        !exists(&server, "app:user-collections:8").await,
        "even entries nothing invalidated went"
    );
    for u in [5, 6, 7, 8] {
        assert!(
            exists(&server, &format!("other:user-collections:{u}")).await,
            "other namespace untouched"
        );
    }
}

#[cached(key = "big:<id>", ttl = "1h", cache = cache)]
async fn big(cache: &Cache, id: usize) -> u64 {
    ROWS[id].load(SeqCst)
}

#[invalidates("big:<id>", "sets:user:<id>:*", cache = cache)]
async fn update_big(cache: &Cache, id: usize) {
    ROWS[id].fetch_add(1, SeqCst);
}

/// A handler timeout that drops the call while its invalidations are in
/// flight must not lose them.
#[tokio::test]
async fn a_cancelled_invalidation_is_queued_not_lost() {
    let Some(server) = RedisServer::start_controllable() else {
        return;
    };
    let cache = server.cache().await;
    big(&cache, 9).await;
    server.pause();
    let cancelled = tokio::time::timeout(Duration::from_millis(50), update_big(&cache, 9)).await;
    assert!(
        cancelled.is_err(),
        "the call was cut short while Redis stalled"
    );
    assert_eq!(
        cache.stats().invalidations_queued,
        2,
        "both targets queued on cancellation"
    );
    server.resume();
    eventually("the cancelled invalidation landed", async || {
        cache.stats().invalidations_replayed == 2
    })
    .await;
    assert!(!exists(&server, "big:9").await);
    assert_eq!(
        big(&cache, 9).await,
        ROWS[9].load(SeqCst),
        "fresh after the write"
    );
}

/// The manual API's failures are queued too, and a bypassed read never
/// touches the stalled server (no timeout to wait for).
#[tokio::test]
async fn manual_deletes_that_fail_are_queued_and_reads_bypass_without_waiting() {
    let Some(server) = RedisServer::start_controllable() else {
        return;
    };
    let cache = server.cache().await;
    user_collections(&cache, 10).await;
    server.pause();
    assert!(bounded(cache.delete("user-collections:10")).await.is_err());
    assert_eq!(cache.stats().invalidations_queued, 1);
    let errors = cache.stats().errors;
    assert_eq!(
        bounded(user_collections(&cache, 10)).await,
        ROWS[10].load(SeqCst)
    );
    let s = cache.stats();
    assert_eq!(
        (s.errors, s.bypassed),
        (errors, 1),
        "bypassed without a round trip: {s:?}"
    );
    server.resume();
    eventually("the delete landed", async || {
        cache.stats().invalidations_replayed == 1
    })
    .await;
    assert!(!exists(&server, "user-collections:10").await);
}
