//! Redis-only behaviour: outages, corrupt bytes, namespaces, SCAN paging.
//! The outage tests run their own redis-server, which they stop, pause and
//! restart; the rest run on a server of their own and on a cluster.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cachemacro_runtime::{Cache, Error, cached, invalidates};
use cachemacro_tests::{RedisServer, Server, eventually, on_every_redis};

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("database error")]
struct DbError;

#[cached(key = "user-collections:<user_id>", ttl = "1h", cache = cache)]
async fn user_collections(cache: &Cache, user_id: u64) -> Result<Vec<String>, DbError> {
    Ok(vec![format!("favourites of {user_id}")])
}

#[invalidates("user-collections:<user_id>", "sets:user:<user_id>:*", cache = cache)]
async fn add_image_to_collection(cache: &Cache, user_id: u64) -> Result<(), DbError> {
    let _ = user_id;
    Ok(())
}

/// A hang guard, not a timing assertion: a cache call must come back.
async fn bounded<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(10), f)
        .await
        .expect("the call came back instead of hanging")
}

fn favourites(id: u64) -> Result<Vec<String>, DbError> {
    Ok(vec![format!("favourites of {id}")])
}

#[tokio::test]
async fn redis_killed_mid_test_serves_the_body_then_recovers() {
    let Some(mut server) = RedisServer::start_controllable() else {
        return;
    };
    let cache = server.cache().await;
    assert_eq!(user_collections(&cache, 1).await, favourites(1));
    assert_eq!(user_collections(&cache, 1).await, favourites(1));
    assert_eq!(cache.stats().hits, 1);

    server.stop();
    for id in [1, 2, 1] {
        assert_eq!(bounded(user_collections(&cache, id)).await, favourites(id));
    }
    let s = cache.stats();
    assert!(s.errors >= 3, "each failed read is counted: {s:?}");
    assert_eq!(s.loads, 4, "every call during the outage ran the body");

    server.restart();
    // Entries stored before the outage ended are refilled once (it may have
    // missed invalidations meanwhile), then hit.
    eventually("caching resumed after Redis came back", async || {
        let hits = cache.stats().hits;
        assert_eq!(bounded(user_collections(&cache, 1)).await, favourites(1));
        cache.stats().hits > hits
    })
    .await;
    let hits = cache.stats().hits;
    assert_eq!(user_collections(&cache, 1).await, favourites(1));
    assert_eq!(cache.stats().hits, hits + 1, "caching resumed");
}

#[tokio::test]
async fn paused_redis_times_out_instead_of_hanging() {
    let Some(server) = RedisServer::start_controllable() else {
        return;
    };
    let cache = server.cache().await;
    user_collections(&cache, 1).await.unwrap();

    server.pause();
    assert_eq!(bounded(user_collections(&cache, 1)).await, favourites(1));
    assert!(matches!(
        bounded(cache.get::<u8>("x")).await,
        Err(Error::Timeout(_))
    ));
    assert!(bounded(cache.delete("x")).await.is_err());
    // The cached read and the delete count in the totals, the manual `get`
    // apart (`Stats::manual`).
    let s = cache.stats();
    assert!(s.errors >= 2 && s.manual.errors >= 1, "{s:?}");
    server.resume();

    // The entry written before the pause is not trusted (an invalidation
    // may have been missed during it): refilled once, then served again.
    eventually("caching resumed after the pause", async || {
        let hits = cache.stats().hits;
        user_collections(&cache, 1).await.unwrap();
        cache.stats().hits > hits
    })
    .await;
    let s = cache.stats();
    assert!(s.distrusted >= 1, "the old entry was refilled: {s:?}");
}

