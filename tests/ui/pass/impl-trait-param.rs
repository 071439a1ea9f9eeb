//! An `impl Trait` parameter that the key does not use.
use std::sync::atomic::{AtomicU32, Ordering};

use cachemacro_runtime::{Cache, cached};

static LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(key = "greeting:<user_id>", ttl = 60, cache = cache)]
async fn greeting(cache: &Cache, user_id: u64, render: impl Fn(u64) -> String + Send) -> String {
    LOADS.fetch_add(1, Ordering::SeqCst);
    render(user_id)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let cache = Cache::memory();
    assert_eq!(greeting(&cache, 1, |id| format!("hi {id}")).await, "hi 1");
    assert_eq!(greeting(&cache, 1, |_| unreachable!()).await, "hi 1");
    assert_eq!(LOADS.load(Ordering::SeqCst), 1);
}
