//! Every way of writing a TTL.
use cachemacro_runtime::{Cache, cached};

#[cached(key = "secs:<id>", ttl = 300, cache = cache)]
async fn secs(cache: &Cache, id: u64) -> u64 {
    id
}

#[cached(key = "hm:<id>", ttl = "1h30m", cache = cache)]
async fn hours_minutes(cache: &Cache, id: u64) -> u64 {
    id
}

#[cached(key = "ms:<id>", ttl = "500ms", none_ttl = "250ms", cache = cache)]
async fn millis(cache: &Cache, id: u64) -> Option<u64> {
    Some(id)
}

#[cached(key = "days:<id>", ttl = "1d 12h", none_ttl = "1w", cache = cache)]
async fn days_weeks(cache: &Cache, id: u64) -> Option<u64> {
    Some(id)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let cache = Cache::memory();
    assert_eq!(secs(&cache, 1).await, 1);
    assert_eq!(hours_minutes(&cache, 2).await, 2);
    assert_eq!(millis(&cache, 3).await, Some(3));
    assert_eq!(millis(&cache, 3).await, Some(3));
    assert_eq!(days_weeks(&cache, 4).await, Some(4));
    assert_eq!(cache.stats().hits, 1);
}
