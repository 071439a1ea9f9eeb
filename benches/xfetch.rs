//! A hot key under steady reads for 60 simulated seconds: how many loads
//! run at once when it expires, with plain TTL expiry, with XFetch early
//! refresh (β = 1 and 2), and with `stale` serving while one background
//! refresh runs.
//!
//! `cargo bench --bench xfetch`. Not a timing: the run is on tokio's paused
//! clock (a current-thread runtime with `start_paused`), so the 60 s, the
//! 50 ms load and the readers' 10 ms think time are simulated exactly and
//! the figures are counts. Each configuration is a memory cache with
//! in-process single-flight off, standing for a fleet of processes that
//! share one Redis and cannot coalesce each other's loads (the
//! `lock = true` coordination is measured in `tests/lock.rs`, not here).
//! One load fills the key first; after it, printed per configuration: the
//! loads, the refresh bursts (loads starting within 1 s of each other), the
//! largest burst, the most loads running at once, how long before its
//! entry's expiry a burst began (mean; negative is after), and the reads
//! that waited (took longer than a hit).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cachemacro_runtime::{Cache, cached};
use tokio::time::Instant;

const RUN: Duration = Duration::from_secs(60);
const LOAD: Duration = Duration::from_millis(50);
const TTL: Duration = Duration::from_secs(10);
const THINK: Duration = Duration::from_millis(10);
const READERS: u64 = 200;

/// What one run of the workload recorded.
#[derive(Default)]
struct Record {
    running: AtomicU64,
    most_running: AtomicU64,
    /// When each load started, since the run began.
    starts: Mutex<Vec<Duration>>,
    began: Mutex<Option<Instant>>,
}

impl Record {
    async fn load(&self) -> u64 {
        let began = self.began.lock().unwrap().expect("run started");
        self.starts.lock().unwrap().push(began.elapsed());
        let now = self.running.fetch_add(1, Relaxed) + 1;
        self.most_running.fetch_max(now, Relaxed);
        tokio::time::sleep(LOAD).await;
        self.running.fetch_sub(1, Relaxed);
        7
    }
}

#[cached(key = "hot", ttl = "10s", cache = cache)]
async fn hot(cache: &Cache, record: &Record) -> u64 {
    record.load().await
}

#[cached(key = "hot-stale", ttl = "10s", stale = "10s", cache = cache)]
async fn hot_stale(cache: &Cache, record: Arc<Record>) -> u64 {
    record.load().await
}

struct Figures {
    reads: u64,
    waits: u64,
    loads: usize,
    bursts: usize,
    largest_burst: usize,
    most_running: u64,
    /// How long before its entry expired a burst's first load started, on
    /// average (negative: after).
    lead_ms: f64,
}

/// 200 readers, each reading the key then thinking 10 ms, offset from each
/// other so reads spread evenly, for 60 s.
async fn workload(beta: f64, stale: bool) -> Figures {
    let cache = Cache::builder()
        .single_flight(false)
        .beta(beta)
        .build()
        .unwrap();
    let record = Arc::new(Record::default());
    let began = Instant::now();
    *record.began.lock().unwrap() = Some(began);
    // One load fills the key before the readers start: the figures are
    // about expiry, not the cold start (that is `benches/stampede.rs`).
    if stale {
        hot_stale(&cache, record.clone()).await;
    } else {
        hot(&cache, &record).await;
    }
    record.most_running.store(0, Relaxed);
    let reads = Arc::new(AtomicU64::new(0));
    let waits = Arc::new(AtomicU64::new(0));
    let readers: Vec<_> = (0..READERS)
        .map(|i| {
            let (cache, record) = (cache.clone(), record.clone());
            let (reads, waits) = (reads.clone(), waits.clone());
            tokio::spawn(async move {
                tokio::time::sleep(THINK * i as u32 / READERS as u32).await;
                while began.elapsed() < RUN {
                    let start = Instant::now();
                    let value = if stale {
                        hot_stale(&cache, record.clone()).await
                    } else {
                        hot(&cache, &record).await
                    };
                    assert_eq!(value, 7);
                    reads.fetch_add(1, Relaxed);
                    // A hit takes no simulated time; a read that loaded or
                    // waited on a load took the load's 50 ms.
                    if start.elapsed() > Duration::ZERO {
                        waits.fetch_add(1, Relaxed);
                    }
                    tokio::time::sleep(THINK).await;
                }
            })
        })
        .collect();
    for reader in readers {
        reader.await.unwrap();
    }
    // Let a background refresh started at the end finish.
    tokio::time::sleep(LOAD * 2).await;
    let starts = record.starts.lock().unwrap().clone();
    // Loads that start within 1 s of a burst's first belong to it; each
    // burst replaces an entry that the burst before stored when its first
    // load ended, so expired 10 s after that.
    let mut bursts: Vec<(Duration, usize)> = vec![(starts[0], 1)];
    for start in &starts[1..] {
        match bursts.last_mut() {
            Some((first, loads)) if *start - *first < Duration::from_secs(1) => *loads += 1,
            _ => bursts.push((*start, 1)),
        }
    }
    let leads: Vec<f64> = bursts
        .windows(2)
        .map(|w| {
            let expiry = w[0].0 + LOAD + TTL;
            (expiry.as_secs_f64() - w[1].0.as_secs_f64()) * 1000.0
        })
        .collect();
    Figures {
        reads: reads.load(Relaxed),
        waits: waits.load(Relaxed),
        loads: starts.len() - 1,
        bursts: bursts.len() - 1,
        largest_burst: bursts[1..].iter().map(|b| b.1).max().unwrap_or(0),
        most_running: record.most_running.load(Relaxed),
        lead_ms: leads.iter().sum::<f64>() / leads.len().max(1) as f64,
    }
}

fn main() {
    // `cargo bench` passes `--bench`; there is nothing to filter.
    let configurations = [
        ("plain TTL (beta 0)", 0.0, false),
        ("XFetch beta 1", 1.0, false),
        ("XFetch beta 2", 2.0, false),
        ("stale = 10s (beta 0)", 0.0, true),
    ];
    println!(
        "hot key, ttl 10s, load 50ms, {READERS} readers every 10ms, {}s simulated, no single-flight",
        RUN.as_secs()
    );
    println!(
        "{:<22} {:>9} {:>6} {:>7} {:>8} {:>13} {:>13} {:>12}",
        "configuration",
        "reads",
        "loads",
        "bursts",
        "largest",
        "most at once",
        "ms to expiry",
        "reads waited"
    );
    for (name, beta, stale) in configurations {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .unwrap();
        let f = rt.block_on(workload(beta, stale));
        println!(
            "{name:<22} {:>9} {:>6} {:>7} {:>8} {:>13} {:>13.0} {:>12}",
            f.reads, f.loads, f.bursts, f.largest_burst, f.most_running, f.lead_ms, f.waits
        );
    }
}
