//! `#[cached]` and `#[invalidates]` on methods of a trait impl.
use std::sync::atomic::{AtomicU32, Ordering};

use cachemacro_runtime::{Cache, cached, invalidates};

trait Users {
    async fn name(&self, id: u64) -> String;
    async fn rename(&self, id: u64);
}

struct Db {
    cache: Cache,
    loads: AtomicU32,
}

impl Users for Db {
    #[cached(key = "user:<id>", ttl = 60, cache = self.cache)]
    async fn name(&self, id: u64) -> String {
        self.loads.fetch_add(1, Ordering::SeqCst);
        format!("user {id}")
    }

    #[invalidates("user:<id>", cache = self.cache)]
    async fn rename(&self, id: u64) {}
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let db = Db {
        cache: Cache::memory(),
        loads: AtomicU32::new(0),
    };
    assert_eq!(db.name(1).await, "user 1");
    assert_eq!(db.name(1).await, "user 1");
    db.rename(1).await;
    assert_eq!(db.name(1).await, "user 1");
    assert_eq!(db.loads.load(Ordering::SeqCst), 2);
}
