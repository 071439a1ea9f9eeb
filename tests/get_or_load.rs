//! The engine without macros: `Cache::get_or_load` and its variants, with
//! keys and options built at run time, on every backend.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::time::Duration;

use cachemacro_runtime::{Cache, EntryOptions};
use cachemacro_tests::{Backend, on_every_backend, on_every_backend_paused};
use tokio::sync::Notify;

/// A source whose row can change and whose loads can be held.
#[derive(Clone, Default)]
struct Source(Arc<SourceInner>);

#[derive(Default)]
struct SourceInner {
    version: AtomicU64,
    loads: AtomicU64,
    gate: Notify,
    held: std::sync::atomic::AtomicBool,
}

impl Source {
    async fn load(&self) -> Result<u64, String> {
        self.0.loads.fetch_add(1, SeqCst);
        let version = self.0.version.load(SeqCst);
        if self.0.held.load(SeqCst) {
            self.0.gate.notified().await;
        }
        Ok(version)
    }

    fn loads(&self) -> u64 {
        self.0.loads.load(SeqCst)
    }
}

fn minute() -> EntryOptions {
    EntryOptions::new(Duration::from_secs(60)).family("page:<path>")
}

/// A key known only at run time: an HTTP path with a query string.
fn page_key(path: &str) -> String {
    format!("page:{}", cachemacro_runtime::encode_key_part(path))
}

async fn hit_after_miss_with_a_runtime_key(b: Backend) {
    let (cache, source) = (&b.cache, Source::default());
    let key = page_key("/shoes?colour=red&page=2");
    for _ in 0..3 {
        let s = source.clone();
        let got: Result<u64, String> = cache
            .get_or_load(&key, &minute(), move || async move { s.load().await })
            .await;
        assert_eq!(got, Ok(0));
    }
    assert_eq!(source.loads(), 1);
    let family = cache
        .stats()
        .family("page:<path>")
        .expect("counted under its family");
    assert_eq!((family.hits, family.misses, family.stores), (2, 1, 1));
    // The manual API reads what get_or_load stored.
    assert_eq!(cache.get::<u64>(&key).await.unwrap(), Some(0));
}

async fn two_hundred_cold_callers_load_once(b: Backend) {
    let source = Source::default();
    source.0.held.store(true, SeqCst);
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let (cache, s) = (b.cache.clone(), source.clone());
            tokio::spawn(async move {
                cache
                    .get_or_load("cold:1", &minute(), move || async move { s.load().await })
                    .await
            })
        })
        .collect();
    while source.loads() == 0 {
        tokio::task::yield_now().await;
    }
    let mut results = Vec::new();
    for mut task in tasks {
        loop {
            source.0.gate.notify_waiters();
            if let Ok(r) = tokio::time::timeout(Duration::from_millis(5), &mut task).await {
                results.push(r.unwrap());
                break;
            }
        }
    }
    assert!(results.iter().all(|r| *r == Ok(0)));
    assert_eq!(
        source.loads(),
        1,
        "one load for 200 concurrent cold callers"
    );
}

async fn errors_pass_through_unstored(b: Backend) {
    let cache = &b.cache;
    let failed: Result<u64, String> = cache
        .get_or_load("flaky:1", &minute(), || async {
            Err("database down".to_string())
        })
        .await;
    assert_eq!(failed, Err("database down".to_string()));
    assert_eq!(
        cache.get::<u64>("flaky:1").await.unwrap(),
        None,
        "an Err is not stored"
    );
    let ok: Result<u64, String> = cache
        .get_or_load("flaky:1", &minute(), || async { Ok(7) })
        .await;
    assert_eq!(ok, Ok(7), "the next call loads again");
}

