//! `crate = "…"` and `codec = …`.
use cachemacro_runtime::{Cache, cached, invalidates};

mod reexport {
    pub use cachemacro_runtime as rt;
}

#[cached(key = "a:<id>", ttl = 60, cache = cache, crate = "::cachemacro_runtime")]
async fn absolute(cache: &Cache, id: u64) -> u64 {
    id
}

#[cached(key = "b:<id>", ttl = 60, cache = cache, crate = "crate::reexport::rt")]
async fn reexported(cache: &Cache, id: u64) -> u64 {
    id
}

#[cached(key = "c:<id>", ttl = 60, cache = cache, codec = cachemacro_runtime::Bincode)]
async fn with_codec(cache: &Cache, id: u64) -> String {
    id.to_string()
}

#[invalidates("a:<id>", "b:<id>", cache = cache, crate = "crate::reexport::rt")]
async fn forget(cache: &Cache, id: u64) {}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let cache = Cache::memory();
    for _ in 0..2 {
        assert_eq!(absolute(&cache, 1).await, 1);
        assert_eq!(reexported(&cache, 2).await, 2);
        assert_eq!(with_codec(&cache, 3).await, "3");
    }
    assert_eq!(cache.stats().hits, 3);
    forget(&cache, 1).await;
    // Two exact keys deleted, one per pattern.
    assert_eq!(cache.stats().invalidations, 2);
}
