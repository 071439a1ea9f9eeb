//! `#[invalidates]`: several patterns, prefixes and exact keys, on a free
//! fn and on a method; only after success.
use std::sync::atomic::{AtomicU32, Ordering};

use cachemacro_runtime::{Cache, cached, invalidates};

static LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(key = "sets:user:<user_id>:page:<page>", ttl = 60, cache = cache)]
async fn sets_page(cache: &Cache, user_id: u64, page: u32) -> Vec<u64> {
    LOADS.fetch_add(1, Ordering::SeqCst);
    vec![user_id, u64::from(page)]
}

#[cached(key = "set:<set_id>", ttl = 60, cache = cache)]
async fn set(cache: &Cache, set_id: u64) -> u64 {
    LOADS.fetch_add(1, Ordering::SeqCst);
    set_id
}

#[invalidates("sets:user:<user_id>:*", "set:<set_id>", "set:<other>", cache = cache)]
async fn delete_set(
    cache: &Cache,
    user_id: u64,
    set_id: u64,
    other: u64,
    fail: bool,
) -> Result<(), String> {
    if fail { Err("refused".into()) } else { Ok(()) }
}

struct Service {
    cache: Cache,
}

impl Service {
    #[invalidates("set:<set_id>", cache = self.cache)]
    async fn touch(&self, set_id: u64) -> u64 {
        set_id
    }
}

fn loads() -> u32 {
    LOADS.load(Ordering::SeqCst)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let cache = Cache::memory();
    sets_page(&cache, 1, 1).await;
    sets_page(&cache, 1, 2).await;
    sets_page(&cache, 2, 1).await;
    set(&cache, 5).await;
    set(&cache, 6).await;
    assert_eq!(loads(), 5);

    // A failed body invalidates nothing.
    assert!(delete_set(&cache, 1, 5, 6, true).await.is_err());
    sets_page(&cache, 1, 1).await;
    set(&cache, 5).await;
    assert_eq!(loads(), 5);

    delete_set(&cache, 1, 5, 6, false).await.unwrap();
    sets_page(&cache, 1, 1).await; // reloaded
    sets_page(&cache, 1, 2).await; // reloaded
    sets_page(&cache, 2, 1).await; // another user: still cached
    set(&cache, 5).await; // reloaded
    set(&cache, 6).await; // reloaded
    assert_eq!(loads(), 9);

    let service = Service {
        cache: cache.clone(),
    };
    assert_eq!(service.touch(5).await, 5);
    set(&cache, 5).await;
    assert_eq!(loads(), 10);
}