async fn invalidate_tag_makes_tagged_entries_misses(b: Backend) {
    let (cache, source) = (&b.cache, Source::default());
    let tagged = minute().tags(["catalog", "shoes"]);
    let load = |s: Source| move || async move { s.load().await };
    for path in ["/shoes", "/shoes?page=2"] {
        let got: Result<u64, String> = cache
            .get_or_load(&page_key(path), &tagged, load(source.clone()))
            .await;
        assert_eq!(got, Ok(0));
    }
    source.0.version.store(1, SeqCst);
    cache.invalidate_tag("catalog").await.unwrap();
    for path in ["/shoes", "/shoes?page=2"] {
        let got: Result<u64, String> = cache
            .get_or_load(&page_key(path), &tagged, load(source.clone()))
            .await;
        assert_eq!(got, Ok(1), "{path} reloaded after its tag was invalidated");
    }
    assert_eq!(source.loads(), 4);
    assert_eq!(
        cache.get::<u64>(&page_key("/shoes")).await.unwrap(),
        Some(1)
    );
}

async fn ok_none_is_stored_only_with_none_ttl(b: Backend) {
    let cache = &b.cache;
    let loads = Arc::new(AtomicU64::new(0));
    let find = |loads: Arc<AtomicU64>| {
        move || async move {
            loads.fetch_add(1, SeqCst);
            Ok::<Option<String>, String>(None)
        }
    };
    for _ in 0..2 {
        let user = cache
            .get_or_load("user:new", &minute(), find(loads.clone()))
            .await;
        assert_eq!(user, Ok(None));
    }
    assert_eq!(
        loads.load(SeqCst),
        2,
        "Ok(None) without none_ttl is not stored"
    );
    let negative = minute().none_ttl(Duration::from_secs(5));
    for _ in 0..2 {
        let user = cache
            .get_or_load("user:gone", &negative, find(loads.clone()))
            .await;
        assert_eq!(user, Ok(None));
    }
    assert_eq!(loads.load(SeqCst), 3, "with none_ttl the None is stored");
    // The Option variant follows the same rule.
    let option = cache
        .get_or_load_option("maybe:1", &minute(), || async { None::<u32> })
        .await;
    assert_eq!(option, None);
    let some = cache
        .get_or_load_option("maybe:1", &minute(), || async { Some(3u32) })
        .await;
    assert_eq!(some, Some(3));
}

async fn a_borrowing_loader_runs_inline(b: Backend) {
    let cache = &b.cache;
    let rows = [10u64, 20, 30];
    let total: Result<u64, String> = cache
        .get_or_load_inline("total", &minute(), || async { Ok(rows.iter().sum()) })
        .await;
    assert_eq!(total, Ok(60));
    let again: Result<u64, String> = cache
        .get_or_load_inline("total", &minute(), || async { Ok(0) })
        .await;
    assert_eq!(again, Ok(60), "a hit");
}

/// "Forever" is a duration too: clamped, never an overflow panic.
async fn huge_durations_are_clamped(b: Backend) {
    let forever = EntryOptions::new(Duration::MAX);
    let got: Result<u32, String> = b
        .cache
        .get_or_load("forever:1", &forever, || async { Ok(1) })
        .await;
    assert_eq!(got, Ok(1));
    let kept = minute().stale(Duration::MAX).fail_safe(Duration::MAX);
    let got: Result<u32, String> = b
        .cache
        .get_or_load("forever:2", &kept, || async { Ok(2) })
        .await;
    assert_eq!(got, Ok(2));
    assert_eq!(
        b.cache.get::<u32>("forever:2").await.unwrap(),
        Some(2),
        "stored"
    );
    assert_eq!(b.cache.stats().errors, 0);
}

on_every_backend!(
    huge_durations_are_clamped,
    hit_after_miss_with_a_runtime_key,
    two_hundred_cold_callers_load_once,
    errors_pass_through_unstored,
    invalidate_tag_makes_tagged_entries_misses,
    ok_none_is_stored_only_with_none_ttl,
    a_borrowing_loader_runs_inline,
);

/// On a paused clock: timeouts and ageing are exact.
mod paused {
    use super::*;

