//! Generics: `T` is in the key, `L` only in the body; a where-clause and a
//! lifetime are rebuilt as written.
use std::fmt::Display;
use std::sync::atomic::{AtomicU32, Ordering};

use cachemacro_runtime::{Cache, KeyPart, cached};

static LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(key = "label:<id>", ttl = 60, cache = cache)]
async fn label<'c, T: KeyPart + Display, L>(cache: &'c Cache, id: T, lookup: L) -> String
where
    L: Fn(&T) -> String + Send,
    T: Send + Sync,
{
    LOADS.fetch_add(1, Ordering::SeqCst);
    format!("{id}: {}", lookup(&id))
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let cache = Cache::memory();
    assert_eq!(label(&cache, 5u32, |n| format!("n{n}")).await, "5: n5");
    assert_eq!(label(&cache, 5u32, |_| unreachable!()).await, "5: n5");
    assert_eq!(
        label(&cache, "x".to_string(), |s| s.to_uppercase()).await,
        "x: X"
    );
    assert_eq!(LOADS.load(Ordering::SeqCst), 2);
}
