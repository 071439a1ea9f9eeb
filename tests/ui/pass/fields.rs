//! Nested fields and tuple fields in placeholders.
use std::sync::atomic::{AtomicU32, Ordering};

use cachemacro_runtime::{Cache, cached, invalidates};

static LOADS: AtomicU32 = AtomicU32::new(0);

struct Owner {
    id: u64,
}

struct Set {
    id: u64,
    owner: Owner,
}

#[cached(key = "set:<set.owner.id>:<set.id>:<pair.0>:<pair.1>", ttl = 60, cache = cache)]
async fn describe(cache: &Cache, set: &Set, pair: (u8, String)) -> String {
    LOADS.fetch_add(1, Ordering::SeqCst);
    format!("{} {} {}", set.id, pair.0, pair.1)
}

#[invalidates("set:<set.owner.id>:*", cache = cache)]
async fn delete_owner_sets(cache: &Cache, set: &Set) {}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let cache = Cache::memory();
    let set = Set {
        id: 2,
        owner: Owner { id: 9 },
    };
    assert_eq!(describe(&cache, &set, (1, "x".into())).await, "2 1 x");
    assert_eq!(describe(&cache, &set, (1, "x".into())).await, "2 1 x");
    assert_eq!(LOADS.load(Ordering::SeqCst), 1);
    assert!(cache.get::<String>("set:9:2:1:x").await.unwrap().is_some());
    delete_owner_sets(&cache, &set).await;
    assert!(cache.get::<String>("set:9:2:1:x").await.unwrap().is_none());
}
