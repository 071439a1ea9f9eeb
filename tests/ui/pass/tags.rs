//! Tags on reads, tags and `before` on writes, mixed with key patterns.

use cachemacro_runtime::{Cache, cached, invalidates};

#[cached(key = "user-profile:<user_id>:<page>", ttl = "30m", tags = ["user:<user_id>", "profiles"], cache = cache)]
async fn user_profile(cache: &Cache, user_id: u64, page: u32) -> Vec<String> {
    vec![format!("{user_id}/{page}")]
}

#[invalidates("user-login:<user_id>", tag = "user:<user_id>", cache = cache)]
async fn rename(cache: &Cache, user_id: u64) -> Result<(), std::io::Error> {
    let _ = user_id;
    Ok(())
}

#[invalidates(tags = ["profiles"], before = true, cache = cache)]
async fn reindex(cache: &Cache) {}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let cache = Cache::memory();
    user_profile(&cache, 1, 0).await;
    user_profile(&cache, 1, 0).await;
    rename(&cache, 1).await.unwrap();
    user_profile(&cache, 1, 0).await;
    reindex(&cache).await;
    user_profile(&cache, 1, 0).await;
    let stats = cache.stats();
    assert_eq!((stats.hits, stats.loads), (1, 3));
}