/// Collects formatted tracing output.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[tokio::test(flavor = "current_thread")]
async fn failed_invalidation_is_logged_at_warn_and_counted() {
    let Some(mut server) = RedisServer::start_controllable() else {
        return;
    };
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::WARN)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let cache = server.cache().await;
    server.stop();
    assert_eq!(
        bounded(add_image_to_collection(&cache, 5)).await,
        Ok(()),
        "the write still succeeds"
    );

    let s = cache.stats();
    assert_eq!(
        s.invalidation_errors, 2,
        "the exact key and the prefix: {s:?}"
    );
    assert_eq!(s.invalidations, 0);
    let family = s
        .family("sets:user:<user_id>:*")
        .expect("counted under its template");
    assert_eq!(family.invalidation_errors, 1);
    let text = logs.text();
    let warnings: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("cache invalidation failed"))
        .collect();
    assert_eq!(
        warnings.len(),
        2,
        "one warning per lost invalidation:\n{text}"
    );
    assert!(warnings.iter().all(|l| l.contains("WARN")));
    assert!(
        warnings.iter().any(|l| l.contains("user-collections:5")),
        "{text}"
    );
    assert!(
        warnings.iter().any(|l| l.contains("sets:user:5:*")),
        "{text}"
    );
    assert!(
        warnings
            .iter()
            .all(|l| l.contains("add_image_to_collection")),
        "{text}"
    );
}

#[tokio::test]
async fn redis_down_at_boot() {
    let Some(mut server) = RedisServer::start_controllable() else {
        return;
    };
    server.stop();
    let url = server.url();

    let err = Cache::builder()
        .url(&url)
        .connect_timeout(Duration::from_millis(300))
        .connect()
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Connect { .. }),
        "connect() is strict: {err}"
    );

    let cache = Cache::builder()
        .url(&url)
        .operation_timeout(Duration::from_millis(200))
        .connect_timeout(Duration::from_millis(200))
        .build()
        .expect("a lazy cache builds without Redis");
    assert_eq!(bounded(user_collections(&cache, 1)).await, favourites(1));
    assert!(cache.stats().errors >= 1);

    server.restart();
    eventually("the cache recovered after Redis came back", async || {
        let _ = bounded(user_collections(&cache, 2)).await;
        matches!(
            cache.get::<Vec<String>>("user-collections:2").await,
            Ok(Some(_))
        )
    })
    .await;
}

async fn corrupt_bytes_are_a_miss_and_get_overwritten(server: Server) {
    let cache = server.cache().await;
    let key = server.stored_key("user-collections:42");
    let mut raw = server.raw().await;

    // Bytes from elsewhere entirely.
    let _: () = redis::cmd("SET")
        .arg(&key)
        .arg(b"\xff\x00garbage")
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(user_collections(&cache, 42).await, favourites(42));
    // Our header, a damaged payload.
    let good: Vec<u8> = redis::cmd("GET")
        .arg(&key)
        .query_async(&mut raw)
        .await
        .unwrap();
    let _: () = redis::cmd("SET")
        .arg(&key)
        .arg(&good[..good.len() - 3])
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(user_collections(&cache, 42).await, favourites(42));
    // A huge claimed length after a valid header.
    // The 73-byte header of an entry without tags, then a huge claimed length.
    let mut huge = good[..73].to_vec();
    huge.extend_from_slice(&[0xfd, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]);
    let _: () = redis::cmd("SET")
        .arg(&key)
        .arg(huge)
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(user_collections(&cache, 42).await, favourites(42));

    let now: Vec<u8> = redis::cmd("GET")
        .arg(&key)
        .query_async(&mut raw)
        .await
        .unwrap();
    // Same magic, format, codec, type and payload; its own load time and id.
    assert_eq!(
        (&now[..12], &now[73..]),
        (&good[..12], &good[73..]),
        "overwritten with a good entry"
    );
    assert_eq!(user_collections(&cache, 42).await, favourites(42));
    let s = cache.stats();
    assert_eq!((s.decode_errors, s.loads, s.hits), (3, 3, 1), "{s:?}");
}

async fn namespace_prefixes_keys_and_confines_patterns(server: Server) {
    let shop = server
        .builder()
        .namespace(server.stored_key("shop"))
        .operation_timeout(Duration::from_secs(2))
        .connect()
        .await
        .unwrap();
    let plain = server.cache().await;
    user_collections(&shop, 1).await.unwrap();
    user_collections(&plain, 1).await.unwrap();

    let mut raw = server.raw().await;
    let exists: bool = redis::cmd("EXISTS")
        .arg(server.stored_key("shop:user-collections:1"))
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!(exists);

    assert_eq!(shop.delete_pattern("user-collections:*").await.unwrap(), 1);
    assert!(
        plain
            .get::<Vec<String>>("user-collections:1")
            .await
            .unwrap()
            .is_some(),
        "other namespace untouched"
    );
}

