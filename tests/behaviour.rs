//! What `#[cached]` and `#[invalidates]` do, run on the in-memory backend,
//! on a real redis-server of each test's own and on a Redis Cluster.

use std::time::Duration;

use cachemacro_runtime::{Cache, cached, encode_key_part, invalidates};
use cachemacro_tests::{Backend, on_every_backend};
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("database error")]
struct DbError;

const COLLECTIONS: &str = "user-collections:<user_id>";

#[cached(key = "user-collections:<user_id>", ttl = "1h", cache = cache)]
async fn user_collections(cache: &Cache, user_id: u64) -> Result<Vec<String>, DbError> {
    Ok(vec![format!("favourites of {user_id}")])
}

#[invalidates("user-collections:<user_id>", cache = cache)]
async fn add_image_to_collection(cache: &Cache, user_id: u64, fail: bool) -> Result<(), DbError> {
    if fail { Err(DbError) } else { Ok(()) }
}

fn loads(cache: &Cache, family: &str) -> u64 {
    cache.stats().family(family).map_or(0, |f| f.loads)
}

async fn hit_after_miss(b: Backend) {
    let c = &b.cache;
    assert_eq!(
        user_collections(c, 42).await,
        Ok(vec!["favourites of 42".to_string()])
    );
    assert_eq!(
        user_collections(c, 42).await,
        Ok(vec!["favourites of 42".to_string()])
    );
    let s = c.stats();
    assert_eq!((s.hits, s.misses, s.loads, s.stores), (1, 1, 1, 1), "{s:?}");
    let f = s.family(COLLECTIONS).expect("family is counted");
    assert_eq!((f.hits, f.misses, f.loads), (1, 1, 1));
    assert!(s.family("no-such:<family>").is_none());
}

/// With no namespace, the key is the template with the value put in.
async fn key_is_the_template_filled_in(b: Backend) {
    user_collections(&b.cache, 42).await.unwrap();
    let stored: Option<Vec<String>> = b.cache.get("user-collections:42").await.unwrap();
    assert_eq!(stored, Some(vec!["favourites of 42".to_string()]));
    if let Some(server) = &b.server {
        let mut raw = server.raw().await;
        let exists: bool = redis::cmd("EXISTS")
            .arg(server.stored_key("user-collections:42"))
            .query_async(&mut raw)
            .await
            .unwrap();
        assert!(exists, "the Redis key is exactly `user-collections:42`");
    }
}

async fn invalidation_runs_after_success_only(b: Backend) {
    let c = &b.cache;
    user_collections(c, 7).await.unwrap();
    user_collections(c, 8).await.unwrap();
    assert_eq!(add_image_to_collection(c, 7, true).await, Err(DbError));
    user_collections(c, 7).await.unwrap();
    assert_eq!(
        loads(c, COLLECTIONS),
        2,
        "a failed write invalidates nothing"
    );

    add_image_to_collection(c, 7, false).await.unwrap();
    user_collections(c, 7).await.unwrap();
    user_collections(c, 8).await.unwrap();
    assert_eq!(
        loads(c, COLLECTIONS),
        3,
        "user 7 reloads, user 8 is untouched"
    );
    assert_eq!(c.stats().invalidations, 1);
}

#[cached(key = "lookup:<id>", ttl = 60, cache = cache)]
async fn lookup(cache: &Cache, id: u32, fail: bool) -> Result<String, DbError> {
    if fail {
        Err(DbError)
    } else {
        Ok(format!("row {id}"))
    }
}

async fn errors_are_not_cached(b: Backend) {
    let c = &b.cache;
    assert_eq!(lookup(c, 1, true).await, Err(DbError));
    assert_eq!(c.get::<String>("lookup:1").await.unwrap(), None);
    assert_eq!(lookup(c, 1, false).await, Ok("row 1".into()));
    assert_eq!(
        lookup(c, 1, true).await,
        Ok("row 1".into()),
        "now served from the cache"
    );
    assert_eq!(loads(c, "lookup:<id>"), 2);
}

