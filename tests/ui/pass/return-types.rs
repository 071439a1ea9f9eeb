//! What is stored for each return shape.
use std::sync::atomic::{AtomicU32, Ordering};

use cachemacro_runtime::{Cache, cached};

static LOADS: AtomicU32 = AtomicU32::new(0);

fn load() {
    LOADS.fetch_add(1, Ordering::SeqCst);
}

fn loads() -> u32 {
    LOADS.swap(0, Ordering::SeqCst)
}

#[derive(Debug, PartialEq, thiserror::Error)]
#[error("not found")]
struct NotFound;

#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct User {
    id: u64,
    name: String,
}

/// `Result`: `Ok` is stored, `Err` is not.
#[cached(key = "result:<id>", ttl = 60, cache = cache)]
async fn result(cache: &Cache, id: u64) -> Result<User, NotFound> {
    load();
    if id == 0 {
        Err(NotFound)
    } else {
        Ok(User {
            id,
            name: format!("u{id}"),
        })
    }
}

/// `Option` without `none_ttl`: `None` is not stored.
#[cached(key = "option:<id>", ttl = 60, cache = cache)]
async fn option(cache: &Cache, id: u64) -> Option<String> {
    load();
    (id != 0).then(|| format!("o{id}"))
}

/// `Option` with `none_ttl`: `None` is stored too.
#[cached(key = "negative:<id>", ttl = 60, none_ttl = "10s", cache = cache)]
async fn negative(cache: &Cache, id: u64) -> Option<String> {
    load();
    (id != 0).then(|| format!("n{id}"))
}

/// A plain value.
#[cached(key = "plain:<id>", ttl = 60, cache = cache)]
async fn plain(cache: &Cache, id: u64) -> Vec<(u64, String)> {
    load();
    vec![(id, "x".into())]
}

/// Unit: caches "this ran", so the body runs once per key.
#[cached(key = "unit:<id>", ttl = 60, cache = cache)]
async fn unit(cache: &Cache, id: u64) {
    let _ = id;
    load();
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let cache = Cache::memory();

    assert_eq!(result(&cache, 1).await.unwrap().name, "u1");
    assert_eq!(result(&cache, 1).await.unwrap().name, "u1");
    assert_eq!(result(&cache, 0).await, Err(NotFound));
    assert_eq!(result(&cache, 0).await, Err(NotFound));
    assert_eq!(loads(), 3);

    assert_eq!(option(&cache, 1).await.as_deref(), Some("o1"));
    assert_eq!(option(&cache, 1).await.as_deref(), Some("o1"));
    assert_eq!(option(&cache, 0).await, None);
    assert_eq!(option(&cache, 0).await, None);
    assert_eq!(loads(), 3);

    assert_eq!(negative(&cache, 0).await, None);
    assert_eq!(negative(&cache, 0).await, None);
    assert_eq!(negative(&cache, 2).await.as_deref(), Some("n2"));
    assert_eq!(negative(&cache, 2).await.as_deref(), Some("n2"));
    assert_eq!(loads(), 2);

    assert_eq!(plain(&cache, 3).await, vec![(3, "x".to_string())]);
    assert_eq!(plain(&cache, 3).await, vec![(3, "x".to_string())]);
    assert_eq!(loads(), 1);

    unit(&cache, 4).await;
    unit(&cache, 4).await;
    assert_eq!(loads(), 1);
}
