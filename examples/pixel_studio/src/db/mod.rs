//! The database: opening it, migrating it, and the two kinds of transaction.
//!
//! * A file (`PIXEL_STUDIO_DB=pixel_studio.db`): WAL mode, so readers never
//!   block the writer and each read transaction sees one committed state;
//!   a busy timeout, so two OS processes can share the file.
//! * `:memory:`: one connection, kept open for the pool's life (an in-memory
//!   SQLite database belongs to its connection; a second connection would
//!   be a second, empty database). Everything is serialized through it,
//!   which is trivially consistent. No code path holds one connection
//!   while asking for another, so one is enough.

pub mod models;
pub mod queries;
mod schema;

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Sqlite, SqliteConnection, Transaction};

/// What `PIXEL_STUDIO_DB` names for an in-memory database.
pub const MEMORY: &str = ":memory:";

/// How long a statement waits for another process's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens (creating it if needed) and migrates the database at `path`, or an
/// in-memory one for [`MEMORY`].
pub async fn open(path: &str) -> sqlx::Result<SqlitePool> {
    let memory = path == MEMORY || path.starts_with("sqlite::memory:");
    let options = if memory {
        SqliteConnectOptions::from_str("sqlite::memory:")?
    } else {
        SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
    };
    let options = options.foreign_keys(true).busy_timeout(BUSY_TIMEOUT);
    let pool = if memory {
        SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
    } else {
        SqlitePoolOptions::new().max_connections(8)
    };
    let pool = pool.connect_with(options).await?;
    migrate(&pool).await?;
    Ok(pool)
}

/// Applies the migrations this database has not run yet, each in its own
/// write transaction (so two processes starting at once apply each once).
async fn migrate(pool: &SqlitePool) -> sqlx::Result<()> {
    for (version, sql) in schema::MIGRATIONS {
        let mut tx = begin_write(pool).await?;
        sqlx::raw_sql("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            .execute(&mut *tx)
            .await?;
        let done: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM schema_version")
            .fetch_one(&mut *tx)
            .await?;
        if done.unwrap_or(0) < *version {
            sqlx::raw_sql(sql).execute(&mut *tx).await?;
            sqlx::query("INSERT INTO schema_version (version) VALUES (?)")
                .bind(version)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
    }
    Ok(())
}

/// A read transaction: every query in it sees the same committed state.
pub async fn begin_read(pool: &SqlitePool) -> sqlx::Result<Transaction<'static, Sqlite>> {
    pool.begin().await
}

/// A write transaction, `BEGIN IMMEDIATE`: it takes the write lock first
/// (waiting up to the busy timeout), so a write that reads before it writes
/// never fails on finding its snapshot overtaken by another process's write.
pub async fn begin_write(pool: &SqlitePool) -> sqlx::Result<Transaction<'static, Sqlite>> {
    pool.begin_with("BEGIN IMMEDIATE").await
}

/// The connection type every query takes.
pub type Conn = SqliteConnection;

/// Milliseconds since the Unix epoch, for `created_at` columns.
pub fn now_ms() -> i64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    since.map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
