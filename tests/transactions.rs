//! Writes inside database transactions: `#[invalidates]` on a function
//! that runs in a transaction clears the cache before the commit, so a
//! reader that arrives between the invalidation and the commit reads the
//! old row and stores it, stale for a whole TTL. `Pending` holds the
//! invalidations until the commit. Each race is forced step by step on a
//! real SQLite database (WAL: readers see the last commit while a write
//! transaction is open), against memory, Redis and a Redis Cluster.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use cachemacro_runtime::{Cache, Pending, after_commit, cached, invalidates};
use cachemacro_tests::{Backend, RedisServer, eventually, on_every_backend};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sqlx::{SqliteConnection, SqlitePool};
use tokio::sync::Notify;

/// Holds a load after it read its row, until the test lets it go.
#[derive(Default)]
struct Gate {
    read: Notify,
    go: Notify,
}

#[cached(key = "user-name:<id>", ttl = "1h", cache = cache)]
async fn user_name(
    cache: &Cache,
    conn: &mut SqliteConnection,
    id: i64,
    gate: Option<&Gate>,
) -> Result<String, String> {
    let name: String = sqlx::query_scalar("SELECT name FROM users WHERE id = ?")
        .bind(id)
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| e.to_string())?;
    if let Some(gate) = gate {
        gate.read.notify_one();
        gate.go.notified().await;
    }
    Ok(name)
}

#[invalidates("user-name:<id>", cache = cache)]
async fn rename(
    cache: &Cache,
    conn: &mut SqliteConnection,
    id: i64,
    name: &str,
) -> Result<(), String> {
    sqlx::query("UPDATE users SET name = ? WHERE id = ?")
        .bind(name)
        .bind(id)
        .execute(&mut *conn)
        .await
        .map(drop)
        .map_err(|e| e.to_string())
}

/// A database of its own in a file (WAL), holding user 1, `old`.
async fn database() -> SqlitePool {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let path = std::env::temp_dir().join(format!(
        "cachemacro-tx-{}-{}.db",
        std::process::id(),
        NEXT.fetch_add(1, Relaxed)
    ));
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    let options = SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .busy_timeout(Duration::from_secs(5));
    let pool = SqlitePoolOptions::new()
        .max_connections(4)
        .connect_with(options)
        .await
        .expect("open SQLite");
    sqlx::query("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
        .execute(&pool)
        .await
        .expect("create table");
    sqlx::query("INSERT INTO users (id, name) VALUES (1, 'old')")
        .execute(&pool)
        .await
        .expect("insert");
    pool
}

/// A read of user 1 on a connection of its own (another request).
async fn read(cache: &Cache, pool: &SqlitePool) -> String {
    let mut conn = pool.acquire().await.expect("a connection");
    user_name(cache, &mut conn, 1, None).await.expect("read")
}

/// A write transaction that renamed user 1 to `new` in the scope of a
/// fresh `Pending` (recorded, not yet committed).
async fn renamed_in_scope<'p>(
    cache: &Cache,
    pool: &'p SqlitePool,
) -> (Pending, sqlx::Transaction<'p, sqlx::Sqlite>) {
    let pending = Pending::new();
    let mut tx = pool.begin().await.unwrap();
    pending
        .scope(rename(cache, &mut tx, 1, "new"))
        .await
        .unwrap();
    (pending, tx)
}

/// The trap itself, so the tests below can fail: invalidating inside the
/// transaction lets a reader between the invalidation and the commit store
/// the old row, and after the commit the cache serves it.
async fn invalidating_before_the_commit_leaves_the_old_row(b: Backend) {
    let (cache, pool) = (b.cache.clone(), database().await);
    assert_eq!(read(&cache, &pool).await, "old");
    let mut tx = pool.begin().await.unwrap();
    rename(&cache, &mut tx, 1, "new").await.unwrap(); // invalidates now
    assert_eq!(
        read(&cache, &pool).await,
        "old",
        "the commit is not visible yet"
    );
    tx.commit().await.unwrap();
    assert_eq!(
        read(&cache, &pool).await,
        "old",
        "without Pending the old row stays cached after the commit"
    );
}

/// The same interleaving with `Pending`: the invalidation lands after the
/// commit, and the next read is the new row.
async fn pending_invalidates_after_the_commit(b: Backend) {
    let (cache, pool) = (b.cache.clone(), database().await);
    assert_eq!(read(&cache, &pool).await, "old");
    let (pending, tx) = renamed_in_scope(&cache, &pool).await;
    assert_eq!(pending.len(), 1);
    let before = cache.stats().invalidations;
    assert_eq!(
        read(&cache, &pool).await,
        "old",
        "the reader stores the old row"
    );
    assert_eq!(cache.stats().invalidations, before, "nothing landed yet");
    pending.commit(tx.commit()).await.unwrap();
    assert_eq!(cache.stats().invalidations, before + 1);
    assert_eq!(read(&cache, &pool).await, "new", "fresh after the commit");
}

