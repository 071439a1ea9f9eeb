//! Tag invalidation cost against the number of entries carrying the tag.
//!
//! `cargo bench --bench tags`. Each size first fills `<n>` entries through a
//! `#[cached(tags = ["bench:<group>"])]` function (untimed), then times the
//! `#[invalidates(tag = "bench:<group>")]` call. Before each timed call one
//! cached read recreates the tag's version, so every call really has a
//! version to delete. The claim under test: the cost does not grow with
//! `<n>` (one `UNLINK` on Redis, one removal in memory).

use std::time::{Duration, Instant};

use cachemacro_runtime::{Cache, cached, invalidates};
use cachemacro_tests::RedisServer;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use futures::StreamExt;

#[cached(key = "bench-entry:<group>:<i>", ttl = "1h", tags = ["bench:<group>"], cache = cache)]
async fn entry(cache: &Cache, group: u32, i: u32) -> u32 {
    i
}

#[invalidates(tag = "bench:<group>", cache = cache)]
async fn clear_group(cache: &Cache, group: u32) {
    let _ = group;
}

/// Fills `n` tagged entries, 64 at a time.
async fn fill(cache: &Cache, group: u32, n: u32) {
    futures::stream::iter(0..n)
        .for_each_concurrent(64, |i| async move {
            entry(cache, group, i).await;
        })
        .await;
}

fn bench(c: &mut Criterion, name: &str, cache: &Cache, rt: &tokio::runtime::Runtime) {
    let mut group = c.benchmark_group(name);
    group
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    for (g, n) in [(1, 10), (2, 1_000), (3, 100_000)] {
        rt.block_on(fill(cache, g, n));
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.to_async(rt).iter_custom(|iters| async move {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    entry(cache, g, 0).await; // recreates the tag's version
                    let start = Instant::now();
                    clear_group(cache, g).await;
                    total += start.elapsed();
                }
                total
            });
        });
    }
    group.finish();
}

fn tags(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let memory = Cache::builder().memory_capacity(1 << 30).build().unwrap();
    bench(c, "tag-invalidation/memory", &memory, &rt);
    let Some(server) = RedisServer::start() else {
        println!("tag-invalidation (redis): skipped, no redis-server could be started");
        return;
    };
    let redis = rt.block_on(server.cache());
    bench(c, "tag-invalidation/redis", &redis, &rt);
}

criterion_group!(benches, tags);
criterion_main!(benches);
