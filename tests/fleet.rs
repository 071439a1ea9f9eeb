//! Fleet-wide freshness across outages: two instances on one Redis, and
//! only instance A writes during the outage. A reaches Redis through a
//! proxy the test cuts, so A's invalidations fail and A cannot replay them
//! while B reads: B must never serve what they should have cleared.

#![allow(clippy::needless_range_loop)] // rows are indexed by the id the cached functions take

use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::time::Duration;

use cachemacro_runtime::{Cache, cached, invalidates};
use cachemacro_tests::{Proxy, RedisServer, eventually};

const IDS: usize = 8;

/// One "database" per scenario (tests run in parallel).
static ROWS: [[AtomicU64; IDS]; 5] = [const { [const { AtomicU64::new(1) }; IDS] }; 5];

#[cached(key = "row:<db>:<id>", ttl = "1h", cache = cache)]
async fn row(cache: &Cache, db: usize, id: usize) -> u64 {
    ROWS[db][id].load(SeqCst)
}

#[invalidates("row:<db>:<id>", cache = cache)]
async fn write(cache: &Cache, db: usize, id: usize) {
    ROWS[db][id].fetch_add(1, SeqCst);
}

/// A hang guard, not a timing assertion.
async fn bounded<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(10), f)
        .await
        .expect("came back instead of hanging")
}

async fn instance(url: &str, local: bool) -> Cache {
    Cache::builder()
        .url(url)
        .operation_timeout(Duration::from_millis(200))
        .connect_timeout(Duration::from_millis(300))
        .local_capacity(if local { 1_000 } else { 0 })
        .connect()
        .await
        .expect("connect")
}

#[derive(Clone, Copy, Debug)]
enum Outage {
    /// SIGKILL, restarted with its data (append-only file).
    KillKeepingData,
    /// SIGKILL, restarted empty.
    KillLosingData,
    /// SIGSTOP, then SIGCONT.
    Pause,
}

async fn only_a_writes_during(outage: Outage, db: usize, local: bool) {
    let server = match outage {
        Outage::KillKeepingData => RedisServer::start_persistent(),
        _ => RedisServer::start_controllable(),
    };
    let Some(mut server) = server else {
        return;
    };
    let proxy = Proxy::start(
        server
            .url()
            .trim_start_matches("redis://")
            .parse()
            .expect("loopback address"),
    );
    let a = instance(&proxy.url(), local).await;
    let b = instance(&server.url(), local).await;
    eventually("both listen", async || {
        a.health().announcements.is_some_and(|h| h.listening)
            && b.health().announcements.is_some_and(|h| h.listening)
    })
    .await;
    for id in 0..IDS {
        for _ in 0..3 {
            row(&a, db, id).await;
            row(&b, db, id).await;
        }
    }
    assert!(
        b.stats().hits >= IDS as u64 * 2,
        "B is warm: {:?}",
        b.stats()
    );

    match outage {
        Outage::Pause => server.pause(),
        _ => server.stop(),
    }
    // A's invalidations fail (refused, or timed out while paused)...
    for id in 0..IDS {
        bounded(write(&a, db, id)).await;
    }
    assert_eq!(a.health().queued_invalidations, IDS, "{:?}", a.stats());
    // ...and A is cut off before the server is back, so it cannot replay
    // them before B reads.
    proxy.cut();
    match outage {
        Outage::Pause => server.resume(),
        _ => server.restart(),
    }
    if let Outage::KillKeepingData = outage {
        let mut raw = server.raw().await;
        let left: u64 = redis::cmd("DBSIZE").query_async(&mut raw).await.unwrap();
        assert!(
            left >= IDS as u64,
            "the stale entries came back with the data"
        );
    }

    // B, with A's invalidations still queued in A: every read is fresh.
    for round in 0..30 {
        for id in 0..IDS {
            assert_eq!(
                bounded(row(&b, db, id)).await,
                ROWS[db][id].load(SeqCst),
                "{outage:?}, local tier {local}: B served a row A had written \
                 (round {round}, id {id})"
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // With the data back, every stale entry was still there (checked
    // above). (Paused, A's deletes may still run when the server resumes:
    // they were in its socket buffer.)
    if let Outage::KillKeepingData = outage {
        // Each stale entry was distrusted (or, if B's own refill of it was
        // refused because B learned of the outage mid-load, read as a miss).
        let s = b.stats();
        assert!(
            s.distrusted + s.fills_dropped >= IDS as u64,
            "B refilled the entries it could not trust: {s:?}"
        );
    }

    // A comes back: it replays, and B's hits resume.
    proxy.restore();
    eventually("A replayed", async || a.health().queued_invalidations == 0).await;
    let hits = b.stats().hits;
    eventually("B hits again", async || {
        for id in 0..IDS {
            assert_eq!(row(&b, db, id).await, ROWS[db][id].load(SeqCst));
        }
        b.stats().hits >= hits + IDS as u64
    })
    .await;
}

#[tokio::test]
async fn redis_killed_and_restarted_with_its_data() {
    only_a_writes_during(Outage::KillKeepingData, 0, false).await;
}

#[tokio::test]
async fn redis_killed_and_restarted_empty() {
    only_a_writes_during(Outage::KillLosingData, 1, false).await;
}

#[tokio::test]
async fn redis_paused() {
    only_a_writes_during(Outage::Pause, 2, false).await;
}

#[tokio::test]
async fn redis_killed_with_the_local_tier_on() {
    only_a_writes_during(Outage::KillKeepingData, 3, true).await;
}

/// A alone cut off from Redis: B notices nothing, and can read what A's
/// failed invalidations should have cleared until A is back (the limit the
/// README states). Back, A first announces that entries stored before now
/// are not to be trusted, then replays: B refills even entries A never
/// invalidated.
#[tokio::test]
async fn a_partitioned_instance_tells_the_others_when_it_is_back() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let db = 4;
    let proxy = Proxy::start(
        server
            .url()
            .trim_start_matches("redis://")
            .parse()
            .expect("loopback address"),
    );
    let a = instance(&proxy.url(), false).await;
    let b = instance(&server.url(), true).await;
    eventually("both listen", async || {
        a.health().announcements.is_some_and(|h| h.listening) && b.health().local.coherent
    })
    .await;
    for id in 0..2 {
        for _ in 0..3 {
            row(&b, db, id).await;
        }
    }
    proxy.cut();
    bounded(write(&a, db, 0)).await;
    assert_eq!(a.health().queued_invalidations, 1);
    let before = b.stats();
    assert_eq!(b.health().announcements.map(|h| h.trusted_from_ms), Some(0));

    proxy.restore();
    eventually("A replayed", async || a.health().queued_invalidations == 0).await;
    eventually("B heard A's watermark", async || {
        b.health()
            .announcements
            .is_some_and(|h| h.trusted_from_ms > 0)
    })
    .await;
    assert_eq!(row(&b, db, 0).await, ROWS[db][0].load(SeqCst));
    assert_eq!(row(&b, db, 1).await, ROWS[db][1].load(SeqCst));
    let after = b.stats();
    assert!(
        after.distrusted > before.distrusted,
        "B refilled the entry A never touched instead of trusting it: {after:?}"
    );
    let hits = b.stats().hits;
    row(&b, db, 1).await;
    assert_eq!(b.stats().hits, hits + 1, "and hits it again once refilled");
}
