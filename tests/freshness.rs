//! Freshness under load: writers bump a row's version, invalidate it (by key
//! or by tag) through any handle, and only then count the write as done;
//! readers on any handle must never get a version older than the last write
//! done before their read began. Three handles on one Redis stand for three
//! instances of a service; every option that serves old values on purpose
//! (`stale`, `fail_safe`, `timeout`) is in the mix, with loads that fail.
//! This is the randomized companion of the forced interleavings in
//! `race.rs`, `stampede.rs` and `refresh.rs`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::time::Duration;

use cachemacro_runtime::{Cache, EntryOptions};

const KEYS: u64 = 3;

struct Rows {
    version: Vec<AtomicU64>,
    committed: Vec<AtomicU64>,
    failing: AtomicBool,
}

async fn load(rows: Arc<Rows>, k: usize) -> Result<u64, String> {
    let v = rows.version[k].load(SeqCst);
    let pause = rand::random::<u64>() % 4;
    if pause > 0 {
        tokio::time::sleep(Duration::from_millis(pause)).await;
    }
    if rows.failing.load(SeqCst) && rand::random::<u8>().is_multiple_of(3) {
        return Err("source down".into());
    }
    Ok(v)
}

fn options(k: usize, variant: u8) -> EntryOptions {
    let o = EntryOptions::new(Duration::from_millis(30))
        .tags([format!("row-tag:{k}")])
        .beta(50.0);
    match variant % 4 {
        0 => o,
        1 => o.stale(Duration::from_millis(40)),
        2 => o
            .fail_safe(Duration::from_millis(60))
            .timeout(Duration::from_millis(2)),
        _ => o
            .stale(Duration::from_millis(20))
            .fail_safe(Duration::from_millis(60))
            .lock(true),
    }
}

/// Runs writers and readers for `secs`; returns the stale reads seen.
async fn stress(handles: Vec<Cache>, secs: u64) -> u64 {
    let rows = Arc::new(Rows {
        version: (0..KEYS).map(|_| AtomicU64::new(1)).collect(),
        committed: (0..KEYS).map(|_| AtomicU64::new(0)).collect(),
        failing: AtomicBool::new(false),
    });
    let stop = Arc::new(AtomicBool::new(false));
    let stale = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for w in 0..2u64 {
        let (rows, stop, handles) = (rows.clone(), stop.clone(), handles.clone());
        tasks.push(tokio::spawn(async move {
            let mut i = 0u64;
            while !stop.load(SeqCst) {
                i += 1;
                let k = (rand::random::<u64>() % KEYS) as usize;
                let v = rows.version[k].fetch_add(1, SeqCst) + 1;
                let h = &handles[(rand::random::<u64>() as usize) % handles.len()];
                let landed = if (i + w).is_multiple_of(2) {
                    h.delete(&format!("row:{k}")).await.is_ok()
                } else {
                    h.invalidate_tag(&format!("row-tag:{k}")).await.is_ok()
                };
                assert!(landed, "a healthy Redis took the invalidation");
                rows.committed[k].fetch_max(v, SeqCst);
                rows.failing
                    .store(rand::random::<u8>().is_multiple_of(4), SeqCst);
                tokio::time::sleep(Duration::from_millis(rand::random::<u64>() % 15)).await;
            }
        }));
    }
    for r in 0..12u8 {
        let (rows, stop, handles, stale) =
            (rows.clone(), stop.clone(), handles.clone(), stale.clone());
        tasks.push(tokio::spawn(async move {
            while !stop.load(SeqCst) {
                let k = (rand::random::<u64>() % KEYS) as usize;
                let h = &handles[(rand::random::<u64>() as usize) % handles.len()];
                let floor = rows.committed[k].load(SeqCst);
                let source = rows.clone();
                let got = h
                    .get_or_load(&format!("row:{k}"), &options(k, r), move || load(source, k))
                    .await;
                if let Ok(v) = got
                    && v < floor
                {
                    stale.fetch_add(1, SeqCst);
                    eprintln!("stale: row {k} read {v}, {floor} was written before the read");
                }
                if rand::random::<u8>().is_multiple_of(8) {
                    tokio::task::yield_now().await;
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(secs)).await;
    stop.store(true, SeqCst);
    for t in tasks {
        t.await.expect("a worker panicked");
    }
    stale.load(SeqCst)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_stale_read_across_three_instances_on_redis() {
    let Some(server) = cachemacro_tests::RedisServer::start() else {
        return;
    };
    let mut handles = Vec::new();
    for _ in 0..3 {
        handles.push(server.builder().connect().await.unwrap());
    }
    assert_eq!(stress(handles, 4).await, 0);
}

/// The same on a cluster, where an entry, its tag versions and its lease
/// live on different primaries.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_stale_read_across_three_instances_on_a_cluster() {
    let Some(shared) = cachemacro_tests::RedisCluster::shared() else {
        return;
    };
    let cluster = shared.in_fresh_namespace();
    let mut handles = Vec::new();
    for _ in 0..3 {
        // Room for a loaded machine: the writers assert that every
        // invalidation lands, and on a cluster each also waits for a replica.
        let handle = cluster
            .builder()
            .operation_timeout(Duration::from_secs(2))
            .connect()
            .await
            .unwrap();
        handles.push(handle);
    }
    assert_eq!(stress(handles, 4).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_stale_read_in_memory() {
    assert_eq!(stress(vec![Cache::memory()], 2).await, 0);
}
