use cachemacro_runtime::{Cache, cached, invalidates};
use std::sync::atomic::{AtomicU32, Ordering};

static LOADS: AtomicU32 = AtomicU32::new(0);

#[derive(Debug, thiserror::Error)]
#[error("db")]
struct DbError;

#[cached(key = "user-collections:<user_id>", ttl = "1h", cache = cache)]
async fn user_collections(cache: &Cache, user_id: u64) -> Result<Vec<String>, DbError> {
    LOADS.fetch_add(1, Ordering::SeqCst);
    Ok(vec![format!("c{user_id}")])
}

#[invalidates("user-collections:<user_id>", cache = cache)]
async fn add(cache: &Cache, user_id: u64) -> Result<(), DbError> {
    let _ = user_id;
    Ok(())
}

#[tokio::test]
async fn smoke() {
    let cache = Cache::memory();
    assert_eq!(user_collections(&cache, 1).await.unwrap(), vec!["c1"]);
    assert_eq!(user_collections(&cache, 1).await.unwrap(), vec!["c1"]);
    assert_eq!(LOADS.load(Ordering::SeqCst), 1);
    add(&cache, 1).await.unwrap();
    user_collections(&cache, 1).await.unwrap();
    assert_eq!(LOADS.load(Ordering::SeqCst), 2);
    let s = cache.stats();
    assert_eq!((s.hits, s.misses, s.invalidations), (1, 2, 1));
    let f = s.family("user-collections:<user_id>").unwrap();
    assert_eq!(f.invalidations, 1);
}
