//! Redis killed under load: callers never see the outage, values stay
//! right, and after a restart hits resume and queued invalidations replay.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::time::Duration;

use cachemacro_runtime::{Cache, cached, invalidates};
use cachemacro_tests::{RedisServer, eventually};

const IDS: usize = 32;

static ROWS: [AtomicU64; IDS] = [const { AtomicU64::new(1) }; IDS];

#[derive(Debug, thiserror::Error)]
#[error("database error")]
struct DbError;

#[cached(key = "row:<id>", ttl = "1h", cache = cache)]
async fn row(cache: &Cache, id: usize) -> Result<u64, DbError> {
    Ok(ROWS[id].load(SeqCst))
}

#[invalidates("row:<id>", cache = cache)]
async fn write(cache: &Cache, id: usize) -> Result<(), DbError> {
    ROWS[id].fetch_add(1, SeqCst);
    Ok(())
}

/// Thousands of calls in flight when the server dies: every one returns
/// `Ok` with a value no older than the last write before it began.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_mid_load() {
    let Some(mut server) = RedisServer::start_persistent() else {
        return;
    };
    let cache = Cache::builder()
        .url(server.url())
        .operation_timeout(Duration::from_millis(200))
        .connect_timeout(Duration::from_millis(300))
        .local_capacity(1_000)
        .connect()
        .await
        .expect("connect");
    for id in 0..IDS {
        row(&cache, id).await.unwrap();
    }
    let checked = Arc::new(AtomicU64::new(0));
    let burst = |n: usize| {
        let (cache, checked) = (cache.clone(), checked.clone());
        tokio::spawn(async move {
            let calls = (0..n).map(|i| {
                let (cache, checked) = (cache.clone(), checked.clone());
                async move {
                    let id = i % IDS;
                    let floor = ROWS[id].load(SeqCst);
                    let got = row(&cache, id).await.expect("never the cache's failure");
                    assert!(got >= floor, "row {id}: served {got}, written {floor}");
                    checked.fetch_add(1, SeqCst);
                }
            });
            futures::future::join_all(calls).await;
        })
    };
    let writes = {
        let cache = cache.clone();
        tokio::spawn(async move {
            for i in 0..40 {
                write(&cache, i % IDS).await.unwrap();
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    let load = burst(5_000);
    tokio::time::sleep(Duration::from_millis(5)).await;
    server.stop();
    let during = burst(5_000);
    load.await.expect("no caller failed");
    during.await.expect("no caller failed while Redis was down");
    writes.await.expect("writes went through");
    assert_eq!(checked.load(SeqCst), 10_000);

    server.restart();
    let restarted = std::time::Instant::now();
    eventually("queued invalidations replayed", async || {
        cache.health().queued_invalidations == 0
    })
    .await;
    let hits = cache.stats().hits;
    eventually("hits resume", async || {
        for (id, written) in ROWS.iter().enumerate() {
            assert_eq!(row(&cache, id).await.unwrap(), written.load(SeqCst));
        }
        cache.stats().hits >= hits + IDS as u64
    })
    .await;
    eprintln!("hits resumed {:?} after the restart", restarted.elapsed());
    let s = cache.stats();
    assert!(
        s.invalidations_queued > 0,
        "writes during the outage were queued: {s:?}"
    );
    assert!(s.invalidations_replayed > 0, "and replayed: {s:?}");
}
