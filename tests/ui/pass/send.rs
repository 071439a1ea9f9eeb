//! The wrapped futures stay `Send`: they can be spawned.
use std::sync::Arc;

use cachemacro_runtime::{Cache, cached, invalidates};

fn assert_send<T: Send>(_: &T) {}

#[derive(Debug, thiserror::Error)]
#[error("db")]
struct DbError;

#[cached(key = "user:<user_id>", ttl = 60, cache = cache)]
async fn user(cache: Arc<Cache>, user_id: u64) -> Result<String, DbError> {
    tokio::task::yield_now().await;
    Ok(format!("user {user_id}"))
}

#[invalidates("user:<user_id>", cache = cache)]
async fn rename(cache: Arc<Cache>, user_id: u64) -> Result<(), DbError> {
    tokio::task::yield_now().await;
    Ok(())
}

#[tokio::main]
async fn main() {
    let cache = Arc::new(Cache::memory());
    let future = user(cache.clone(), 1);
    assert_send(&future);
    assert_send(&rename(cache.clone(), 1));
    assert_eq!(future.await.unwrap(), "user 1");
    let spawned = tokio::spawn(user(cache.clone(), 1));
    assert_eq!(spawned.await.unwrap().unwrap(), "user 1");
    tokio::spawn(rename(cache.clone(), 1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(cache.stats().hits, 1);
}
