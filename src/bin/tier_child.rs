//! Instance A of the two-process tier test (`tests/tiers_processes.rs`):
//! `tier_child <cache url> <namespace> <database url>`. Connects with the
//! in-process tier on, prints `ready` once it hears announcements, then
//! answers each command line on stdin with one line:
//!
//! * `read <user>` → `<value> <local hits>`: `profile(user)`, and the
//!   cache's local hits so far.
//! * `set <user> <filter>` → `<value> <local hits>`: `sets(user, filter)`.
//! * `write <user>` → `<value>`: bumps the user's row and invalidates
//!   `profile(user)`, its own write.
//! * `coherent` → `true` or `false`: `health().local.coherent`.
//!
//! The "database" is one plain Redis key per user outside the cache's
//! namespace (`db:<namespace>:row:<user>`), read over a connection of its
//! own to `<database url>`: both processes see one database, and the cache
//! may reach Redis through a proxy that the database bypasses. Exits at the
//! end of stdin (the parent went away).

use std::io::BufRead as _;
use std::time::Duration;

use cachemacro_runtime::{Cache, cached, invalidates};
use redis::aio::MultiplexedConnection;

/// The shared database.
struct Db {
    conn: MultiplexedConnection,
    namespace: String,
}

impl Db {
    fn key(&self, user: u64) -> String {
        format!("db:{}:row:{user}", self.namespace)
    }

    /// The row's value (0 when never written).
    async fn row(&self, user: u64) -> u64 {
        let value: Option<u64> = redis::cmd("GET")
            .arg(self.key(user))
            .query_async(&mut self.conn.clone())
            .await
            .expect("database GET");
        value.unwrap_or(0)
    }

    async fn bump(&self, user: u64) -> u64 {
        redis::cmd("INCR")
            .arg(self.key(user))
            .query_async(&mut self.conn.clone())
            .await
            .expect("database INCR")
    }
}

#[cached(key = "profile:<user>", ttl = "1h", tags = ["user:<user>"], cache = cache)]
async fn profile(cache: &Cache, db: &Db, user: u64) -> u64 {
    db.row(user).await
}

#[cached(key = "sets:user:<user>:<filter>", ttl = "1h", cache = cache)]
async fn sets(cache: &Cache, db: &Db, user: u64, filter: &str) -> u64 {
    db.row(user).await
}

#[invalidates("profile:<user>", cache = cache)]
async fn edit_profile(cache: &Cache, db: &Db, user: u64) -> u64 {
    db.bump(user).await
}

fn user(arg: Option<&str>) -> u64 {
    arg.and_then(|a| a.parse().ok()).expect("a user id")
}

/// Answers one command.
async fn answer(cache: &Cache, db: &Db, line: &str) -> String {
    let mut words = line.split_whitespace();
    match words.next() {
        Some("read") => {
            let value = profile(cache, db, user(words.next())).await;
            format!("{value} {}", cache.stats().local_hits)
        }
        Some("set") => {
            let user = user(words.next());
            let filter = words.next().expect("a filter");
            let value = sets(cache, db, user, filter).await;
            format!("{value} {}", cache.stats().local_hits)
        }
        Some("write") => edit_profile(cache, db, user(words.next()))
            .await
            .to_string(),
        Some("coherent") => cache.health().local.coherent.to_string(),
        _ => panic!("unknown command {line:?}"),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let (url, namespace, db_url) = (
        args.next().expect("cache url"),
        args.next().expect("namespace"),
        args.next().expect("database url"),
    );
    let cache = Cache::builder()
        .url(&url)
        .namespace(&namespace)
        .operation_timeout(Duration::from_millis(200))
        .connect_timeout(Duration::from_millis(500))
        .local_capacity(10_000)
        .connect()
        .await
        .expect("cache");
    let conn = redis::Client::open(db_url)
        .expect("database url")
        .get_multiplexed_async_connection()
        .await
        .expect("database connection");
    let db = Db { conn, namespace };
    for _ in 0..200 {
        if cache.health().local.coherent {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(cache.health().local.coherent, "never heard announcements");
    println!("ready");

    // Lines from a thread of its own, so the runtime keeps running the
    // cache's tasks (its subscription, heartbeat, probes) between commands.
    let (tx, mut lines) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    while let Some(line) = lines.recv().await {
        println!("{}", answer(&cache, &db, &line).await);
    }
}
