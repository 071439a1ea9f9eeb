//! A method with `&self`: `<self.field>` in the key, `cache = self.cache`.
use std::sync::atomic::{AtomicU32, Ordering};

use cachemacro_runtime::{Cache, cached, invalidates};

struct Repo {
    cache: Cache,
    tenant: String,
    loads: AtomicU32,
}

impl Repo {
    #[cached(key = "repo:<self.tenant>:user:<user_id>", ttl = 60, cache = self.cache)]
    async fn user_name(&self, user_id: u64) -> String {
        self.loads.fetch_add(1, Ordering::SeqCst);
        format!("{} user {user_id}", self.tenant)
    }

    #[invalidates("repo:<self.tenant>:user:<user_id>", cache = self.cache)]
    async fn rename(&self, user_id: u64) {
        let _ = user_id;
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let repo = Repo {
        cache: Cache::memory(),
        tenant: "acme:eu".into(),
        loads: AtomicU32::new(0),
    };
    assert_eq!(repo.user_name(7).await, "acme:eu user 7");
    assert_eq!(repo.user_name(7).await, "acme:eu user 7");
    assert_eq!(repo.loads.load(Ordering::SeqCst), 1);
    // `:` inside a value is escaped, so it cannot forge another key.
    let stored: Option<String> = repo.cache.get("repo:acme%3Aeu:user:7").await.unwrap();
    assert_eq!(stored.as_deref(), Some("acme:eu user 7"));

    repo.rename(7).await;
    assert_eq!(repo.user_name(7).await, "acme:eu user 7");
    assert_eq!(repo.loads.load(Ordering::SeqCst), 2);
}
