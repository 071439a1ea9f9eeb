//! `lock`, `jitter`, `cache_if` and `unless` together.

use cachemacro_runtime::{Cache, cached};

fn worth_keeping(rows: &Vec<u32>) -> bool {
    rows.len() > 1
}

#[cached(key = "rows:<n>", ttl = "5m", lock = true, jitter = "10%", cache_if = worth_keeping, unless = |rows| rows.contains(&13), cache = cache)]
async fn rows(cache: &Cache, n: u32) -> Result<Vec<u32>, std::io::Error> {
    Ok((0..n).collect())
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let cache = Cache::memory();
    rows(&cache, 1).await.unwrap();
    rows(&cache, 5).await.unwrap();
    rows(&cache, 20).await.unwrap();
    assert!(cache.get::<Vec<u32>>("rows:1").await.unwrap().is_none(), "cache_if said no");
    assert!(cache.get::<Vec<u32>>("rows:5").await.unwrap().is_some());
    assert!(cache.get::<Vec<u32>>("rows:20").await.unwrap().is_none(), "unless said no");
}
