//! Placeholder values of many parameter types.
use std::sync::atomic::{AtomicU32, Ordering};

use cachemacro_runtime::{Cache, cached};

static LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(
    key = "p:<name>:<by_ref>:<owned>:<maybe>:<id>:<flag>:<letter>",
    ttl = 60,
    cache = cache
)]
#[allow(clippy::too_many_arguments)]
async fn describe(
    cache: &Cache,
    name: &str,
    by_ref: &u64,
    owned: String,
    maybe: Option<u32>,
    id: uuid::Uuid,
    flag: bool,
    letter: char,
) -> String {
    LOADS.fetch_add(1, Ordering::SeqCst);
    format!("{name} {by_ref} {owned} {maybe:?} {id} {flag} {letter}")
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let cache = Cache::memory();
    let id = uuid::Uuid::nil();
    let run = |maybe| describe(&cache, "a b", &7, "s".into(), maybe, id, true, 'z');
    run(Some(3)).await;
    run(Some(3)).await;
    run(None).await;
    assert_eq!(LOADS.load(Ordering::SeqCst), 2);
    let key = "p:a%20b:7:s:3:00000000-0000-0000-0000-000000000000:true:z";
    assert!(cache.get::<String>(key).await.unwrap().is_some());
    let none_key = "p:a%20b:7:s:~:00000000-0000-0000-0000-000000000000:true:z";
    assert!(cache.get::<String>(none_key).await.unwrap().is_some());
}