#[cached(key = "maybe:<id>", ttl = 60, cache = cache)]
async fn maybe(cache: &Cache, id: u32) -> Option<String> {
    id.is_multiple_of(2).then(|| format!("even {id}"))
}

#[cached(key = "maybe-neg:<id>", ttl = 60, none_ttl = "30s", cache = cache)]
async fn maybe_negative(cache: &Cache, id: u32) -> Option<String> {
    id.is_multiple_of(2).then(|| format!("even {id}"))
}

async fn option_rules(b: Backend) {
    let c = &b.cache;
    assert_eq!(maybe(c, 2).await, Some("even 2".into()));
    assert_eq!(maybe(c, 2).await, Some("even 2".into()));
    assert_eq!(maybe(c, 3).await, None);
    assert_eq!(maybe(c, 3).await, None);
    assert_eq!(
        loads(c, "maybe:<id>"),
        3,
        "Some is cached, None is not without none_ttl"
    );

    assert_eq!(maybe_negative(c, 3).await, None);
    assert_eq!(maybe_negative(c, 3).await, None);
    assert_eq!(
        loads(c, "maybe-neg:<id>"),
        1,
        "None is cached with none_ttl"
    );
    assert_eq!(
        c.get::<Option<String>>("maybe-neg:3").await.unwrap(),
        Some(None)
    );
    if let Some(server) = &b.server {
        let mut raw = server.raw().await;
        let ms: i64 = redis::cmd("PTTL")
            .arg(server.stored_key("maybe-neg:3"))
            .query_async(&mut raw)
            .await
            .unwrap();
        assert!(
            ms > 0 && ms <= 30_000,
            "None lives for none_ttl, got {ms} ms"
        );
        let ms: i64 = redis::cmd("PTTL")
            .arg(server.stored_key("maybe:2"))
            .query_async(&mut raw)
            .await
            .unwrap();
        assert!(
            ms > 30_000 && ms <= 60_000,
            "Some lives for ttl, got {ms} ms"
        );
    }
}

#[cached(key = "plain:<n>", ttl = "1s", cache = cache)]
async fn square(cache: &Cache, n: u64) -> u64 {
    n * n
}

async fn entries_expire_after_ttl(b: Backend) {
    let c = &b.cache;
    assert_eq!(square(c, 12).await, 144);
    assert_eq!(c.get::<u64>("plain:12").await.unwrap(), Some(144), "stored");
    // Waiting out the server's clock, not timing anything.
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(c.get::<u64>("plain:12").await.unwrap(), None, "expired");
    assert_eq!(square(c, 12).await, 144);
    assert_eq!(loads(c, "plain:<n>"), 2);
}

#[cached(key = "sets:user:<user_id>:<prompt>:<model>", ttl = "1h", cache = cache)]
async fn user_sets(
    cache: &Cache,
    user_id: u64,
    prompt: Option<&str>,
    model: Option<&str>,
) -> Vec<String> {
    vec![format!("{user_id}/{prompt:?}/{model:?}")]
}

#[derive(Serialize, Deserialize)]
struct Set {
    id: u64,
    user_id: u64,
}

#[invalidates("sets:user:<set.user_id>:*", "set:<set.id>", cache = cache)]
async fn delete_set(cache: &Cache, set: &Set) -> Result<(), DbError> {
    let _ = set;
    Ok(())
}

fn hostile() -> Vec<String> {
    [
        "a:b",
        "*",
        "?",
        "[x]",
        "a\\b",
        "line\nbreak",
        "",
        "~",
        "%3A",
        "{tag}",
        "sp ace",
        "ünï",
    ]
    .into_iter()
    .map(String::from)
    .chain([":".repeat(3), "x".repeat(10 * 1024)])
    .collect()
}

