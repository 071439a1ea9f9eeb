//! Quickstart: cached reads and invalidating writes over a real SQLite database.
//!
//! `cargo run --example quickstart` needs no server: without `CACHE_URL` the default cache is
//! in memory. With `CACHE_URL=redis://127.0.0.1:6379` the same program runs on Redis, unchanged.
//! Cache warnings (Redis unreachable, a failed invalidation) are logged; `RUST_LOG` picks more.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use cachemacro_runtime::{cached, default_cache, invalidates};
use serde::{Deserialize, Serialize};
use sqlx::sqlite::{SqlitePool, SqlitePoolOptions};
use tracing_subscriber::EnvFilter;

const SCHEMA: &str = "
    CREATE TABLE collections (user_id INTEGER, image_id INTEGER, PRIMARY KEY (user_id, image_id));
    CREATE TABLE sets (id INTEGER PRIMARY KEY, user_id INTEGER, prompt TEXT, model TEXT);
    INSERT INTO collections VALUES (1, 10), (1, 11), (2, 20);
    INSERT INTO sets VALUES (1, 1, 'cat in space', 'sdxl'), (2, 1, 'cat on a sofa', 'flux'),
                            (3, 1, 'dog', 'sdxl'), (4, 2, 'cat', 'sdxl');";

/// Every SQL statement the functions below send, so we can see hits.
static QUERIES: AtomicU64 = AtomicU64::new(0);

#[derive(Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
struct Set {
    id: i64,
    user_id: i64,
    prompt: String,
    model: String,
}

impl std::fmt::Debug for Set {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{} {:?} ({})", self.id, self.prompt, self.model)
    }
}

#[cached(key = "user-collections:<user_id>", ttl = "1h")]
async fn user_collections(db: &SqlitePool, user_id: i64) -> sqlx::Result<Vec<i64>> {
    QUERIES.fetch_add(1, Relaxed);
    let sql = "SELECT image_id FROM collections WHERE user_id = ? ORDER BY image_id";
    sqlx::query_scalar(sql).bind(user_id).fetch_all(db).await
}

#[invalidates("user-collections:<user_id>")]
async fn add_image_to_collection(db: &SqlitePool, user_id: i64, image_id: i64) -> sqlx::Result<()> {
    QUERIES.fetch_add(1, Relaxed);
    let sql = "INSERT INTO collections (user_id, image_id) VALUES (?, ?)";
    let query = sqlx::query(sql).bind(user_id).bind(image_id);
    query.execute(db).await.map(drop)
}

/// A filtered list: every (prompt, model) combination is its own entry.
#[cached(key = "sets:user:<user_id>:<prompt>:<model>", ttl = "1h")]
async fn user_sets(
    db: &SqlitePool,
    user_id: i64,
    prompt: Option<&str>,
    model: Option<&str>,
) -> sqlx::Result<Vec<Set>> {
    QUERIES.fetch_add(1, Relaxed);
    let sql = "SELECT * FROM sets WHERE user_id = ?1
        AND (?2 IS NULL OR prompt LIKE '%' || ?2 || '%') AND (?3 IS NULL OR model = ?3) ORDER BY id";
    let query = sqlx::query_as(sql).bind(user_id).bind(prompt).bind(model);
    query.fetch_all(db).await
}

#[cached(key = "set:<id>", ttl = "1h")]
async fn set_by_id(db: &SqlitePool, id: i64) -> sqlx::Result<Option<Set>> {
    QUERIES.fetch_add(1, Relaxed);
    let sql = "SELECT * FROM sets WHERE id = ?";
    sqlx::query_as(sql).bind(id).fetch_optional(db).await
}

/// One delete clears every filter variant of the owner's lists, and the set itself.
#[invalidates("sets:user:<set.user_id>:*", "set:<set.id>")]
async fn delete_set(db: &SqlitePool, set: &Set) -> sqlx::Result<()> {
    QUERIES.fetch_add(1, Relaxed);
    let sql = "DELETE FROM sets WHERE id = ?";
    sqlx::query(sql).bind(set.id).execute(db).await.map(drop)
}

