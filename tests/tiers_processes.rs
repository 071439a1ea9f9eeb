//! Two tiers across two OS processes: instance A is a child process
//! (`src/bin/tier_child.rs`) with the in-process tier on, instance B this
//! test's own `Cache`. They share a namespace, and a "database" of plain
//! Redis keys outside it (`db:<namespace>:row:<user>`), which the cached
//! functions read and the invalidating ones bump. tests/tiers.rs runs the
//! same checks with two handles in one process.

use std::process::Stdio;
use std::time::Duration;

use cachemacro_runtime::{Cache, invalidates};
use cachemacro_tests::{Proxy, RedisServer, eventually};
use redis::aio::MultiplexedConnection;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// How long one command to the child may take (a read through a cut
/// connection waits out the cache's 200 ms operation timeout first).
const ANSWER_WITHIN: Duration = Duration::from_secs(10);

/// The shared database, as B sees it.
#[derive(Clone)]
struct Db {
    conn: MultiplexedConnection,
    namespace: String,
}

impl Db {
    async fn open(server: &RedisServer, namespace: &str) -> Db {
        Db {
            conn: server.raw().await,
            namespace: namespace.to_owned(),
        }
    }

    /// As the child names it.
    fn key(&self, user: u64) -> String {
        format!("db:{}:row:{user}", self.namespace)
    }

    async fn row(&self, user: u64) -> u64 {
        let value: Option<u64> = redis::cmd("GET")
            .arg(self.key(user))
            .query_async(&mut self.conn.clone())
            .await
            .expect("database GET");
        value.unwrap_or(0)
    }

    async fn bump(&self, user: u64) {
        let _: u64 = redis::cmd("INCR")
            .arg(self.key(user))
            .query_async(&mut self.conn.clone())
            .await
            .expect("database INCR");
    }
}

// B's writes, with the key templates A's cached functions use.

#[invalidates("profile:<user>", cache = cache)]
async fn edit_profile(cache: &Cache, db: &Db, user: u64) {
    db.bump(user).await;
}

#[invalidates("sets:user:<user>:*", cache = cache)]
async fn delete_set(cache: &Cache, db: &Db, user: u64) {
    db.bump(user).await;
}

#[invalidates(tag = "user:<user>", cache = cache)]
async fn rename(cache: &Cache, db: &Db, user: u64) {
    db.bump(user).await;
}

/// Instance A, a child process; killed on drop.
struct InstanceA {
    child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
}

impl InstanceA {
    /// Starts A on `cache_url` (perhaps a proxy) and `db_url`, and waits
    /// until it hears announcements.
    async fn start(cache_url: &str, namespace: &str, db_url: &str) -> InstanceA {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tier_child"))
            .args([cache_url, namespace, db_url])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn instance A");
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        let mut a = InstanceA {
            child,
            stdin,
            stdout,
        };
        assert_eq!(a.line("its start").await, "ready");
        a
    }

    async fn line(&mut self, what: &str) -> String {
        match tokio::time::timeout(ANSWER_WITHIN, self.stdout.next_line()).await {
            Ok(Ok(Some(line))) => line,
            Ok(Ok(None)) => panic!(
                "instance A exited before answering {what}: {:?}",
                self.child.try_wait()
            ),
            Ok(Err(e)) => panic!("reading instance A's answer to {what}: {e}"),
            Err(_) => panic!("instance A did not answer {what} within {ANSWER_WITHIN:?}"),
        }
    }

    async fn ask(&mut self, command: &str) -> String {
        self.stdin
            .write_all(format!("{command}\n").as_bytes())
            .await
            .expect("write to instance A");
        self.line(command).await
    }

    /// `(value, local hits so far)`.
    async fn pair(&mut self, command: &str) -> (u64, u64) {
        let answer = self.ask(command).await;
        let parsed = answer
            .split_once(' ')
            .and_then(|(v, h)| Some((v.parse().ok()?, h.parse().ok()?)));
        parsed.unwrap_or_else(|| panic!("{command}: unexpected answer {answer:?}"))
    }

    /// `profile(user)`, and A's local hits so far.
    async fn read(&mut self, user: u64) -> (u64, u64) {
        self.pair(&format!("read {user}")).await
    }

    /// `sets(user, filter)`, and A's local hits so far.
    async fn set(&mut self, user: u64, filter: &str) -> (u64, u64) {
        self.pair(&format!("set {user} {filter}")).await
    }

    /// A's own write: bumps the row and invalidates `profile(user)`.
    async fn write(&mut self, user: u64) -> u64 {
        let answer = self.ask(&format!("write {user}")).await;
        answer
            .parse()
            .unwrap_or_else(|_| panic!("write: unexpected answer {answer:?}"))
    }

