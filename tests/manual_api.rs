//! The manual API on `Cache`, on memory, on Redis and on a Redis Cluster.

use std::time::Duration;

use cachemacro_runtime::{Cache, Error};
use cachemacro_tests::{Backend, on_every_backend};
use serde::{Deserialize, Serialize};

const MINUTE: Duration = Duration::from_secs(60);

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
struct Item {
    id: u32,
    tags: Vec<String>,
}

fn item(id: u32) -> Item {
    Item {
        id,
        tags: vec![format!("t{id}")],
    }
}

async fn get_set_delete(b: Backend) {
    let c = &b.cache;
    assert_eq!(c.get::<Item>("item:1").await.unwrap(), None);
    c.set("item:1", &item(1), MINUTE).await.unwrap();
    assert_eq!(c.get::<Item>("item:1").await.unwrap(), Some(item(1)));
    assert_eq!(
        c.get::<String>("item:1").await.unwrap(),
        None,
        "another type is a miss"
    );
    assert!(c.delete("item:1").await.unwrap());
    assert!(!c.delete("item:1").await.unwrap());
    assert_eq!(c.get::<Item>("item:1").await.unwrap(), None);
    // The manual API counts apart from cached calls (a health probe's
    // reads must not move the cache's hit ratio).
    let s = c.stats();
    let m = s.manual;
    assert_eq!((m.hits, m.misses, m.decode_errors, m.stores), (1, 3, 1, 1));
    assert_eq!((s.hits, s.misses, s.stores, s.hit_ratio()), (0, 0, 0, None));
}

async fn many_at_once(b: Backend) {
    let c = &b.cache;
    let (one, two) = (item(1), item(2));
    c.set_many(&[("m:1", &one), ("m:2", &two)], MINUTE)
        .await
        .unwrap();
    let got = c
        .get_many::<Item>(&["m:1", "m:missing", "m:2"])
        .await
        .unwrap();
    assert_eq!(got, vec![Some(one), None, Some(two)]);
    assert_eq!(c.get_many::<Item>(&[]).await.unwrap(), vec![]);
}

async fn set_if_absent_stores_once(b: Backend) {
    let c = &b.cache;
    assert!(c.set_if_absent("lock:a", &1u8, MINUTE).await.unwrap());
    assert!(!c.set_if_absent("lock:a", &2u8, MINUTE).await.unwrap());
    assert_eq!(c.get::<u8>("lock:a").await.unwrap(), Some(1));
}

async fn incr_counts_and_expires(b: Backend) {
    let c = &b.cache;
    assert_eq!(c.incr("hits:a", 1, None).await.unwrap(), 1);
    assert_eq!(c.incr("hits:a", 41, None).await.unwrap(), 42);
    assert_eq!(c.incr("hits:a", -2, None).await.unwrap(), 40);
    assert_eq!(
        c.incr("rate:a", 1, Some(Duration::from_secs(1)))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        c.incr("rate:a", 1, Some(Duration::from_secs(1)))
            .await
            .unwrap(),
        2
    );
    // Waiting out the window (the server's clock), not timing anything.
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(
        c.incr("rate:a", 1, Some(Duration::from_secs(1)))
            .await
            .unwrap(),
        1,
        "the window restarted"
    );
    assert_eq!(
        c.incr("hits:a", 0, None).await.unwrap(),
        40,
        "no ttl: still there"
    );

    c.set("not-a-number", &item(1), MINUTE).await.unwrap();
    assert!(
        matches!(c.incr("not-a-number", 1, None).await, Err(Error::NotAnInteger(k)) if k == "not-a-number")
    );
}

async fn delete_pattern_takes_only_the_prefix(b: Backend) {
    let c = &b.cache;
    for k in [
        "sets:user:1:a:b",
        "sets:user:1:~:~",
        "sets:user:11:a:b",
        "sets:user:1",
        "set:1",
    ] {
        c.set(k, &1u8, MINUTE).await.unwrap();
    }
    assert_eq!(c.delete_pattern("sets:user:1:*").await.unwrap(), 2);
    assert_eq!(c.get::<u8>("sets:user:11:a:b").await.unwrap(), Some(1));
    assert_eq!(c.get::<u8>("sets:user:1").await.unwrap(), Some(1));
    assert_eq!(
        c.delete_pattern("set:1").await.unwrap(),
        1,
        "no `*`: one exact key"
    );
    assert_eq!(c.get::<u8>("sets:user:1").await.unwrap(), Some(1));
    assert_eq!(c.stats().invalidations, 2);
}

on_every_backend!(
    get_set_delete,
    many_at_once,
    set_if_absent_stores_once,
    incr_counts_and_expires,
    delete_pattern_takes_only_the_prefix,
);

/// The memory backend evicts past its byte budget instead of growing.
#[tokio::test]
async fn memory_backend_is_bounded() {
    let cache = Cache::builder().memory_capacity(64 * 1024).build().unwrap();
    let value = vec![7u8; 1024];
    for i in 0..2_000 {
        cache
            .set(&format!("blob:{i}"), &value, MINUTE)
            .await
            .unwrap();
    }
    let mut kept = 0;
    for i in 0..2_000 {
        if cache
            .get::<Vec<u8>>(&format!("blob:{i}"))
            .await
            .unwrap()
            .is_some()
        {
            kept += 1;
        }
    }
    assert!(
        kept > 0 && kept <= 100,
        "about 64 KiB of 1 KiB entries survive, not all 2000: kept {kept}"
    );
}