/// Runs one call, prints its value and checks how many SQL queries it cost.
async fn step<T: std::fmt::Debug>(
    what: &str,
    queries: u64,
    call: impl Future<Output = sqlx::Result<T>>,
) -> sqlx::Result<T> {
    let before = QUERIES.load(Relaxed);
    let value = call.await?;
    let ran = QUERIES.load(Relaxed) - before;
    println!("  {what:<40} SQL queries: {ran}  -> {value:?}");
    assert_eq!(ran, queries, "SQL queries run by {what}");
    Ok(value)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into());
    tracing_subscriber::fmt().with_env_filter(filter).init();

    // One connection: each in-memory SQLite connection is a database of its own.
    let db = SqlitePoolOptions::new().max_connections(1);
    let db = db.connect("sqlite::memory:").await?;
    sqlx::raw_sql(SCHEMA).execute(&db).await?;

    let cache = default_cache();
    println!("cache: {}", cache.describe());
    if cache.describe() != "memory" {
        // A shared Redis keeps the last run's entries for an hour: start clean.
        for pattern in ["user-collections:1", "sets:user:1:*", "set:1"] {
            cache.delete_pattern(pattern).await?;
        }
    }

    println!("\nuser 1's collections: a miss, a hit, a write, fresh data");
    step("user_collections(1)", 1, user_collections(&db, 1)).await?;
    step("user_collections(1)", 0, user_collections(&db, 1)).await?;
    // The write invalidates `user-collections:1`, so the next read is fresh.
    let add = add_image_to_collection(&db, 1, 12);
    step("add_image_to_collection(1, 12)", 1, add).await?;
    let ids = step("user_collections(1)", 1, user_collections(&db, 1)).await?;
    assert_eq!(ids, [10, 11, 12], "the new image is visible at once");

    println!("\nuser 1's sets under three filters: three entries, each loaded once");
    let (cat, sdxl) = (Some("cat"), Some("sdxl"));
    let filters = [(None, None), (cat, None), (cat, sdxl)];
    for queries in [1, 0] {
        for (prompt, model) in filters {
            let what = format!("user_sets(1, {prompt:?}, {model:?})");
            step(&what, queries, user_sets(&db, 1, prompt, model)).await?;
        }
    }

    println!("\ndelete_set(#1) clears `sets:user:1:*` (every filter) and `set:1`");
    let doomed = step("set_by_id(1)", 1, set_by_id(&db, 1)).await?;
    let doomed = doomed.expect("set #1 exists");
    step("delete_set(#1)", 1, delete_set(&db, &doomed)).await?;
    for (prompt, model) in filters {
        let what = format!("user_sets(1, {prompt:?}, {model:?})");
        let sets = step(&what, 1, user_sets(&db, 1, prompt, model)).await?;
        assert!(!sets.contains(&doomed), "set #1 is gone from every list");
    }
    let gone = step("set_by_id(1)", 1, set_by_id(&db, 1)).await?;
    assert_eq!(gone, None, "set:1 was cleared too");

    let stats = cache.stats();
    let ratio = 100.0 * stats.hit_ratio().unwrap_or(0.0);
    println!(
        "\nstats: hits {}, misses {}, loads {}, invalidations {}, hit ratio {ratio:.0}%",
        stats.hits, stats.misses, stats.loads, stats.invalidations
    );
    let f = stats.family("user-collections:<user_id>").expect("served");
    println!("  family user-collections:<user_id>: {f:?}");
    assert_eq!((f.hits, f.misses, f.loads, f.invalidations), (1, 2, 2, 1));
    assert_eq!((stats.hits, stats.misses), (4, 10));

    // Which write clears which read, and the check a one-line test runs.
    println!("\n{}", cachemacro_runtime::registry::invalidation_map());
    println!("{}", cachemacro_runtime::registry::verify()?);
    Ok(())
}