/// Seed 000's `sets:user:${id}:undefined:undefined`: one delete must clear
/// every filter variant, whatever the filters contain, and nothing else.
async fn pattern_clears_every_variant_and_nothing_else(b: Backend) {
    let c = &b.cache;
    let values = hostile();
    for user in [1, 11] {
        user_sets(c, user, None, None).await;
        for v in &values {
            user_sets(c, user, Some(v), None).await;
            user_sets(c, user, None, Some(v)).await;
        }
    }
    let per_user = 1 + 2 * values.len() as u64;
    assert_eq!(
        loads(c, "sets:user:<user_id>:<prompt>:<model>"),
        2 * per_user,
        "every variant is its own entry"
    );

    delete_set(c, &Set { id: 5, user_id: 1 }).await.unwrap();
    for v in &values {
        user_sets(c, 1, Some(v), None).await;
        user_sets(c, 11, Some(v), None).await;
    }
    user_sets(c, 1, None, None).await;
    let reloaded = loads(c, "sets:user:<user_id>:<prompt>:<model>") - 2 * per_user;
    assert_eq!(
        reloaded,
        values.len() as u64 + 1,
        "all of user 1's variants reload, none of user 11's"
    );
}

/// Distinct hostile values never share an entry (no value forges another's key).
async fn hostile_values_never_collide(b: Backend) {
    let c = &b.cache;
    let values = hostile();
    for v in &values {
        assert_eq!(
            user_sets(c, 3, Some(v), Some(v)).await,
            vec![format!("3/{:?}/{:?}", Some(v), Some(v))]
        );
    }
    for v in &values {
        assert_eq!(
            user_sets(c, 3, Some(v), Some(v)).await,
            vec![format!("3/{:?}/{:?}", Some(v), Some(v))]
        );
    }
    assert_eq!(
        loads(c, "sets:user:<user_id>:<prompt>:<model>"),
        values.len() as u64
    );
    assert_eq!(encode_key_part(&Some("~")), "%7E");
}

