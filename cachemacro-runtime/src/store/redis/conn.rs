//! The connection under the Redis store: one node (`ConnectionManager`) or
//! a cluster (`cluster_async::ClusterConnection`), behind one type so every
//! single-key command is written once.
//!
//! ## Behavior
//!
//! * Both connect lazily, in the background, and reconnect by themselves;
//!   on a cluster redis-rs follows `MOVED`/`ASK` and refreshes its slot map.
//! * Both are bounded by the connect timeout per attempt and the operation
//!   timeout per round trip (the store bounds each call again on top).
//! * Reads and writes go to primaries only: a replica can lag behind a
//!   completed write, and a cache must not serve what it had before it.

use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClient, ClusterConfig};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};

/// A handle on one node or on a cluster; cheap to clone (multiplexed).
#[derive(Clone)]
pub(crate) enum Conn {
    Node(ConnectionManager),
    Cluster(ClusterConnection),
}

impl Conn {
    /// One node, connecting on first use.
    pub(crate) fn node(
        client: redis::Client,
        connect_timeout: Duration,
        op_timeout: Duration,
    ) -> redis::RedisResult<Conn> {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(connect_timeout))
            .set_response_timeout(Some(op_timeout))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(10))
            .set_max_delay(Duration::from_millis(500));
        ConnectionManager::new_lazy_with_config(client, config).map(Conn::Node)
    }

    /// A cluster from its seed nodes, connecting in the background.
    pub(crate) fn cluster(
        client: &ClusterClient,
        connect_timeout: Duration,
        op_timeout: Duration,
    ) -> Conn {
        let config = ClusterConfig::new()
            .set_connection_timeout(connect_timeout)
            .set_response_timeout(op_timeout);
        Conn::Cluster(client.get_pending_async_connection_with_config(config))
    }

    /// The cluster connection, if this is one.
    pub(crate) fn as_cluster(&self) -> Option<&ClusterConnection> {
        match self {
            Conn::Node(_) => None,
            Conn::Cluster(c) => Some(c),
        }
    }
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Node(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Node(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Node(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}