async fn prefix_delete_pages_through_scan_and_matches_literally(server: Server) {
    let cache = server
        .builder()
        .operation_timeout(Duration::from_secs(2))
        .connect()
        .await
        .unwrap();
    let keys: Vec<String> = (0..2_500)
        .map(|i| format!("explore?q=cats&page={i}"))
        .collect();
    let entries: Vec<(&str, &u32)> = keys.iter().map(|k| (k.as_str(), &7)).collect();
    cache
        .set_many(&entries, Duration::from_secs(60))
        .await
        .unwrap();
    cache
        .set("exploreXq=cats&page=1", &1u32, Duration::from_secs(60))
        .await
        .unwrap();
    cache
        .set("explore[q]=cats", &1u32, Duration::from_secs(60))
        .await
        .unwrap();

    assert_eq!(
        cache.delete_pattern("explore?q=*").await.unwrap(),
        2_500,
        "several SCAN pages"
    );
    assert_eq!(
        cache.get::<u32>("exploreXq=cats&page=1").await.unwrap(),
        Some(1),
        "`?` is literal"
    );
    assert_eq!(
        cache.get::<u32>("explore[q]=cats").await.unwrap(),
        Some(1),
        "`[` is literal"
    );
    assert_eq!(cache.delete_pattern("explore[q]*").await.unwrap(), 1);
}

#[cached(key = "tagged:<id>", ttl = "1h", tags = ["t:<id>"], cache = cache)]
async fn tagged(cache: &Cache, id: u32) -> u32 {
    id
}

/// A read that timed out on a stalled server may take its lease there
/// later; it is given back, so the key does not stay unfillable for the
/// whole lease time (60 s here).
#[tokio::test]
async fn a_read_that_timed_out_does_not_leave_the_key_reserved() {
    let Some(server) = RedisServer::start_controllable() else {
        return;
    };
    let cache = Cache::builder()
        .url(server.url())
        .operation_timeout(Duration::from_millis(200))
        .fill_lease(Duration::from_secs(60))
        .connect()
        .await
        .unwrap();
    server.pause();
    assert_eq!(bounded(tagged(&cache, 1)).await, 1);
    server.resume();
    eventually("the cache recovered after Redis came back", async || {
        tagged(&cache, 1).await;
        cache.stats().stores == 1
    })
    .await;
}

/// Truncated entries and a tag version of the wrong size are misses, then
/// overwritten: never a script error on every read.
async fn truncated_entries_and_bad_tag_versions_are_misses(server: Server) {
    let cache = server.cache().await;
    let mut raw = server.raw().await;
    let mut truncated: Vec<u8> = vec![0xCA, 0xCE, 0x05, 0x01];
    // Fingerprint, load time, grace, id, refresh lock, fill time, expiry.
    truncated.extend_from_slice(&[0; 68]);
    truncated.push(1); // one tag, then nothing
    let _: () = redis::cmd("SET")
        .arg(server.stored_key("tagged:2"))
        .arg(truncated)
        .query_async(&mut raw)
        .await
        .unwrap();
    let _: () = redis::cmd("SET")
        .arg(server.stored_key("__cachemacro:tag:t:3"))
        .arg("x")
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(tagged(&cache, 2).await, 2);
    assert_eq!(tagged(&cache, 3).await, 3);
    assert_eq!(tagged(&cache, 2).await, 2);
    assert_eq!(tagged(&cache, 3).await, 3);
    let s = cache.stats();
    assert_eq!((s.errors, s.stores, s.hits), (0, 2, 2), "{s:?}");
}

on_every_redis!(
    corrupt_bytes_are_a_miss_and_get_overwritten,
    namespace_prefixes_keys_and_confines_patterns,
    prefix_delete_pages_through_scan_and_matches_literally,
    truncated_entries_and_bad_tag_versions_are_misses,
);