    async fn a_hard_timeout_maps_into_the_callers_error(b: Backend) {
        let options = minute().hard_timeout(Duration::from_millis(50));
        let report: Result<String, String> = b
            .cache
            .get_or_load_timed(
                "report:7",
                &options,
                |t| t.to_string(),
                || async {
                    tokio::time::sleep(Duration::from_secs(60)).await;
                    Ok("report".to_string())
                },
            )
            .await;
        let err = report.unwrap_err();
        assert!(err.contains("hard timeout of 50ms"), "{err}");
        assert_eq!(b.cache.stats().hard_timeouts, 1);
    }

    async fn stale_serves_the_old_value_while_one_refresh_runs(b: Backend) {
        let (cache, source) = (&b.cache, Source::default());
        let options = minute().stale(Duration::from_secs(600));
        let load = |s: Source| move || async move { s.load().await };
        assert_eq!(
            cache
                .get_or_load("swr:1", &options, load(source.clone()))
                .await,
            Ok(0)
        );
        source.0.version.store(1, SeqCst);
        b.age("swr:1", Duration::from_secs(61)).await;
        assert_eq!(
            cache
                .get_or_load("swr:1", &options, load(source.clone()))
                .await,
            Ok(0),
            "past freshness, within stale: the old value at once"
        );
        cachemacro_tests::eventually("the background refresh stored the new row", async || {
            cache.get::<u64>("swr:1").await.ok().flatten() == Some(1)
        })
        .await;
        assert_eq!(source.loads(), 2);
        assert_eq!(cache.stats().stale_served, 1);
    }

    on_every_backend_paused!(
        a_hard_timeout_maps_into_the_callers_error,
        stale_serves_the_old_value_while_one_refresh_runs,
    );
}

/// The options a builder gets from `Cache` at run time are plain values:
/// `Clone`, comparable, and clamped rather than panicking.
#[test]
fn entry_options_clamp_out_of_range_numbers() {
    let options = EntryOptions::new(Duration::from_secs(1))
        .beta(-1.0)
        .jitter(5.0);
    assert_eq!(options.clone(), options);
    let again = EntryOptions::new(Duration::from_secs(1))
        .beta(0.0)
        .jitter(0.9);
    assert_eq!(options, again);
}

/// A plain `String` is error type enough, and a failing cache is never the
/// caller's failure: with the backend unusable the loader still answers.
#[tokio::test]
async fn a_broken_backend_still_answers_from_the_loader() {
    let cache = Cache::builder()
        .url("redis://127.0.0.1:1")
        .operation_timeout(Duration::from_millis(50))
        .connect_timeout(Duration::from_millis(50))
        .build()
        .unwrap();
    let got: Result<u64, String> = cache.get_or_load("k", &minute(), || async { Ok(5) }).await;
    assert_eq!(got, Ok(5));
    assert!(cache.stats().errors >= 1);
}

/// Bytes that merely start like a fill lease are unreadable, not another
/// caller's lease: the first call replaces them, without waiting out a
/// `lock` wait, and later calls hit.
#[tokio::test]
async fn foreign_bytes_that_look_like_a_lease_heal() {
    let Some(server) = cachemacro_tests::RedisServer::start() else {
        return;
    };
    let cache = server.cache().await;
    server
        .plant("page:1", &[0xCA, 0x1E, 1, 2, 3], 3_600_000)
        .await;
    let loads = Arc::new(AtomicU64::new(0));
    let options = minute().lock(true);
    for _ in 0..3 {
        let l = loads.clone();
        let got: Result<u64, String> = cache
            .get_or_load("page:1", &options, move || async move {
                Ok(l.fetch_add(1, SeqCst))
            })
            .await;
        assert_eq!(got, Ok(0));
    }
    assert_eq!(loads.load(SeqCst), 1, "replaced once, then hits");
    assert_eq!(
        cache.stats().lock_waits,
        0,
        "nobody waited on bytes that are not a lease"
    );
}
