//! 1 000 concurrent callers on a cold key: how many body runs ("loads") a
//! burst costs, and how long it takes, with and without single-flight.
//!
//! `cargo bench --bench stampede`. Each iteration is one burst on a fresh
//! key; the body stands for a 2 ms query. After the timings, the loads per
//! burst are printed for each configuration.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use cachemacro_runtime::{Cache, cached};
use cachemacro_tests::RedisServer;
use criterion::{Criterion, criterion_group, criterion_main};

static LOADS: AtomicU64 = AtomicU64::new(0);
static BURSTS: AtomicU64 = AtomicU64::new(0);
static NEXT_KEY: AtomicU64 = AtomicU64::new(0);

#[cached(key = "burst:<key>", ttl = "10m", cache = cache)]
async fn query(cache: &Cache, key: u64) -> u64 {
    LOADS.fetch_add(1, Relaxed);
    tokio::time::sleep(Duration::from_millis(2)).await;
    key
}

async fn burst(cache: &Cache) {
    let key = NEXT_KEY.fetch_add(1, Relaxed);
    let tasks: Vec<_> = (0..1_000)
        .map(|_| {
            let cache = cache.clone();
            tokio::spawn(async move { query(&cache, key).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    BURSTS.fetch_add(1, Relaxed);
}

fn run(
    c: &mut Criterion,
    name: &str,
    cache: Cache,
    rt: &tokio::runtime::Runtime,
    report: &mut Vec<String>,
) {
    LOADS.store(0, Relaxed);
    BURSTS.store(0, Relaxed);
    let mut group = c.benchmark_group("stampede");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(4));
    group.bench_function(name, |b| {
        b.to_async(rt).iter_custom(|iters| {
            let cache = cache.clone();
            async move {
                let start = Instant::now();
                for _ in 0..iters {
                    burst(&cache).await;
                }
                start.elapsed()
            }
        });
    });
    group.finish();
    let (loads, bursts) = (LOADS.load(Relaxed), BURSTS.load(Relaxed).max(1));
    report.push(format!(
        "{name:<24} {:>8.1} loads per burst of 1000 ({bursts} bursts)",
        loads as f64 / bursts as f64
    ));
}

fn stampede(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut report = Vec::new();
    let memory = |on| Cache::builder().single_flight(on).build().unwrap();
    run(c, "memory/single-flight", memory(true), &rt, &mut report);
    run(c, "memory/without", memory(false), &rt, &mut report);
    if let Some(server) = RedisServer::start() {
        let redis = |on| {
            rt.block_on(
                Cache::builder()
                    .url(server.url())
                    .single_flight(on)
                    .connect(),
            )
            .unwrap()
        };
        run(c, "redis/single-flight", redis(true), &rt, &mut report);
        run(c, "redis/without", redis(false), &rt, &mut report);
    } else {
        println!("stampede (redis): skipped, no redis-server could be started");
    }
    println!();
    for line in report {
        println!("{line}");
    }
}

criterion_group!(benches, stampede);
criterion_main!(benches);