mod v1 {
    #[derive(serde::Serialize, serde::Deserialize)]
    pub struct Profile {
        pub name: String,
    }
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Profile {
    name: String,
    followers: u32,
}

#[cached(key = "profile:<id>", ttl = "1h", cache = cache)]
async fn profile(cache: &Cache, id: u32) -> Profile {
    Profile {
        name: format!("user {id}"),
        followers: id,
    }
}

/// After a deploy that changed the struct, old entries are misses, then overwritten.
async fn changed_type_reads_as_a_miss(b: Backend) {
    let c = &b.cache;
    c.set(
        "profile:9",
        &v1::Profile { name: "old".into() },
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    assert_eq!(
        profile(c, 9).await,
        Profile {
            name: "user 9".into(),
            followers: 9
        }
    );
    assert_eq!(profile(c, 9).await.name, "user 9");
    let s = c.stats();
    assert_eq!(
        (s.decode_errors, s.loads, s.hits),
        (1, 1, 1),
        "one miss on the old shape, then a hit"
    );
}

#[derive(Clone)]
struct Repo {
    cache: Cache,
    tenant: String,
}

impl Repo {
    #[cached(key = "tenant:<self.tenant>:item:<id>", ttl = "10m", cache = self.cache)]
    async fn item(&self, id: u32) -> Result<String, DbError> {
        Ok(format!("{}#{id}", self.tenant))
    }

    #[invalidates("tenant:<self.tenant>:*", cache = self.cache)]
    async fn reset(&self) {}
}

#[cached(key = "generic:<id>", ttl = 60, cache = cache)]
async fn generic_label<I: cachemacro_runtime::KeyPart + std::fmt::Display>(
    cache: &Cache,
    id: I,
) -> String {
    format!("label {id}")
}

#[cached(key = "by-name:<name>", ttl = 60, cache = cache)]
async fn by_name(cache: &Cache, name: &str, _log: impl std::fmt::Debug) -> String {
    name.to_uppercase()
}

async fn methods_generics_and_references(b: Backend) {
    let repo = Repo {
        cache: b.cache.clone(),
        tenant: "acme:eu".into(),
    };
    assert_eq!(repo.item(1).await, Ok("acme:eu#1".into()));
    assert_eq!(repo.item(1).await, Ok("acme:eu#1".into()));
    assert_eq!(
        b.cache
            .get::<String>("tenant:acme%3Aeu:item:1")
            .await
            .unwrap(),
        Some("acme:eu#1".into())
    );
    repo.reset().await;
    assert_eq!(
        b.cache
            .get::<String>("tenant:acme%3Aeu:item:1")
            .await
            .unwrap(),
        None
    );

    assert_eq!(generic_label(&b.cache, 5u8).await, "label 5");
    assert_eq!(generic_label(&b.cache, "five").await, "label five");
    assert_eq!(by_name(&b.cache, "ann", ()).await, "ANN");
    assert_eq!(by_name(&b.cache, "ann", 42).await, "ANN");
    assert_eq!(loads(&b.cache, "by-name:<name>"), 1);
}

/// The generated futures are `Send`: they run on `tokio::spawn`.
async fn futures_are_send(b: Backend) {
    let repo = Repo {
        cache: b.cache.clone(),
        tenant: "t".into(),
    };
    let cache = b.cache.clone();
    let tasks: Vec<_> = (0..8u64)
        .map(|i| {
            let (repo, cache) = (repo.clone(), cache.clone());
            tokio::spawn(async move {
                user_collections(&cache, i % 2).await.unwrap();
                repo.item(i as u32 % 2).await.unwrap()
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(
        b.cache.get::<String>("tenant:t:item:1").await.unwrap(),
        Some("t#1".into())
    );
}

#[derive(Serialize)]
struct Filters {
    query: String,
    tags: Vec<String>,
}

#[cached(key = "search:<filters:hash>", ttl = 60, cache = cache)]
async fn search(cache: &Cache, filters: &Filters) -> usize {
    filters.query.len() + filters.tags.len()
}

async fn hashed_placeholders(b: Backend) {
    let f = Filters {
        query: "x".repeat(5000),
        tags: vec!["a".into()],
    };
    assert_eq!(search(&b.cache, &f).await, 5001);
    assert_eq!(search(&b.cache, &f).await, 5001);
    let g = Filters {
        query: "y".into(),
        tags: vec![],
    };
    assert_eq!(search(&b.cache, &g).await, 1);
    assert_eq!(loads(&b.cache, "search:<filters:hash>"), 2);
    let key = format!("search:{}", cachemacro_runtime::hash_key_part(&f).unwrap());
    assert_eq!(key.len(), "search:".len() + 16);
    assert_eq!(b.cache.get::<usize>(&key).await.unwrap(), Some(5001));
}

on_every_backend!(
    hit_after_miss,
    key_is_the_template_filled_in,
    invalidation_runs_after_success_only,
    errors_are_not_cached,
    option_rules,
    entries_expire_after_ttl,
    pattern_clears_every_variant_and_nothing_else,
    hostile_values_never_collide,
    changed_type_reads_as_a_miss,
    methods_generics_and_references,
    futures_are_send,
    hashed_placeholders,
);

/// The memory backend follows tokio's clock, so expiry is exact under paused time.
#[tokio::test(start_paused = true)]
async fn memory_ttl_is_exact_under_paused_time() {
    let c = Cache::memory();
    user_collections(&c, 1).await.unwrap();
    tokio::time::advance(Duration::from_secs(3599)).await;
    assert!(
        c.get::<Vec<String>>("user-collections:1")
            .await
            .unwrap()
            .is_some()
    );
    tokio::time::advance(Duration::from_secs(2)).await;
    assert!(
        c.get::<Vec<String>>("user-collections:1")
            .await
            .unwrap()
            .is_none()
    );
}
