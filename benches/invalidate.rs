//! Invalidation: clearing every key under a prefix (on Redis `SCAN` +
//! `UNLINK` page by page), and deleting one exact key.
//!
//! `cargo bench --bench invalidate`. The Redis groups need `redis-server` on
//! `PATH` (or `REDIS_URL`); without it they are skipped with a note.
//!
//! * `invalidate/prefix/<n>`: `delete_pattern("sets:user:42:*")` with `<n>`
//!   keys under the prefix, refilled with one pipeline before every timed
//!   call. 10 000 unrelated keys (`sets:user:7:*`) stay in the database the
//!   whole time, since `SCAN` walks the whole keyspace, not just the prefix.
//! * `invalidate/exact/*`: an `#[invalidates("set:<set_id>")]` function
//!   (body, key building and one `UNLINK`), and the manual `Cache::delete`.
//! * `invalidate/prefix_memory/<n>`: the same prefix clear on `Cache::memory()`,
//!   which walks every entry it holds (here `<n>` + 10 000).

use std::hint::black_box;
use std::time::{Duration, Instant};

use cachemacro_runtime::{Cache, invalidates};
use cachemacro_tests::RedisServer;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use redis::aio::MultiplexedConnection;

const TTL_MS: u64 = 3_600_000;
const UNRELATED: usize = 10_000;

/// Writes `n` keys `<prefix><i>` in one pipeline.
async fn fill(raw: &mut MultiplexedConnection, prefix: &str, n: usize) {
    let mut pipe = redis::pipe();
    for i in 0..n {
        pipe.pset_ex(format!("{prefix}{i}"), b"x".repeat(64), TTL_MS)
            .ignore();
    }
    pipe.query_async::<()>(raw).await.expect("pipeline");
}

/// Writes `n` keys `<prefix><i>` with one `set_many`.
async fn fill_memory(cache: &Cache, prefix: &str, n: usize) {
    let keys: Vec<String> = (0..n).map(|i| format!("{prefix}{i}")).collect();
    let value = b"x".repeat(64);
    let entries: Vec<(&str, &Vec<u8>)> = keys.iter().map(|k| (k.as_str(), &value)).collect();
    let ttl = Duration::from_millis(TTL_MS);
    cache.set_many(&entries, ttl).await.expect("set_many");
}

#[invalidates("set:<set_id>", cache = cache)]
async fn touch_set(cache: &Cache, set_id: u64) {
    black_box(set_id);
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

fn on_memory(c: &mut Criterion) {
    let rt = runtime();
    let cache = Cache::memory();
    rt.block_on(fill_memory(&cache, "sets:user:7:", UNRELATED));

    let mut group = c.benchmark_group("invalidate/prefix_memory");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    for n in [1_000, 10_000] {
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
            let cache = &cache;
            b.to_async(&rt).iter_custom(|iters| async move {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    fill_memory(cache, "sets:user:42:", n).await;
                    let start = Instant::now();
                    let deleted = cache.delete_pattern("sets:user:42:*").await;
                    total += start.elapsed();
                    assert_eq!(deleted.expect("delete_pattern"), n as u64);
                }
                total
            });
        });
    }
    group.finish();
}

fn on_redis(c: &mut Criterion) {
    let Some(server) = RedisServer::start() else {
        println!("invalidate (redis): skipped, no redis-server could be started");
        return;
    };
    let rt = runtime();
    let cache = rt.block_on(server.cache());
    let mut raw = rt.block_on(server.raw());
    rt.block_on(fill(
        &mut raw,
        &server.stored_key("sets:user:7:"),
        UNRELATED,
    ));

    let mut group = c.benchmark_group("invalidate/prefix");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    let prefix = server.stored_key("sets:user:42:");
    for n in [1_000, 10_000] {
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
            b.to_async(&rt).iter_custom(|iters| {
                let (cache, mut raw, prefix) = (cache.clone(), raw.clone(), prefix.clone());
                async move {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        fill(&mut raw, &prefix, n).await;
                        let start = Instant::now();
                        let deleted = cache.delete_pattern("sets:user:42:*").await;
                        total += start.elapsed();
                        assert_eq!(deleted.expect("delete_pattern"), n as u64);
                    }
                    total
                }
            });
        });
    }
    group.finish();

    let mut group = c.benchmark_group("invalidate/exact");
    group
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    group.bench_function("invalidates_fn", |b| {
        b.to_async(&rt)
            .iter(|| async { touch_set(&cache, black_box(1)).await });
    });
    group.bench_function("cache_delete", |b| {
        b.to_async(&rt)
            .iter(|| async { cache.delete(black_box("set:1")).await.expect("delete") });
    });
    group.finish();

    let stats = cache.stats();
    assert_eq!(stats.invalidation_errors, 0, "{stats:?}");
    let kept: bool = rt
        .block_on(
            redis::cmd("EXISTS")
                .arg(server.stored_key("sets:user:7:0"))
                .query_async(&mut raw),
        )
        .expect("EXISTS");
    assert!(kept, "only the prefix was cleared");
}

criterion_group!(benches, on_redis, on_memory);
criterion_main!(benches);
