//! `CacheBuilder` checks every setting when it builds: a value out of range
//! is an `Error::Config` naming the setting, never a panic in a setter.

use std::time::Duration;

use cachemacro_runtime::{Cache, CacheBuilder, Error};

fn refused(builder: CacheBuilder) -> &'static str {
    match builder.build() {
        Err(Error::Config { setting, reason }) => {
            assert!(reason.starts_with("must be"), "{setting}: {reason}");
            setting
        }
        Err(other) => panic!("expected a config error, got {other}"),
        Ok(_) => panic!("expected a config error, got a cache"),
    }
}

#[test]
fn out_of_range_settings_are_config_errors() {
    assert_eq!(refused(Cache::builder().beta(-1.0)), "beta");
    assert_eq!(refused(Cache::builder().beta(f64::NAN)), "beta");
    assert_eq!(refused(Cache::builder().jitter(1.0)), "jitter");
    assert_eq!(refused(Cache::builder().jitter(-0.1)), "jitter");
    assert_eq!(
        refused(Cache::builder().fill_lease(Duration::ZERO)),
        "fill_lease"
    );
    assert_eq!(
        refused(Cache::builder().fail_safe_throttle(Duration::ZERO)),
        "fail_safe_throttle"
    );
    assert_eq!(
        refused(Cache::builder().invalidation_queue_capacity(0)),
        "invalidation_queue_capacity"
    );
    assert_eq!(
        refused(Cache::builder().memory_capacity(10)),
        "memory_capacity"
    );
    assert_eq!(
        refused(Cache::builder().operation_timeout(Duration::ZERO)),
        "operation_timeout"
    );
    assert_eq!(refused(Cache::builder().namespace("shop*")), "namespace");
    let second = Duration::from_secs(1);
    assert_eq!(refused(Cache::builder().breaker(1001, second)), "breaker");
    assert_eq!(
        refused(Cache::builder().breaker(5, Duration::ZERO)),
        "breaker"
    );
    assert_eq!(refused(Cache::builder().breaker(5, 31 * second)), "breaker");
    // The message says what to do.
    let err = Cache::builder().jitter(2.0).build().unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid cache setting `jitter`: must be a fraction from 0 up to (not including) 1"
    );
}

#[test]
fn settings_in_range_build() {
    let cache = Cache::builder()
        .beta(0.0)
        .jitter(0.5)
        .fill_lease(Duration::from_millis(1))
        .fail_safe_throttle(Duration::from_secs(1))
        .invalidation_queue_capacity(1)
        .memory_capacity(1024)
        .namespace("shop")
        .lock_wait(Duration::MAX) // "forever", taken as 100 years
        .breaker(1000, Duration::from_secs(30))
        .build();
    assert!(cache.is_ok());
}

/// A Redis cache has a circuit breaker unless its threshold is 0; an
/// in-memory one has none.
#[tokio::test]
async fn the_breaker_is_on_for_redis_unless_turned_off() {
    let redis = || Cache::builder().url("redis://127.0.0.1:1");
    let on = redis().build().unwrap();
    assert!(on.breaker_health().is_some());
    let off = redis().breaker(0, Duration::from_secs(1)).build().unwrap();
    assert!(off.breaker_health().is_none());
    assert!(Cache::memory().breaker_health().is_none());
}

/// Settings ride in the URL (`CACHE_URL` too) and win over the builder's;
/// a wrong one is an error at start, naming it.
#[tokio::test]
async fn url_parameters_configure_the_cache() {
    let Some(server) = cachemacro_tests::RedisServer::start() else {
        return;
    };
    let url = format!(
        "{}/?namespace=from-url&operation_timeout=100ms",
        server.url()
    );
    let cache = Cache::builder()
        .url(url)
        .namespace("from-code")
        .connect()
        .await
        .unwrap();
    cache
        .set("k", &1u32, Duration::from_secs(60))
        .await
        .unwrap();
    let mut raw = server.raw().await;
    let exists: bool = redis::cmd("EXISTS")
        .arg("from-url:k")
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!(exists, "the URL's namespace won");

    let typo = Cache::connect(&format!("{}/?operation_timout=100ms", server.url()))
        .await
        .unwrap_err();
    assert!(
        matches!(&typo, Error::InvalidUrl { reason, .. } if reason.contains("unknown parameter `operation_timout`")),
        "{typo}"
    );
    let memory = Cache::connect("memory://?jitter=2").await.unwrap_err();
    assert!(
        matches!(
            memory,
            Error::Config {
                setting: "jitter",
                ..
            }
        ),
        "a value read from the URL is checked like any other"
    );
}