    async fn coherent(&mut self) -> bool {
        match self.ask("coherent").await.as_str() {
            "true" => true,
            "false" => false,
            other => panic!("coherent: unexpected answer {other:?}"),
        }
    }
}

/// Instance B, with the local tier on as A.
async fn instance_b(url: &str, namespace: &str) -> Cache {
    let cache = Cache::builder()
        .url(url)
        .namespace(namespace)
        .operation_timeout(Duration::from_millis(200))
        .local_capacity(10_000)
        .connect()
        .await
        .expect("connect");
    eventually("B hears announcements", async || {
        cache.health().local.coherent
    })
    .await;
    cache
}

/// A namespace of this test's own (and, on a shared `REDIS_URL`, under the
/// harness's).
fn namespace(server: &RedisServer, name: &str) -> String {
    format!("{}{name}", server.stored_key(""))
}

/// The check across processes: A caches; B invalidates a key, a
/// prefix and a tag; A's next reads are fresh within a bounded wait; A's
/// own invalidation is visible to A at once.
#[tokio::test]
async fn an_invalidation_in_one_process_reaches_the_other() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let ns = namespace(&server, "procs");
    let db = Db::open(&server, &ns).await;
    let b = instance_b(&server.url(), &ns).await;
    let mut a = InstanceA::start(&server.url(), &ns, &server.url()).await;
    let (key_user, prefix_user, tag_user) = (1, 2, 3);

    let mut local_hits = 0;
    for _ in 0..3 {
        a.read(key_user).await;
        a.set(prefix_user, "cats").await;
        local_hits = a.read(tag_user).await.1;
    }
    // A miss fills Redis, the next read keeps the entry in process.
    assert_eq!(local_hits, 3, "A's third round is served in process");

    edit_profile(&b, &db, key_user).await;
    delete_set(&b, &db, prefix_user).await;
    rename(&b, &db, tag_user).await;
    let want = (
        db.row(key_user).await,
        db.row(prefix_user).await,
        db.row(tag_user).await,
    );
    assert_eq!(want, (1, 1, 1), "B wrote each row once");
    eventually("A reads what B wrote", async || {
        (
            a.read(key_user).await.0,
            a.set(prefix_user, "cats").await.0,
            a.read(tag_user).await.0,
        ) == want
    })
    .await;

    // Read-your-writes: A holds the entry in process, invalidates it
    // itself, and its very next read has the new value.
    for round in 0..20 {
        let before = a.read(key_user).await.1;
        let (_, after) = a.read(key_user).await;
        assert_eq!(after, before + 1, "round {round}: A holds the entry");
        let written = a.write(key_user).await;
        assert_eq!(
            a.read(key_user).await.0,
            written,
            "round {round}: A's own write is visible to A at once"
        );
    }
}

/// A's connections to Redis cut by a proxy (its database connection goes
/// around it): what B invalidates meanwhile is never served stale by A,
/// during the cut or after it.
#[tokio::test]
async fn a_cut_process_never_serves_what_it_missed() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let ns = namespace(&server, "procs-cut");
    let db = Db::open(&server, &ns).await;
    let proxy = Proxy::start(
        server
            .url()
            .trim_start_matches("redis://")
            .parse()
            .expect("a loopback address"),
    );
    let b = instance_b(&server.url(), &ns).await;
    let mut a = InstanceA::start(&proxy.url(), &ns, &server.url()).await;
    let user = 20;
    let mut held = (0, 0);
    for _ in 0..3 {
        held = a.read(user).await;
    }
    assert!(held.1 >= 1, "A holds the entry in process");

    proxy.cut();
    eventually("A notices it is deaf", async || !a.coherent().await).await;
    edit_profile(&b, &db, user).await;
    let fresh = db.row(user).await;
    assert_ne!(fresh, held.0);
    for round in 0..20 {
        assert_eq!(
            a.read(user).await.0,
            fresh,
            "round {round}: cut off, A runs the body rather than serve its old entry"
        );
    }
    proxy.restore();
    eventually("A hears announcements again", async || a.coherent().await).await;
    for round in 0..50 {
        assert_eq!(
            a.read(user).await.0,
            fresh,
            "round {round}: after the cut, A never serves the entry B invalidated"
        );
    }
    // Once its probes reach Redis again, A trusts what it refilled.
    eventually("A serves in process again", async || {
        let (value, local_hits) = a.read(user).await;
        assert_eq!(value, fresh, "A never serves the entry B invalidated");
        local_hits > held.1
    })
    .await;
}
