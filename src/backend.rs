//! The backends a behavioural test runs on, and the macros that run it on
//! each: memory, a redis-server of its own, and the shared Redis Cluster.

use std::time::Duration;

use cachemacro_runtime::{Cache, CacheBuilder};
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};

use crate::{RedisCluster, RedisServer};

/// The backend a behavioural test runs against.
pub struct Backend {
    /// The cache under test.
    pub cache: Cache,
    /// The Redis behind it; `None` for memory.
    pub server: Option<Server>,
}

/// The Redis behind a [`Backend`]: what a test needs to look at the bytes
/// the cache stored, whichever kind of Redis it is.
pub enum Server {
    /// A redis-server of the test's own (or `REDIS_URL`).
    Single(RedisServer),
    /// The shared cluster, under a namespace of the test's own.
    Cluster(RedisCluster),
}

impl Server {
    /// A raw connection: on a cluster, each command goes to the node that
    /// serves its key.
    pub async fn raw(&self) -> Raw {
        match self {
            Server::Single(server) => Raw::Single(server.raw().await),
            Server::Cluster(cluster) => Raw::Cluster(cluster.raw().await),
        }
    }

    /// The key as stored in Redis (with this test's namespace, if any).
    pub fn stored_key(&self, key: &str) -> String {
        match self {
            Server::Single(server) => server.stored_key(key),
            Server::Cluster(cluster) => cluster.stored_key(key),
        }
    }

    /// Sets `key` (under this test's namespace) to raw `value` for `ms`
    /// milliseconds: another process's lease or lock, or hostile bytes.
    pub async fn plant(&self, key: &str, value: &[u8], ms: u64) {
        match self {
            Server::Single(server) => server.plant(key, value, ms).await,
            Server::Cluster(cluster) => cluster.plant(key, value, ms).await,
        }
    }

    /// A builder for a cache on this Redis (its URL and this test's
    /// namespace), for tests that configure the cache themselves.
    pub fn builder(&self) -> CacheBuilder {
        match self {
            Server::Single(server) => server.builder(),
            Server::Cluster(cluster) => cluster.builder(),
        }
    }

    /// A cache on this Redis with a short operation timeout.
    pub async fn cache(&self) -> Cache {
        match self {
            Server::Single(server) => server.cache().await,
            Server::Cluster(cluster) => cluster.cache().await,
        }
    }

    /// The URL a cache connects with.
    pub fn url(&self) -> String {
        match self {
            Server::Single(server) => server.url(),
            Server::Cluster(cluster) => cluster.url(),
        }
    }
}

/// A raw connection to a [`Server`], for `query_async`.
pub enum Raw {
    /// To a single server.
    Single(MultiplexedConnection),
    /// To a cluster, routing by key.
    Cluster(ClusterConnection),
}

impl ConnectionLike for Raw {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Raw::Single(conn) => conn.req_packed_command(cmd),
            Raw::Cluster(conn) => conn.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Raw::Single(conn) => conn.req_packed_commands(pipeline, offset, count),
            Raw::Cluster(conn) => conn.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Raw::Single(conn) => conn.get_db(),
            Raw::Cluster(conn) => conn.get_db(),
        }
    }
}

impl Backend {
    /// An in-memory cache.
    pub fn memory() -> Backend {
        Backend {
            cache: Cache::memory(),
            server: None,
        }
    }

    /// A cache on a redis-server of the test's own; `None` when Redis
    /// cannot run here (said loudly; a failure under `CI`).
    pub async fn redis() -> Option<Backend> {
        let server = RedisServer::start()?;
        let cache = server.cache().await;
        Some(Backend {
            cache,
            server: Some(Server::Single(server)),
        })
    }

    /// A cache on the test binary's shared cluster, under a namespace of
    /// this test's own; `None` when no cluster can run here (said loudly;
    /// a failure under `CI`).
    pub async fn cluster() -> Option<Backend> {
        let cluster = RedisCluster::shared()?.in_fresh_namespace();
        // No outages on the shared cluster, and six servers share the
        // machine's cores with the tests: a timeout that a loaded machine
        // does not reach (an invalidation on a cluster also asks for the
        // slot map and waits for a replica).
        let cache = cluster
            .builder()
            .operation_timeout(Duration::from_secs(1))
            .connect()
            .await
            .expect("connect to the test cluster");
        Some(Backend {
            cache,
            server: Some(Server::Cluster(cluster)),
        })
    }

