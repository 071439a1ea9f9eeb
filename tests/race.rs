//! The classic stale-fill race: a reader misses and loads the old row; a
//! writer commits and invalidates; the reader then stores the old row, which
//! would stay stale for a whole TTL. A fill that began before an
//! invalidation of its key, a matching prefix or one of its tags must not
//! store its value after it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};

use cachemacro_runtime::{Cache, cached, invalidates};
use cachemacro_tests::{Backend, on_every_backend};
use tokio::sync::Notify;

/// The "database": rows, and two signals to hold a loader mid-load.
#[derive(Default)]
struct Db {
    rows: [AtomicU64; 4],
    loaded: Notify,
    proceed: Notify,
}

#[cached(key = "row:<id>", ttl = "10m", tags = ["table:rows"], cache = cache)]
async fn read_row(cache: &Cache, db: &Db, id: usize, hold: bool) -> u64 {
    let value = db.rows[id].load(SeqCst);
    if hold {
        db.loaded.notify_one();
        db.proceed.notified().await;
    } else {
        // A database round trip: lets other tasks interleave.
        tokio::task::yield_now().await;
    }
    value
}

#[invalidates("row:<id>", cache = cache)]
async fn write_exact(cache: &Cache, db: &Db, id: usize) -> u64 {
    db.rows[id].fetch_add(1, SeqCst) + 1
}

#[invalidates("row:*", cache = cache)]
async fn write_prefix(cache: &Cache, db: &Db, id: usize) -> u64 {
    db.rows[id].fetch_add(1, SeqCst) + 1
}

#[invalidates(tag = "table:rows", cache = cache)]
async fn write_tag(cache: &Cache, db: &Db, id: usize) -> u64 {
    db.rows[id].fetch_add(1, SeqCst) + 1
}

#[derive(Clone, Copy, Debug)]
enum Via {
    Exact,
    Prefix,
    Tag,
}

async fn write(cache: &Cache, db: &Db, id: usize, via: Via) -> u64 {
    match via {
        Via::Exact => write_exact(cache, db, id).await,
        Via::Prefix => write_prefix(cache, db, id).await,
        Via::Tag => write_tag(cache, db, id).await,
    }
}

/// Forces the interleaving: the load reads the old row, the write and its
/// invalidation complete, then the load finishes.
async fn forced_interleaving(b: Backend, via: Via) {
    let db = Arc::new(Db::default());
    let cache = b.cache.clone();
    let reader = {
        let (cache, db) = (cache.clone(), db.clone());
        tokio::spawn(async move { read_row(&cache, &db, 0, true).await })
    };
    db.loaded.notified().await;
    assert_eq!(write(&cache, &db, 0, via).await, 1);
    db.proceed.notify_one();
    assert_eq!(
        reader.await.unwrap(),
        0,
        "the slow reader returns what it read"
    );

    assert_eq!(
        read_row(&cache, &db, 0, false).await,
        1,
        "{via:?}: the old row was not stored"
    );
    assert_eq!(read_row(&cache, &db, 0, false).await, 1);
    let s = cache.stats();
    assert_eq!(
        s.loads, 2,
        "{via:?}: the next read loaded the new row once, then hit: {s:?}"
    );
    if !matches!(via, Via::Tag) {
        assert_eq!(
            s.fills_dropped, 1,
            "{via:?}: the stale fill was refused: {s:?}"
        );
    }
}

async fn race_on_exact_key(b: Backend) {
    forced_interleaving(b, Via::Exact).await;
}

async fn race_on_prefix(b: Backend) {
    forced_interleaving(b, Via::Prefix).await;
}

async fn race_on_tag(b: Backend) {
    forced_interleaving(b, Via::Tag).await;
}

/// Thousands of rounds of loads racing invalidations: after every write's
/// invalidation, a read returns at least that write, and at the end every
/// cached value equals its row.
async fn stress_ends_with_no_stale_value(b: Backend) {
    const ROUNDS: u64 = 2_000;
    let db = Arc::new(Db::default());
    let cache = b.cache.clone();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = (0..6)
        .map(|r| {
            let (cache, db, stop) = (cache.clone(), db.clone(), stop.clone());
            tokio::spawn(async move {
                let mut i = r;
                while !stop.load(SeqCst) {
                    read_row(&cache, &db, i % 4, false).await;
                    i += 1;
                    // A memory hit never suspends; a request handler would
                    // await I/O here. Without it these loops starve a task
                    // that holds a key's lock mid-fill.
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    for round in 0..ROUNDS {
        let id = (round % 4) as usize;
        let via = [Via::Exact, Via::Prefix, Via::Tag][(round % 3) as usize];
        let written = write(&cache, &db, id, via).await;
        let read = read_row(&cache, &db, id, false).await;
        assert!(
            read >= written,
            "round {round} via {via:?}: read {read} after writing {written}"
        );
    }
    stop.store(true, SeqCst);
    for r in readers {
        r.await.unwrap();
    }
    for id in 0..4 {
        assert_eq!(
            read_row(&cache, &db, id, false).await,
            db.rows[id].load(SeqCst),
            "row {id}"
        );
    }
    let s = cache.stats();
    assert!(
        s.hits > 0 && s.loads > 0,
        "the readers both hit and loaded: {s:?}"
    );
}

on_every_backend!(
    race_on_exact_key,
    race_on_prefix,
    race_on_tag,
    stress_ends_with_no_stale_value
);
