//! The Redis store, on one node or a cluster (`conn.rs`), with explicit
//! timeouts.
//!
//! ## Behavior
//!
//! * One multiplexed connection per [`Cache`](crate::Cache) (per node on a
//!   cluster), shared by all clones; redis-rs reconnects in the background
//!   after it drops.
//! * Every round trip is bounded by the operation timeout (default 250 ms):
//!   with Redis stopped, paused or partitioned, an operation fails within it
//!   and the caller runs the function body instead of hanging.
//! * Connecting is bounded by the connect timeout (default 1 s). A `ping`
//!   that fails says why when it can ([`Problem`](crate::Problem), in
//!   [`Error::Connect`]); when the error alone does not tell, it looks with
//!   one short connection of its own, at most 250 ms more (see
//!   `store/diagnose.rs`).
//! * A hit is one round trip of plain commands: `GET` of the entry, and of
//!   each tag version the caller expects, pipelined. The entry carries its
//!   expiry on the server's clock; only a read within a second of a
//!   freshness decision (its end of freshness, or its early-refresh window)
//!   reads the entry again with its exact `PTTL`, pipelined (`clock.rs`). Scripts (`scripts.rs`)
//!   run only to take a lease or a refresh lock, to store, and to give a
//!   claim back; each touches one key.
//! * Prefix deletes use `SCAN … MATCH <escaped prefix>* COUNT 100` and
//!   `UNLINK` page by page, never `KEYS`, on a second connection: small pages
//!   keep each command short, so Redis serves other clients in between, and
//!   the second connection keeps the pages from queueing in front of reads.
//!   Each page is its own bounded round trip. Measured with
//!   `benches/pattern_p99.rs`. On a cluster, every primary is scanned
//!   (`cluster.rs`).
//! * On a cluster every script and single-key command goes to the primary
//!   of the key's slot; the reads and writes of many keys (a hit's tag
//!   versions, `get_many`, `set_many`) are split per slot (`slots.rs`).

mod clock;
mod cluster;
mod conn;
mod connect;
mod fleet;
mod scan;
mod scripts;
mod slots;
mod tags;

use std::sync::Arc;
use std::time::Duration;

use redis::AsyncCommands as _;

use conn::Conn;

use super::diagnose::{self, PROBE_LIMIT, Problem, Wire};
use super::protocol::{self, Acquire, Claim, EntryId, Expect, TagVersion, Token};
use super::{BoxFuture, Found, Store, Stored, Versioned};
use crate::Error;
use tags::version;

/// The largest `−ln u` an XFetch draw can give (see `engine/lookup.rs`).
const MAX_DRAW: f64 = 37.0;

/// Keys asked for per `SCAN` page; also the largest `UNLINK` batch.
const SCAN_COUNT: usize = 100;

pub(crate) struct RedisStore {
    conn: Conn,
    /// Prefix deletes page through `SCAN`/`UNLINK` on a connection of their
    /// own, so their replies never queue in front of other callers' reads;
    /// on a cluster every invalidation runs here (it may `WAIT`).
    bulk: Conn,
    /// The probes of `store/tier/watch.rs` on one node, on a connection of
    /// their own so that a busy one never makes a node look stalled (on a
    /// cluster they go through the main connection, by address).
    watch: Option<Conn>,
    op_timeout: Duration,
    /// The bound on the bulk connection's round trips: twice the operation
    /// timeout, since a `WAIT` may take one operation timeout by itself.
    bulk_timeout: Duration,
    url: String,
    /// Where a failed ping looks for a TLS mismatch (the first seed node
    /// of a cluster).
    wire: Option<Wire>,
    clock: clock::ServerClock,
    /// Where announcements are heard: the node, or a cluster's seeds.
    listen: Vec<redis::Client>,
    /// A cluster's primaries, as the last probe read them.
    nodes: fleet::Nodes,
}

/// Removes any password from a URL before it reaches a log or an error.
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.rsplit_once('@') {
        Some((auth, host)) => match auth.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
            None => format!("{scheme}://***@{host}"),
        },
        None => url.to_owned(),
    }
}