    /// Brings `key` `by` closer to its expiry: on memory by advancing
    /// tokio's paused clock (so every key ages; see
    /// [`on_every_backend_paused`](crate::on_every_backend_paused)), on
    /// Redis by shortening the key's TTL and the expiry its header carries.
    pub async fn age(&self, key: &str, by: Duration) {
        let Some(server) = &self.server else {
            tokio::time::advance(by).await;
            return;
        };
        // Each command names one key: a cluster routes them all to its node.
        let mut raw = server.raw().await;
        let full = server.stored_key(key);
        let pttl: i64 = redis::cmd("PTTL")
            .arg(&full)
            .query_async(&mut raw)
            .await
            .expect("PTTL");
        assert!(pttl > 0, "`{key}` has no TTL to shorten ({pttl})");
        let by_ms = i64::try_from(by.as_millis()).expect("a sane duration");
        let left = pttl - by_ms;
        if left > 0 {
            let _: () = redis::cmd("PEXPIRE")
                .arg(&full)
                .arg(left)
                .query_async(&mut raw)
                .await
                .expect("PEXPIRE");
            // An entry also carries its expiry on the server's clock, in
            // its header (bytes 64..72, little-endian ms): move it too.
            let stamp: Vec<u8> = redis::cmd("GETRANGE")
                .arg(&full)
                .arg(64)
                .arg(71)
                .query_async(&mut raw)
                .await
                .expect("GETRANGE");
            if let Ok(stamp) = <[u8; 8]>::try_from(stamp.as_slice()) {
                let at = u64::from_le_bytes(stamp);
                if at > 0 {
                    let moved = at.saturating_sub(by_ms.unsigned_abs());
                    let _: i64 = redis::cmd("SETRANGE")
                        .arg(&full)
                        .arg(64)
                        .arg(&moved.to_le_bytes()[..])
                        .query_async(&mut raw)
                        .await
                        .expect("SETRANGE");
                }
            }
        } else {
            let _: () = redis::cmd("DEL")
                .arg(&full)
                .query_async(&mut raw)
                .await
                .expect("DEL");
        }
    }
}

/// As [`on_every_backend`](crate::on_every_backend), with the memory tests
/// on a paused clock (`start_paused`): [`Backend::age`] advances it, and
/// sleeps and timeouts resolve as soon as nothing else can run, so timing
/// tests are exact.
#[macro_export]
macro_rules! on_every_backend_paused {
    ($($name:ident),* $(,)?) => {
        $crate::on_every_backend!(@memory (start_paused = true) $($name),*);
    };
}

/// Runs each `async fn name(backend: Backend)` on memory, on a
/// redis-server of its own and on the test binary's shared cluster:
/// `in_memory::name`, `on_redis::name` and `on_cluster::name`.
#[macro_export]
macro_rules! on_every_backend {
    (@memory $runtime:tt $($name:ident),*) => {
        mod in_memory {
            $(
                #[tokio::test $runtime]
                async fn $name() {
                    super::$name($crate::Backend::memory()).await;
                }
            )*
        }
        mod on_redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(backend) = $crate::Backend::redis().await {
                        super::$name(backend).await;
                    }
                }
            )*
        }
        mod on_cluster {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(backend) = $crate::Backend::cluster().await {
                        super::$name(backend).await;
                    }
                }
            )*
        }
    };
    ($($name:ident),* $(,)?) => {
        $crate::on_every_backend!(
            @memory (flavor = "multi_thread", worker_threads = 2) $($name),*
        );
    };
}

/// Runs each `async fn name(server: Server)` on a redis-server of its own
/// and on the test binary's shared cluster: `on_redis::name` and
/// `on_cluster::name`. For what only Redis has (raw bytes, `SCAN`).
#[macro_export]
macro_rules! on_every_redis {
    ($($name:ident),* $(,)?) => {
        mod on_redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(server) = $crate::RedisServer::start() {
                        super::$name($crate::Server::Single(server)).await;
                    }
                }
            )*
        }
        mod on_cluster {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(cluster) = $crate::RedisCluster::shared() {
                        super::$name($crate::Server::Cluster(cluster.in_fresh_namespace())).await;
                    }
                }
            )*
        }
    };
}