/// A load that read the old row before the commit and stores after the
/// invalidation landed is not stored (its fill lease was voided).
async fn a_load_straddling_the_commit_is_not_stored(b: Backend) {
    let (cache, pool) = (b.cache.clone(), database().await);
    let gate = std::sync::Arc::new(Gate::default());
    let (pending, tx) = renamed_in_scope(&cache, &pool).await;
    let reader = {
        let (cache, pool, gate) = (cache.clone(), pool.clone(), gate.clone());
        tokio::spawn(async move {
            let mut conn = pool.acquire().await.unwrap();
            user_name(&cache, &mut conn, 1, Some(&gate)).await
        })
    };
    gate.read.notified().await; // it read `old`, and waits
    let dropped = cache.stats().fills_dropped;
    pending.commit(tx.commit()).await.unwrap();
    gate.go.notify_one();
    assert_eq!(
        reader.await.unwrap().unwrap(),
        "old",
        "it returns what it read"
    );
    assert_eq!(
        cache.stats().fills_dropped,
        dropped + 1,
        "but does not store it"
    );
    assert_eq!(read(&cache, &pool).await, "new");
}

/// Cached calls inside a scope read through the transaction: they run
/// their body and store nothing, so a rolled-back row is never served.
async fn cached_calls_in_a_scope_bypass_the_cache(b: Backend) {
    let (cache, pool) = (b.cache.clone(), database().await);
    assert_eq!(read(&cache, &pool).await, "old");
    let pending = Pending::new();
    let mut tx = pool.begin().await.unwrap();
    let bypassed = cache.stats().bypassed;
    let seen = pending
        .scope(async {
            rename(&cache, &mut tx, 1, "uncommitted").await?;
            user_name(&cache, &mut tx, 1, None).await
        })
        .await
        .unwrap();
    assert_eq!(seen, "uncommitted", "the transaction sees its own write");
    assert_eq!(cache.stats().bypassed, bypassed + 1);
    tx.rollback().await.unwrap();
    pending.run().await; // after a rollback too: one miss, nothing lost
    assert_eq!(
        read(&cache, &pool).await,
        "old",
        "never the rolled-back row"
    );
}

/// A `Pending` dropped with recorded invalidations (a handler that
/// returned early after the commit) lands them in a task of its own.
async fn a_dropped_pending_lands_its_invalidations(b: Backend) {
    let (cache, pool) = (b.cache.clone(), database().await);
    assert_eq!(read(&cache, &pool).await, "old");
    let (pending, tx) = renamed_in_scope(&cache, &pool).await;
    tx.commit().await.unwrap();
    let landed = cache.stats().invalidations;
    drop(pending);
    eventually("the dropped invalidation lands", async || {
        cache.stats().invalidations == landed + 1
    })
    .await;
    assert_eq!(cache.stats().invalidations_queued, 0, "landed, not queued");
    assert_eq!(read(&cache, &pool).await, "new");
}

/// A savepoint's `Pending` inside the transaction's: releasing the
/// savepoint makes nothing visible, so its targets wait for the outer
/// commit (landing them at the release would let a reader store the old
/// row before the commit).
async fn a_savepoint_waits_for_the_outer_commit(b: Backend) {
    use sqlx::Connection as _;
    let (cache, pool) = (b.cache.clone(), database().await);
    assert_eq!(read(&cache, &pool).await, "old");
    let outer = Pending::new();
    let mut tx = pool.begin().await.unwrap();
    outer
        .scope(async {
            let inner = Pending::new();
            let mut savepoint = tx.begin().await.unwrap();
            inner
                .scope(rename(&cache, &mut savepoint, 1, "new"))
                .await
                .unwrap();
            inner.commit(savepoint.commit()).await.unwrap();
        })
        .await;
    assert_eq!(outer.len(), 1, "handed to the enclosing Pending");
    assert_eq!(
        read(&cache, &pool).await,
        "old",
        "a reader stores the old row"
    );
    outer.commit(tx.commit()).await.unwrap();
    assert_eq!(
        read(&cache, &pool).await,
        "new",
        "fresh after the outer commit"
    );
}

/// `after_commit` covers the whole transaction: a cached call between the
/// write and the commit bypasses the cache, and the invalidation lands
/// after the commit.
async fn after_commit_covers_begin_to_commit(b: Backend) {
    let (cache, pool) = (b.cache.clone(), database().await);
    assert_eq!(read(&cache, &pool).await, "old");
    let seen = after_commit(async {
        let mut tx = pool.begin().await.map_err(|e| e.to_string())?;
        rename(&cache, &mut tx, 1, "new").await?;
        let seen = user_name(&cache, &mut tx, 1, None).await?;
        tx.commit().await.map_err(|e| e.to_string())?;
        Ok::<_, String>(seen)
    })
    .await
    .unwrap();
    assert_eq!(seen, "new", "the transaction read its own write, uncached");
    assert_eq!(read(&cache, &pool).await, "new");
}