impl RedisStore {
    /// Stamps an entry written without a script (the manual API) with the
    /// server's time as this process measures it, so that it is judged by
    /// its fill time like any other after an outage (`store/tier/trust.rs`).
    fn stamp_fill(&self, bytes: &mut [u8]) {
        if let Some(now) = self.clock.now()
            && protocol::parse(bytes).is_some()
        {
            let now = u64::try_from(now).unwrap_or(0);
            bytes[protocol::FILLED_AT..protocol::FILLED_AT + 8].copy_from_slice(&now.to_le_bytes());
        }
    }

    /// Runs a script that replies `{outcome, server time}`, measuring the
    /// server's clock on the way.
    async fn scripted(&self, call: &scripts::Call<'_>) -> Result<i64, Error> {
        let sent = self.clock.local_ms();
        let (outcome, now): (i64, i64) = self.invoke(call).await?;
        self.clock.observe(sent, now);
        Ok(outcome)
    }

    /// Runs a script on its key's node: `EVALSHA`, then `EVAL` of its text
    /// if that node does not have it yet. One operation timeout in all.
    async fn invoke<T: redis::FromRedisValue>(&self, call: &scripts::Call<'_>) -> Result<T, Error> {
        self.run(|mut c| async move {
            match call.cmd(true).query_async(&mut c).await {
                Err(e)
                    if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) =>
                {
                    call.cmd(false).query_async(&mut c).await
                }
                other => other,
            }
        })
        .await
    }

    /// The key's remaining TTL in ms for an entry read with `header`, from
    /// its expiry stamp, when no freshness decision is near: `Some(None)`
    /// for an entry without a stamp (written by the manual API: no grace, no
    /// load time, no decision); `None` when the server must be asked.
    fn estimate(&self, header: &protocol::Header, beta: f64) -> Option<Option<u64>> {
        if header.expires_at == 0 {
            return Some(None);
        }
        let now = self.clock.now()?;
        let left = i64::try_from(header.expires_at)
            .unwrap_or(i64::MAX)
            .saturating_sub(now);
        let grace = i64::try_from(header.meta.grace.as_millis()).unwrap_or(i64::MAX);
        let window = header.meta.load.as_secs_f64() * 1000.0 * beta.max(0.0) * MAX_DRAW;
        let horizon = clock::MARGIN_MS as f64 + window;
        ((left.saturating_sub(grace)) as f64 > horizon).then(|| Some(left.max(0).unsigned_abs()))
    }

    /// Near a decision: the entry again, with its exact `PTTL`, in one
    /// pipelined round trip (so both describe the same key state).
    async fn read_exact(&self, key: &str) -> Result<Found, Error> {
        let (pttl, raw): (i64, Option<Vec<u8>>) = self
            .run(|mut c| async move { entry_and_ttl(key).query_async(&mut c).await })
            .await?;
        Ok(found(raw, pttl))
    }

    /// Runs one round trip under the operation timeout.
    async fn run<T, F>(&self, op: impl FnOnce(Conn) -> F) -> Result<T, Error>
    where
        F: Future<Output = redis::RedisResult<T>>,
    {
        self.bounded(self.op_timeout, op(self.conn.clone())).await
    }

    /// Runs one round trip on the bulk connection under its timeout.
    async fn run_bulk<T, F>(&self, op: impl FnOnce(Conn) -> F) -> Result<T, Error>
    where
        F: Future<Output = redis::RedisResult<T>>,
    {
        self.bounded(self.bulk_timeout, op(self.bulk.clone())).await
    }

    /// `request` bounded by `limit`, its failure as ours.
    async fn bounded<T>(
        &self,
        limit: Duration,
        request: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, Error> {
        match tokio::time::timeout(limit, request).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) if e.is_timeout() => Err(Error::Timeout(limit)),
            Ok(Err(e)) => Err(Error::Backend(Box::new(e))),
            Err(_) => Err(Error::Timeout(limit)),
        }
    }
}

