use std::sync::atomic::{AtomicU32, Ordering};

use cachemacro_runtime::{Cache, cached};

static LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(key = "user:<user_id>", ttl = 60, cache = cache)]
async fn user_name(cache: &Cache, user_id: u64) -> String {
    LOADS.fetch_add(1, Ordering::SeqCst);
    format!("user {user_id}")
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let cache = Cache::memory();
    assert_eq!(user_name(&cache, 1).await, "user 1");
    assert_eq!(user_name(&cache, 1).await, "user 1");
    assert_eq!(user_name(&cache, 2).await, "user 2");
    assert_eq!(LOADS.load(Ordering::SeqCst), 2);
    let stats = cache.stats();
    assert_eq!((stats.hits, stats.misses), (1, 2));
}