/// `before = true` in a scope still deletes before the body, at once; the
/// second deletion waits for the commit.
#[invalidates("user-name:<id>", before = true, cache = cache)]
async fn rename_guarded(
    cache: &Cache,
    conn: &mut SqliteConnection,
    id: i64,
    name: &str,
) -> Result<(), String> {
    sqlx::query("UPDATE users SET name = ? WHERE id = ?")
        .bind(name)
        .bind(id)
        .execute(&mut *conn)
        .await
        .map(drop)
        .map_err(|e| e.to_string())
}

async fn before_deletes_at_once_and_after_the_commit(b: Backend) {
    let (cache, pool) = (b.cache.clone(), database().await);
    assert_eq!(read(&cache, &pool).await, "old");
    let landed = cache.stats().invalidations;
    let pending = Pending::new();
    let mut tx = pool.begin().await.unwrap();
    pending
        .scope(rename_guarded(&cache, &mut tx, 1, "new"))
        .await
        .unwrap();
    assert_eq!(cache.stats().invalidations, landed + 1, "before: at once");
    assert_eq!(read(&cache, &pool).await, "old");
    pending.commit(tx.commit()).await.unwrap();
    assert_eq!(
        cache.stats().invalidations,
        landed + 2,
        "after: at the commit"
    );
    assert_eq!(read(&cache, &pool).await, "new");
}

/// A `run` cancelled after its first poll queues what had not landed,
/// which then lands by replay.
async fn a_cancelled_run_queues_what_did_not_land(b: Backend) {
    let (cache, pool) = (b.cache.clone(), database().await);
    assert_eq!(read(&cache, &pool).await, "old");
    let (pending, tx) = renamed_in_scope(&cache, &pool).await;
    tx.commit().await.unwrap();
    let mut run = Box::pin(pending.run());
    // One poll starts the deletion; dropping the future cancels it. On
    // memory it may land within that poll.
    let finished = futures::poll!(&mut run).is_ready();
    drop(run);
    if !finished {
        assert_eq!(cache.stats().invalidations_queued, 1, "queued on cancel");
    }
    eventually("the invalidation lands", async || {
        read(&cache, &pool).await == "new"
    })
    .await;
}

/// Keys known only at run time are recorded by hand, and land with the rest.
async fn manual_records_land_after_the_commit(b: Backend) {
    let (cache, pool) = (b.cache.clone(), database().await);
    assert_eq!(read(&cache, &pool).await, "old");
    let pending = Pending::new();
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("UPDATE users SET name = 'new' WHERE id = 1")
        .execute(&mut *tx)
        .await
        .unwrap();
    pending.delete(&cache, "user-name:1");
    pending.delete_pattern(&cache, "user-name:*");
    pending.invalidate_tag(&cache, "users");
    assert_eq!(pending.len(), 3);
    assert_eq!(read(&cache, &pool).await, "old");
    let landed = cache.stats().invalidations;
    pending.commit(tx.commit()).await.unwrap();
    assert_eq!(
        cache.stats().invalidations,
        landed + 3,
        "the key, the prefix and the tag"
    );
    assert_eq!(read(&cache, &pool).await, "new");
}

on_every_backend!(
    invalidating_before_the_commit_leaves_the_old_row,
    pending_invalidates_after_the_commit,
    a_load_straddling_the_commit_is_not_stored,
    cached_calls_in_a_scope_bypass_the_cache,
    a_dropped_pending_lands_its_invalidations,
    a_savepoint_waits_for_the_outer_commit,
    after_commit_covers_begin_to_commit,
    before_deletes_at_once_and_after_the_commit,
    a_cancelled_run_queues_what_did_not_land,
    manual_records_land_after_the_commit,
);

/// Redis down when the transaction commits: the recorded invalidation
/// fails, is queued, and lands when Redis is back; no read in between
/// serves the old row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalidations_failing_after_the_commit_are_replayed() {
    let Some(mut server) = RedisServer::start_persistent() else {
        return;
    };
    let cache = server
        .builder()
        .operation_timeout(Duration::from_millis(200))
        .connect()
        .await
        .expect("connect");
    let pool = database().await;
    assert_eq!(read(&cache, &pool).await, "old");
    assert_eq!(read(&cache, &pool).await, "old");
    let (pending, tx) = renamed_in_scope(&cache, &pool).await;
    tx.commit().await.unwrap();
    server.stop();
    pending.run().await;
    let stats = cache.stats();
    assert_eq!(stats.invalidation_errors, 1);
    assert_eq!(stats.invalidations_queued, 1);
    assert_eq!(read(&cache, &pool).await, "new", "bypassed while queued");
    server.restart();
    eventually("the invalidation is replayed", async || {
        cache.stats().invalidations_replayed == 1
    })
    .await;
    assert_eq!(read(&cache, &pool).await, "new");
    assert_eq!(read(&cache, &pool).await, "new");
}
