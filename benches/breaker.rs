//! What a `#[cached]` call costs while Redis hangs: with the circuit
//! breaker off, each call waits out the operation timeout before its body
//! runs; once the breaker has opened, a call costs its body and little more.
//! Side by side with the body alone.
//!
//! `cargo bench --bench breaker` (about 15 s on 2 cores, after the build).
//! `cargo bench --bench breaker -- --quick` (criterion's quick mode), or
//! `BREAKER_QUICK=1`, is a smoke run of a few seconds; `cargo test
//! --benches` runs each benchmark once.
//!
//! Redis is a redis-server of the bench's own behind a [`Proxy`] that
//! stalls every connection (bytes held, nothing answered: a hung server or
//! a black-holed network). Both caches have a 50 ms operation timeout; the
//! one with a breaker (5 failures, 30 s cool-down, so no probe runs while
//! measuring) is opened before it is measured. The workload is
//! `vs_raw.rs`'s: `user_collections(user_id)`, 4 `Collection`s, 64 user ids
//! cycled, with a body cheap on purpose.
//!
//! Without `redis-server` on `PATH` the bench is skipped with a note; with
//! `CI` set that is a failure, as in the tests.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use cachemacro_runtime::{BreakerState, Cache, cached};
use cachemacro_tests::{Proxy, RedisServer};
use criterion::{Criterion, criterion_group, criterion_main};
use tokio::runtime::Runtime;

#[path = "support/workload.rs"]
mod workload;
use workload::{Collection, body, user};

const OP_TIMEOUT: Duration = Duration::from_millis(50);

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

fn quick() -> bool {
    std::env::var("BREAKER_QUICK").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// A cache through `proxy` with a breaker of `threshold` (0: none).
async fn cache(proxy: &Proxy, threshold: u32) -> Cache {
    Cache::builder()
        .url(proxy.url())
        .operation_timeout(OP_TIMEOUT)
        .breaker(threshold, Duration::from_secs(30))
        .connect()
        .await
        .expect("connect through the proxy")
}

fn breaker(c: &mut Criterion) {
    let rt = runtime();
    let Some(server) = RedisServer::start_controllable() else {
        println!("breaker: skipped, no redis-server could be started");
        return;
    };
    let proxy = Proxy::start(server.addr());
    let off = rt.block_on(cache(&proxy, 0));
    let on = rt.block_on(cache(&proxy, 5));
    rt.block_on(async {
        for i in 0..64 {
            user_collections(&off, user(i)).await;
        }
    });

    proxy.stall();
    rt.block_on(async {
        for i in 0..10 {
            user_collections(&on, user(i)).await;
        }
    });
    let opened = on.breaker_health().expect("a breaker");
    assert_eq!(opened.state, BreakerState::Open, "{opened:?}");

    let (warm_up, measure) = if quick() {
        (Duration::from_millis(100), Duration::from_secs(1))
    } else {
        (Duration::from_millis(500), Duration::from_secs(4))
    };
    let mut group = c.benchmark_group("breaker");
    group
        .sample_size(10)
        .warm_up_time(warm_up)
        .measurement_time(measure);
    let next = AtomicU64::new(0);
    group.bench_function("body", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(uncached(user(next.fetch_add(1, Relaxed))).await) });
    });
    group.bench_function("stalled/breaker_off", |b| {
        b.to_async(&rt).iter(|| async {
            black_box(user_collections(&off, user(next.fetch_add(1, Relaxed))).await)
        });
    });
    group.bench_function("stalled/breaker_open", |b| {
        b.to_async(&rt).iter(|| async {
            black_box(user_collections(&on, user(next.fetch_add(1, Relaxed))).await)
        });
    });
    group.finish();

    let still = on.breaker_health().expect("a breaker");
    assert_eq!(
        (still.state, still.opened),
        (BreakerState::Open, 1),
        "open throughout: {still:?}"
    );
    println!(
        "breaker: operation timeout {OP_TIMEOUT:?}; reads that waited it out with the breaker off: {}",
        off.stats().errors
    );
}

criterion_group!(benches, breaker);
criterion_main!(benches);
