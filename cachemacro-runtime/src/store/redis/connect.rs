//! Building a Redis store: the connections to one node or a cluster, with
//! their timeouts, and where announcements are heard.

use std::time::Duration;

use redis::cluster::ClusterClient;

use super::conn::Conn;
use super::{RedisStore, clock, fleet, redact};
use crate::Error;
use crate::store::diagnose::{self, Wire};

impl RedisStore {
    /// Builds a store that connects on first use (and reconnects after).
    pub(crate) fn lazy(
        url: &str,
        connect_timeout: Duration,
        op_timeout: Duration,
    ) -> Result<Self, Error> {
        let redacted = redact(url);
        let client = redis::Client::open(url).map_err(|e| Error::InvalidUrl {
            url: redacted.clone(),
            reason: e.to_string(),
        })?;
        let connect = |client: redis::Client| {
            Conn::node(client, connect_timeout, op_timeout)
                .map_err(|e| diagnose::connect_error(&redacted, Box::new(e), None))
        };
        let conn = connect(client.clone())?;
        let bulk = connect(client.clone())?;
        let watch = Some(connect(client.clone())?);
        let mut store = RedisStore::with(
            conn,
            bulk,
            op_timeout,
            redacted,
            vec![client],
            Wire::of(url),
        );
        store.watch = watch;
        Ok(store)
    }

    /// Builds a store on the cluster that `nodes` (any of its nodes, as
    /// `redis://` or `rediss://` URLs) belong to; it discovers the rest and
    /// connects in the background. `described` names it in logs and errors.
    pub(crate) fn lazy_cluster(
        nodes: &[String],
        described: String,
        connect_timeout: Duration,
        op_timeout: Duration,
    ) -> Result<Self, Error> {
        // Two clients: redis-rs bounds a whole request (retries included)
        // by the response timeout the client was built with, and the bulk
        // connection's `WAIT` may take one operation timeout by itself.
        let client = |response_timeout: Duration| {
            ClusterClient::builder(nodes.iter().map(String::as_str))
                .connection_timeout(connect_timeout)
                .response_timeout(response_timeout)
                // Retries (`TRYAGAIN` mid-migration, a node reconnecting)
                // wait 1.28 s at least by default, past any timeout of ours.
                .min_retry_wait(10)
                .max_retry_wait(100)
                .build()
                .map_err(|e| Error::InvalidUrl {
                    url: described.clone(),
                    reason: e.to_string(),
                })
        };
        let bulk_timeout = op_timeout.saturating_mul(2);
        let conn = Conn::cluster(&client(op_timeout)?, connect_timeout, op_timeout);
        let bulk = Conn::cluster(&client(bulk_timeout)?, connect_timeout, bulk_timeout);
        // Any node hears a cluster's pub/sub: subscribe to a seed.
        let listen = nodes
            .iter()
            .filter_map(|n| {
                let url = if n.contains("://") {
                    n.clone()
                } else {
                    format!("redis://{n}")
                };
                redis::Client::open(url).ok()
            })
            .collect();
        let wire = nodes.first().and_then(|node| Wire::of(node));
        Ok(RedisStore::with(
            conn, bulk, op_timeout, described, listen, wire,
        ))
    }

    fn with(
        conn: Conn,
        bulk: Conn,
        op_timeout: Duration,
        url: String,
        listen: Vec<redis::Client>,
        wire: Option<Wire>,
    ) -> Self {
        RedisStore {
            conn,
            bulk,
            watch: None,
            op_timeout,
            bulk_timeout: op_timeout.saturating_mul(2),
            url,
            wire,
            clock: clock::ServerClock::new(),
            listen,
            nodes: fleet::Nodes::default(),
        }
    }
}
