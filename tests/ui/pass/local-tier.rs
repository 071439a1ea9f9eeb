//! `local` and `local_ttl`, alone and together, with other options.
use cachemacro_runtime::{Cache, cached};

#[cached(key = "balance:<account>", ttl = "5m", local = false, cache = cache)]
async fn balance(cache: &Cache, account: u64) -> u64 {
    account * 100
}

#[cached(key = "profile:<id>", ttl = "1h", local = true, local_ttl = "30s", cache = cache)]
async fn profile(cache: &Cache, id: u64) -> String {
    format!("profile {id}")
}

#[cached(key = "settings:<id>", ttl = 3600, local_ttl = 10, stale = "1m", lock = true, cache = cache)]
async fn settings(cache: &Cache, id: u64) -> Result<u64, std::io::Error> {
    Ok(id)
}

#[cached(key = "avatar:<id>", ttl = "1h", none_ttl = "1m", local_ttl = "1s 500ms", cache = cache)]
async fn avatar(cache: &Cache, id: u64) -> Option<u64> {
    (id > 0).then_some(id)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let cache = Cache::memory();
    assert_eq!(balance(&cache, 1).await, 100);
    assert_eq!(balance(&cache, 1).await, 100);
    assert_eq!(profile(&cache, 2).await, "profile 2");
    assert_eq!(settings(&cache, 3).await.unwrap(), 3);
    assert_eq!(avatar(&cache, 0).await, None);
    assert_eq!(avatar(&cache, 0).await, None);
    assert_eq!(cache.stats().hits, 2);
}