/// An entry and its `PTTL` in one command (one script on one key).
fn entry_and_ttl(key: &str) -> redis::Cmd {
    let mut cmd = redis::cmd("EVAL");
    cmd.arg(scripts::ENTRY_AND_TTL).arg(1).arg(key);
    cmd
}

/// A `PTTL` reply as the protocol wants it: `None` without expiry; an
/// absent key (-2, it expired between the two commands) as nothing.
fn found(raw: Option<Vec<u8>>, pttl: i64) -> Found {
    match pttl {
        -2 => Found::Nothing,
        -1 => Found::from_raw(raw, None),
        ms => Found::from_raw(raw, Some(ms.max(0).unsigned_abs())),
    }
}

impl Store for RedisStore {
    fn describe(&self) -> String {
        self.url.clone()
    }

    fn ping(&self, limit: Duration) -> BoxFuture<'_, Result<(), Error>> {
        Box::pin(async move {
            // Both connections, so the first invalidation does not pay for
            // connecting (on a cluster: discovering the slots, then every
            // primary) inside its operation timeout.
            let (mut conn, mut bulk) = (self.conn.clone(), self.bulk.clone());
            let ping = async move {
                let cmd = redis::cmd("PING");
                tokio::try_join!(
                    cmd.query_async::<String>(&mut conn),
                    cmd.query_async::<String>(&mut bulk),
                )
            };
            let (source, mut problem): (crate::BoxError, _) =
                match tokio::time::timeout(limit, ping).await {
                    Ok(Ok(_)) => return Ok(()),
                    Ok(Err(e)) => {
                        let problem = diagnose::from_source(&e);
                        (Box::new(e), problem)
                    }
                    Err(_) => (
                        format!("no answer within {limit:?}").into(),
                        Some(Problem::Timeout),
                    ),
                };
            if Wire::worth_probing(problem)
                && let Some(wire) = &self.wire
                && let Some(found) = wire.probe(limit.min(PROBE_LIMIT)).await
            {
                problem = Some(found);
            }
            Err(diagnose::connect_error(&self.url, source, problem))
        })
    }

    fn read<'a>(
        &'a self,
        key: &'a str,
        tags: &'a [String],
        beta: f64,
    ) -> BoxFuture<'a, Result<Versioned, Error>> {
        Box::pin(async move {
            let measure = self.clock.stale();
            let sent = self.clock.local_ms();
            let mut reply: Vec<redis::Value> = if !measure && tags.is_empty() {
                // The common hit: one plain GET.
                let value = self
                    .run(
                        |mut c| async move { redis::cmd("GET").arg(key).query_async(&mut c).await },
                    )
                    .await?;
                vec![value]
            } else {
                let mut pipe = redis::pipe();
                pipe.cmd("GET").arg(key);
                if measure {
                    pipe.cmd("TIME");
                }
                if self.conn.as_cluster().is_some() && !tags.is_empty() {
                    // Tag versions live in other slots: sent at once, apart.
                    let entry = self.run(|mut c| async move { pipe.query_async(&mut c).await });
                    let versions = self.batch(tags, |tag| get(tag));
                    let (mut entry, versions): (Vec<redis::Value>, _) =
                        tokio::try_join!(entry, versions)?;
                    entry.extend(versions);
                    entry
                } else {
                    for tag in tags {
                        pipe.cmd("GET").arg(tag);
                    }
                    self.run(|mut c| async move { pipe.query_async(&mut c).await })
                        .await?
                }
            };
            let expected = 1 + usize::from(measure) + tags.len();
            if reply.len() != expected {
                return Err(Error::Backend("unexpected reply to a read".into()));
            }
            let versions = reply
                .drain(1 + usize::from(measure)..)
                .map(|v| version(redis::from_redis_value(v).ok()?))
                .collect();
            if measure {
                let time = reply.pop().unwrap_or(redis::Value::Nil);
                let (secs, micros): (i64, i64) =
                    redis::from_redis_value(time).map_err(|e| Error::Backend(Box::new(e)))?;
                self.clock.observe(
                    sent,
                    secs.saturating_mul(1000).saturating_add(micros / 1000),
                );
            }
            let raw = redis::from_redis_value::<Option<Vec<u8>>>(
                reply.pop().unwrap_or(redis::Value::Nil),
            )
            .map_err(|e| Error::Backend(Box::new(e)))?;
            let found = match raw {
                None => Found::Nothing,
                Some(bytes) if protocol::is_lease(&bytes) => Found::Lease,
                Some(bytes) => match Stored::parse(bytes) {
                    None => Found::Unreadable,
                    Some(stored) => match self.estimate(&stored.header, beta) {
                        Some(pttl) => Found::Entry {
                            left_ms: protocol::left_ms(pttl, stored.header.meta.grace),
                            entry: Arc::new(stored),
                        },
                        None => self.read_exact(key).await?,
                    },
                },
            };
            Ok((found, versions))
        })
    }

    fn read_many<'a>(&'a self, keys: &'a [String]) -> BoxFuture<'a, Result<Vec<Found>, Error>> {
        Box::pin(async move {
            let reply = self.batch(keys, |key| entry_and_ttl(key)).await?;
            reply
                .into_iter()
                .map(|pair| {
                    let (pttl, raw): (i64, Option<Vec<u8>>) =
                        redis::from_redis_value(pair).map_err(|e| Error::Backend(Box::new(e)))?;
                    Ok(found(raw, pttl))
                })
                .collect()
        })
    }

    fn versions<'a>(
        &'a self,
        tags: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Option<TagVersion>>, Error>> {
        Box::pin(self.tag_versions(tags))
    }

    fn acquire<'a>(
        &'a self,
        key: &'a str,
        expect: Expect,
        token: Token,
        lease_ttl: Duration,
        tags: &'a [String],
        tag_ttl: Duration,
    ) -> BoxFuture<'a, Result<(Acquire, Vec<TagVersion>), Error>> {
        Box::pin(async move {
            let (kind, id): (&str, EntryId) = match expect {
                Expect::Nothing => ("n", [0; 8]),
                Expect::Entry(id) => ("e", id),
                Expect::Anything => ("u", [0; 8]),
            };
            let mut call = scripts::ACQUIRE.key(key);
            call.arg(&token.lease()[..])
                .arg(ttl_millis(lease_ttl))
                .arg(kind)
                .arg(&id[..]);
            let lease = self.scripted(&call);
            // Sent together on the multiplexed connection: one round trip.
            let (outcome, versions) = tokio::join!(lease, self.ensure_versions(tags, tag_ttl));
            let outcome = match outcome? {
                1 => Acquire::Leased,
                2 => Acquire::Busy,
                _ => Acquire::Changed,
            };
            Ok((outcome, versions?))
        })
    }

    fn lock<'a>(
        &'a self,
        key: &'a str,
        id: EntryId,
        token: Token,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool, Error>> {
        Box::pin(async move {
            let mut call = scripts::LOCK.key(key);
            call.arg(&id[..]).arg(&token.0[..]).arg(ttl_millis(ttl));
            Ok(self.scripted(&call).await? == 1)
        })
    }

    fn store<'a>(
        &'a self,
        key: &'a str,
        claim: Claim,
        bytes: Arc<Vec<u8>>,
        _: Option<crate::engine::Shared>,
        tags: &'a [String],
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool, Error>> {
        Box::pin(async move {
            let (kind, held): (&str, Vec<u8>) = match claim {
                Claim::Lease(token) => ("l", token.lease().to_vec()),
                Claim::Entry(id) => ("e", id.to_vec()),
            };
            let ms = ttl_millis(ttl);
            let mut call = scripts::STORE.key(key);
            call.arg(kind).arg(held).arg(bytes.as_slice()).arg(ms);
            let stored = self.scripted(&call).await?;
            if stored != 1 {
                return Ok(false);
            }
            // Tag versions must outlive the entries that recorded them.
            // One round trip for all of them.
            self.batch(tags, |tag| {
                let mut extend = redis::cmd("EVAL");
                extend.arg(scripts::EXTEND).arg(1).arg(tag).arg(ms);
                extend
            })
            .await?;
            Ok(true)
        })
    }

    fn release<'a>(&'a self, key: &'a str, token: Token) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            let mut call = scripts::RELEASE.key(key);
            call.arg(&token.lease()[..]).arg(&token.0[..]);
            self.invoke::<i64>(&call).await.map(drop)
        })
    }

    fn set_many(
        &self,
        entries: Vec<(String, Vec<u8>)>,
        ttl: Duration,
    ) -> BoxFuture<'_, Result<(), Error>> {
        Box::pin(async move {
            let ms = ttl_millis(ttl);
            let mut entries = entries;
            for (_, bytes) in &mut entries {
                self.stamp_fill(bytes);
            }
            self.batch(&entries, |(key, value)| {
                let mut set = redis::cmd("PSETEX");
                set.arg(key).arg(ms).arg(value);
                set
            })
            .await
            .map(drop)
        })
    }

    fn set_if_absent<'a>(
        &'a self,
        key: &'a str,
        bytes: Vec<u8>,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool, Error>> {
        Box::pin(async move {
            let ms = ttl_millis(ttl);
            let mut bytes = bytes;
            self.stamp_fill(&mut bytes);
            let reply: Option<String> = self
                .run(|mut c| async move {
                    redis::cmd("SET")
                        .arg(key)
                        .arg(bytes)
                        .arg("NX")
                        .arg("PX")
                        .arg(ms)
                        .query_async(&mut c)
                        .await
                })
                .await?;
            Ok(reply.is_some())
        })
    }

    fn delete<'a>(&'a self, keys: &'a [String]) -> BoxFuture<'a, Result<u64, Error>> {
        Box::pin(async move {
            if keys.is_empty() {
                return Ok(0);
            }
            if self.conn.as_cluster().is_some() {
                return self.cluster_delete(keys).await;
            }
            self.run(|mut c| async move { c.unlink(keys).await }).await
        })
    }

    fn delete_prefix<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<u64, Error>> {
        Box::pin(async move {
            if self.conn.as_cluster().is_some() {
                self.cluster_scan_delete(prefix).await
            } else {
                self.scan_delete(prefix).await
            }
        })
    }

    fn incr<'a>(
        &'a self,
        key: &'a str,
        delta: i64,
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<i64, Error>> {
        Box::pin(async move {
            let ttl_arg = ttl.map(|t| ttl_millis(t).to_string()).unwrap_or_default();
            let mut call = scripts::INCR.key(key);
            call.arg(delta).arg(ttl_arg);
            let result = self.invoke(&call).await;
            match result {
                Err(Error::Backend(e)) if e.to_string().contains("not an integer") => {
                    Err(Error::NotAnInteger(key.to_owned()))
                }
                other => other,
            }
        })
    }

    fn shared(&self) -> bool {
        true
    }

    fn shards(&self) -> usize {
        match self.conn.as_cluster() {
            Some(_) => cluster::SLOTS,
            None => 1,
        }
    }

    fn shard_of(&self, key: &str) -> usize {
        match self.conn.as_cluster() {
            Some(_) => usize::from(cluster::slot_of(key.as_bytes())),
            None => 0,
        }
    }

    fn probe(&self, limit: Duration) -> BoxFuture<'_, Vec<super::Probe>> {
        Box::pin(self.probe_nodes(limit))
    }

    fn publish<'a>(
        &'a self,
        channel: &'a str,
        message: Vec<u8>,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(self.publish_on(channel, message))
    }

    fn listen_on(&self) -> Vec<redis::Client> {
        self.listen.clone()
    }
}

/// `GET key`.
fn get(key: &str) -> redis::Cmd {
    let mut cmd = redis::cmd("GET");
    cmd.arg(key);
    cmd
}

/// Redis takes whole milliseconds and rejects 0.
fn ttl_millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_never_reach_logs() {
        assert_eq!(
            redact("redis://:hunter2@cache:6379/0"),
            "redis://:***@cache:6379/0"
        );
        assert_eq!(
            redact("rediss://app:hunter2@cache:6380"),
            "rediss://app:***@cache:6380"
        );
        assert_eq!(redact("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
    }
}
