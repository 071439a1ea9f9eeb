//! The cost of a `#[cached]` call: a hit, and a miss that loads and stores,
//! on `Cache::memory()` and on a redis-server of the bench's own, next to
//! calling the function body directly.
//!
//! `cargo bench --bench hit_path`. Without `redis-server` on `PATH` (or
//! `REDIS_URL`) the Redis group is skipped with a note.
//!
//! One current-thread runtime drives everything, so the figures are the
//! library's own work plus, on Redis, one loopback round trip per call.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use cachemacro_runtime::{Cache, cached};
use cachemacro_tests::RedisServer;
use criterion::{Criterion, criterion_group, criterion_main};
use tokio::runtime::Runtime;

#[path = "support/workload.rs"]
mod workload;
use workload::{Collection, body};

async fn uncached(user_id: u64) -> Vec<Collection> {
    body(user_id)
}

#[cached(key = "user-collections:<user_id>", ttl = "1h", cache = cache)]
async fn user_collections(cache: &Cache, user_id: u64) -> Vec<Collection> {
    body(user_id)
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// `hit` and `miss+store` for one backend.
fn bench_backend(c: &mut Criterion, rt: &Runtime, name: &str, cache: &Cache) {
    let mut group = c.benchmark_group(format!("hit_path/{name}"));
    group
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));

    rt.block_on(user_collections(cache, 42));
    group.bench_function("hit", |b| {
        b.to_async(rt)
            .iter(|| async { black_box(user_collections(cache, black_box(42)).await) });
    });

    // A key never seen before on every iteration: lookup, body, encode, store.
    let next = AtomicU64::new(1_000_000);
    group.bench_function("miss+store", |b| {
        b.to_async(rt).iter(|| async {
            let user_id = next.fetch_add(1, Relaxed);
            black_box(user_collections(cache, user_id).await)
        });
    });
    group.finish();

    let stats = cache.stats();
    assert_eq!(
        stats.errors, 0,
        "{name}: the cache reported errors: {stats:?}"
    );
}

fn hit_path(c: &mut Criterion) {
    let rt = runtime();

    let mut group = c.benchmark_group("hit_path/no_cache");
    group
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    group.bench_function("body", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(uncached(black_box(42)).await) });
    });
    group.finish();

    bench_backend(c, &rt, "memory", &Cache::memory());

    match RedisServer::start() {
        Some(server) => {
            let cache = rt.block_on(server.cache());
            bench_backend(c, &rt, "redis", &cache);
        }
        None => println!("hit_path/redis: skipped, no redis-server could be started"),
    }
}

criterion_group!(benches, hit_path);
criterion_main!(benches);
