//! Configuration: `CACHE_URL`, URL schemes and the process default. One
//! test binary with one test, because the environment and the default are
//! process-wide.

use cachemacro_runtime::{Cache, Error, cached, default_cache, invalidates, set_default};
use cachemacro_tests::RedisServer;

#[cached(key = "greeting:<lang>", ttl = "10m")]
async fn greeting(lang: &str) -> String {
    format!("hello in {lang}")
}

#[invalidates("greeting:<lang>")]
async fn retranslate(lang: &str) {
    let _ = lang;
}

fn set_env(value: Option<&str>) {
    // SAFETY: this binary's only test; nothing else reads the environment meanwhile.
    unsafe {
        match value {
            Some(v) => std::env::set_var("CACHE_URL", v),
            None => std::env::remove_var("CACHE_URL"),
        }
    }
}

#[tokio::test(flavor = "current_thread")]
async fn urls_environment_and_the_process_default() {
    set_env(None);
    assert_eq!(Cache::from_env().await.unwrap().describe(), "memory");
    set_env(Some(""));
    assert_eq!(Cache::from_env().await.unwrap().describe(), "memory");
    set_env(Some("memory://"));
    assert_eq!(Cache::from_env().await.unwrap().describe(), "memory");

    set_env(Some("postgres://localhost/db"));
    assert!(matches!(
        Cache::from_env().await,
        Err(Error::InvalidUrl { .. })
    ));
    let err = Cache::connect("redis://:s3cret@").await.unwrap_err();
    assert!(
        !err.to_string().contains("s3cret"),
        "passwords stay out of errors: {err}"
    );
    assert!(matches!(
        Cache::connect("http://example").await,
        Err(Error::InvalidUrl { .. })
    ));

    let Some(server) = RedisServer::start() else {
        return;
    };
    set_env(Some(&server.url()));
    let from_env = Cache::from_env().await.unwrap();
    assert_eq!(from_env.describe(), server.url());

    // The attributes without `cache = …` use the process default.
    assert!(set_default(from_env.clone()).is_ok());
    assert!(set_default(Cache::memory()).is_err(), "installed once");
    assert_eq!(greeting("fr").await, "hello in fr");
    assert_eq!(greeting("fr").await, "hello in fr");
    retranslate("fr").await;
    let s = default_cache().stats();
    assert_eq!((s.hits, s.misses, s.invalidations), (1, 1, 1));
    assert_eq!(from_env.stats(), s, "clones share their statistics");
    let mut raw = server.raw().await;
    let exists: bool = redis::cmd("EXISTS")
        .arg("greeting:fr")
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!(!exists, "the invalidation reached Redis");
}
