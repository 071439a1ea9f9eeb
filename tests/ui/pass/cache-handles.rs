//! `cache = …`: a `&Cache` parameter, a `Cache` by value, an `Arc<Cache>`,
//! a static `LazyLock<Cache>`.
use std::sync::{Arc, LazyLock};

use cachemacro_runtime::{Cache, cached, invalidates};

static CACHE: LazyLock<Cache> = LazyLock::new(Cache::memory);

#[cached(key = "by-ref:<id>", ttl = 60, cache = cache)]
async fn by_ref(cache: &Cache, id: u64) -> u64 {
    id
}

#[cached(key = "by-value:<id>", ttl = 60, cache = cache)]
async fn by_value(cache: Cache, id: u64) -> u64 {
    id
}

#[cached(key = "arc:<id>", ttl = 60, cache = cache)]
async fn arc(cache: Arc<Cache>, id: u64) -> u64 {
    id
}

#[cached(key = "static:<id>", ttl = 60, cache = CACHE)]
async fn in_static(id: u64) -> u64 {
    id
}

#[invalidates("static:<id>", cache = CACHE)]
async fn forget_static(id: u64) {}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let cache = Cache::memory();
    let shared = Arc::new(Cache::memory());
    for _ in 0..2 {
        by_ref(&cache, 1).await;
        by_value(cache.clone(), 2).await;
        arc(shared.clone(), 3).await;
        in_static(4).await;
    }
    assert_eq!(cache.stats().hits, 2);
    assert_eq!(shared.stats().hits, 1);
    assert_eq!(CACHE.stats().hits, 1);
    forget_static(4).await;
    assert_eq!(CACHE.stats().invalidations, 1);
}
