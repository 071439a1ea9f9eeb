//! `<name:hash>` keys on a hash of a serializable value.
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};

use cachemacro_runtime::{Cache, cached, invalidates};

static LOADS: AtomicU32 = AtomicU32::new(0);

#[derive(serde::Serialize)]
struct Filter {
    tags: Vec<String>,
    page: u32,
    extra: BTreeMap<String, String>,
}

#[cached(key = "search:<user_id>:<filter:hash>", ttl = 60, cache = cache)]
async fn search(cache: &Cache, user_id: u64, filter: &Filter) -> Vec<String> {
    LOADS.fetch_add(1, Ordering::SeqCst);
    filter
        .tags
        .iter()
        .map(|t| format!("{user_id}:{t}"))
        .collect()
}

#[invalidates("search:<user_id>:*", cache = cache)]
async fn forget_searches(cache: &Cache, user_id: u64) {}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let cache = Cache::memory();
    let filter = |page| Filter {
        tags: vec!["a".into(), "b".into()],
        page,
        extra: BTreeMap::new(),
    };
    assert_eq!(search(&cache, 1, &filter(1)).await, ["1:a", "1:b"]);
    assert_eq!(search(&cache, 1, &filter(1)).await, ["1:a", "1:b"]);
    search(&cache, 1, &filter(2)).await;
    assert_eq!(LOADS.load(Ordering::SeqCst), 2);
    forget_searches(&cache, 1).await;
    search(&cache, 1, &filter(1)).await;
    assert_eq!(LOADS.load(Ordering::SeqCst), 3);
}
