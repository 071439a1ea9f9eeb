//! The Redis backend: redis-rs `ConnectionManager` with explicit timeouts.
//!
//! ## Behavior
//!
//! * One multiplexed connection per [`Cache`](crate::Cache), shared by all
//!   clones; redis-rs reconnects in the background after it drops.
//! * Every round trip is bounded by the operation timeout (default 250 ms):
//!   with Redis stopped, paused or partitioned, an operation fails within it
//!   and the caller runs the function body instead of hanging.
//! * Connecting is bounded by the connect timeout (default 1 s).
//! * Prefix deletes use `SCAN … MATCH <escaped prefix>* COUNT 100` and
//!   `UNLINK` page by page, never `KEYS`, on a second connection: small pages
//!   keep each command short, so Redis serves other clients in between, and
//!   the second connection keeps the pages from queueing in front of reads.
//!   Each page is its own bounded round trip. Measured with
//!   `benches/pattern_p99.rs`.

use std::time::Duration;

use redis::AsyncCommands as _;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::{Claim, Lease, MissKind, Read, ReadRequest, Refresh, refresh_lock};
use crate::Error;
use crate::codec::TagVersion;
use crate::key::glob_escape;

/// Keys asked for per `SCAN` page; also the largest `UNLINK` batch.
const SCAN_COUNT: usize = 100;

/// Increments, then sets a TTL only if the key has none (like `PEXPIRE NX`,
/// which Redis 6 lacks).
const INCR_SCRIPT: &str = r"
local v = redis.call('INCRBY', KEYS[1], ARGV[1])
if ARGV[2] ~= '' and redis.call('PTTL', KEYS[1]) == -1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return v";

/// A generated read, atomically: return the entry if it carries exactly
/// the caller's tags (KEYS[3..]) at their current versions, with its
/// freshness left (PTTL less its grace) and, when it is due for refresh
/// (past its freshness, or within XFetch's window), whether this caller took
/// the refresh lock KEYS[2]. Otherwise read (or create) the caller's tag
/// versions and take the fill lease unless another caller holds it. The
/// entry layout is `codec::parse_entry`'s (header of 33 bytes).
///
/// ARGV: lease ttl ms, lease value, tag ttl ms, force miss (0/1), early
/// factor, then one fresh version per tag. Reply: `{1, entry, left ms,
/// refresh}` on a hit (refresh 0 no, 1 mine, 2 another caller's), else
/// `{kind, leased, versions...}` with kind 0 absent, 3 unreadable, 4 stale,
/// 5 leased by another caller.
const READ_SCRIPT: &str = r"
local function current(v)
  if string.byte(v, 33) ~= #KEYS - 2 then return false end
  local pos = 34
  for i = 3, #KEYS do
    local hi, lo = string.byte(v, pos, pos + 1)
    if not lo then return false end
    local len = hi * 256 + lo
    if string.len(v) < pos + 9 + len then return false end
    if string.sub(v, pos + 2, pos + 1 + len) ~= KEYS[i] then return false end
    if redis.call('GET', KEYS[i]) ~= string.sub(v, pos + 2 + len, pos + 9 + len) then return false end
    pos = pos + 10 + len
  end
  return true
end
local function le(v, from, to)
  local n = 0
  for i = to, from, -1 do n = n * 256 + string.byte(v, i) end
  return n
end
local v = redis.call('GET', KEYS[1])
local kind = 0
if v then
  if string.sub(v, 1, 2) == '\202\030' then
    kind = 5
  elseif ARGV[4] == '1' or string.len(v) < 33 or string.sub(v, 1, 3) ~= '\202\206\003' then
    kind = 3
  elseif current(v) then
    local pttl = redis.call('PTTL', KEYS[1])
    if pttl < 0 then return {1, v, 9007199254740991, 0} end
    local left = pttl - le(v, 17, 24)
    local refresh = 0
    local early = tonumber(ARGV[5]) or 0
    if left <= 0 or (early > 0 and left <= le(v, 13, 16) / 1000 * early) then
      if redis.call('SET', KEYS[2], ARGV[2], 'NX', 'PX', ARGV[1]) then refresh = 1 else refresh = 2 end
    end
    return {1, v, left, refresh}
  else
    kind = 4
  end
end
local reply = {kind, 0}
for i = 3, #KEYS do
  local t = redis.call('GET', KEYS[i])
  if not t or string.len(t) ~= 8 then
    t = ARGV[3 + i]
    redis.call('SET', KEYS[i], t, 'PX', ARGV[3])
  end
  reply[#reply + 1] = t
end
if kind ~= 5 then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[1])
  reply[2] = 1
end
return reply";

/// Gives a lease back: deletes the key while it holds our lease ARGV[1],
/// and the refresh lock KEYS[2] while it does.
const RELEASE_SCRIPT: &str = r"
local n = 0
if redis.call('GET', KEYS[1]) == ARGV[1] then n = redis.call('DEL', KEYS[1]) end
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
return n";

/// Stores ARGV[3] for ARGV[4] ms only while the key still holds what the
/// store claims: our fill lease ARGV[1] (ARGV[2] empty), or the entry whose
/// id is ARGV[2]. Frees the refresh lock KEYS[2] if ARGV[1] holds it; then
/// makes each tag version (KEYS[3..]) outlive the entry.
const STORE_SCRIPT: &str = r"
local v = redis.call('GET', KEYS[1])
local mine
if ARGV[2] == '' then
  mine = v == ARGV[1]
else
  mine = v and string.len(v) >= 33 and string.sub(v, 1, 3) == '\202\206\003'
    and string.sub(v, 25, 32) == ARGV[2]
end
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
if not mine then return 0 end
redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
local ttl = tonumber(ARGV[4])
for i = 3, #KEYS do
  local left = redis.call('PTTL', KEYS[i])
  if left >= 0 and left < ttl then redis.call('PEXPIRE', KEYS[i], ttl) end
end
return 1";

pub(crate) struct RedisBackend {
    conn: ConnectionManager,
    /// Prefix deletes page through `SCAN`/`UNLINK` on a connection of their
    /// own, so their replies never queue in front of other callers' reads.
    bulk: ConnectionManager,
    op_timeout: Duration,
    url: String,
    incr: redis::Script,
    read: redis::Script,
    store: redis::Script,
    release: redis::Script,
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

impl RedisBackend {
    /// Builds a backend that connects on first use (and reconnects after).
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
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(connect_timeout))
            .set_response_timeout(Some(op_timeout))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(10))
            .set_max_delay(Duration::from_millis(500));
        let connect = |client: redis::Client| {
            ConnectionManager::new_lazy_with_config(client, config.clone()).map_err(|e| {
                Error::Connect {
                    url: redacted.clone(),
                    source: Box::new(e),
                }
            })
        };
        let conn = connect(client.clone())?;
        let bulk = connect(client)?;
        Ok(RedisBackend {
            conn,
            bulk,
            op_timeout,
            url: redacted,
            incr: redis::Script::new(INCR_SCRIPT),
            read: redis::Script::new(READ_SCRIPT),
            store: redis::Script::new(STORE_SCRIPT),
            release: redis::Script::new(RELEASE_SCRIPT),
        })
    }

    /// Round-trips a `PING`, bounded by `limit`.
    pub(crate) async fn ping(&self, limit: Duration) -> Result<(), Error> {
        let mut conn = self.conn.clone();
        let ping = async move { redis::cmd("PING").query_async::<String>(&mut conn).await };
        match tokio::time::timeout(limit, ping).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(Error::Connect {
                url: self.url.clone(),
                source: Box::new(e),
            }),
            Err(_) => Err(Error::Connect {
                url: self.url.clone(),
                source: format!("no answer within {limit:?}").into(),
            }),
        }
    }

    pub(crate) fn describe(&self) -> String {
        self.url.clone()
    }

    /// Runs one round trip under the operation timeout.
    async fn run<T, F>(&self, op: impl FnOnce(ConnectionManager) -> F) -> Result<T, Error>
    where
        F: Future<Output = redis::RedisResult<T>>,
    {
        self.run_on(&self.conn, op).await
    }

    /// Runs one round trip on `conn` under the operation timeout.
    async fn run_on<T, F>(
        &self,
        conn: &ConnectionManager,
        op: impl FnOnce(ConnectionManager) -> F,
    ) -> Result<T, Error>
    where
        F: Future<Output = redis::RedisResult<T>>,
    {
        match tokio::time::timeout(self.op_timeout, op(conn.clone())).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) if e.is_timeout() => Err(Error::Timeout(self.op_timeout)),
            Ok(Err(e)) => Err(Error::Backend(Box::new(e))),
            Err(_) => Err(Error::Timeout(self.op_timeout)),
        }
    }

    pub(crate) async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, Error> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        self.run(|mut c| async move { redis::cmd("MGET").arg(keys).query_async(&mut c).await })
            .await
    }

    pub(crate) async fn set(&self, key: &str, value: Vec<u8>, ttl: Duration) -> Result<(), Error> {
        let ms = ttl_millis(ttl);
        self.run(|mut c| async move { c.pset_ex(key, value, ms).await })
            .await
    }

    pub(crate) async fn set_many(
        &self,
        entries: Vec<(String, Vec<u8>)>,
        ttl: Duration,
    ) -> Result<(), Error> {
        let ms = ttl_millis(ttl);
        let mut pipe = redis::pipe();
        for (key, value) in &entries {
            pipe.pset_ex(key, value, ms).ignore();
        }
        self.run(|mut c| async move { pipe.query_async::<()>(&mut c).await })
            .await
    }

    pub(crate) async fn set_if_absent(
        &self,
        key: &str,
        value: Vec<u8>,
        ttl: Duration,
    ) -> Result<bool, Error> {
        let ms = ttl_millis(ttl);
        let reply: Option<String> = self
            .run(|mut c| async move {
                redis::cmd("SET")
                    .arg(key)
                    .arg(value)
                    .arg("NX")
                    .arg("PX")
                    .arg(ms)
                    .query_async(&mut c)
                    .await
            })
            .await?;
        Ok(reply.is_some())
    }

    pub(crate) async fn delete(&self, keys: &[String]) -> Result<u64, Error> {
        if keys.is_empty() {
            return Ok(0);
        }
        self.run(|mut c| async move { c.unlink(keys).await }).await
    }

    pub(crate) async fn delete_prefix(&self, prefix: &str) -> Result<u64, Error> {
        let pattern = format!("{}*", glob_escape(prefix));
        let mut cursor: u64 = 0;
        let mut deleted = 0;
        loop {
            let (next, keys): (u64, Vec<Vec<u8>>) = self
                .run_on(&self.bulk, |mut c| {
                    let pattern = &pattern;
                    async move {
                        redis::cmd("SCAN")
                            .arg(cursor)
                            .arg("MATCH")
                            .arg(pattern)
                            .arg("COUNT")
                            .arg(SCAN_COUNT)
                            .query_async(&mut c)
                            .await
                    }
                })
                .await?;
            if !keys.is_empty() {
                let n: u64 = self
                    .run_on(&self.bulk, |mut c| async move { c.unlink(&keys).await })
                    .await?;
                deleted += n;
            }
            if next == 0 {
                return Ok(deleted);
            }
            cursor = next;
        }
    }

    pub(crate) async fn read(&self, key: &str, req: &ReadRequest<'_>) -> Result<Read, Error> {
        let reply: Vec<redis::Value> = self
            .run(|mut c| {
                let mut call = self.read.key(key);
                call.key(refresh_lock(key));
                for tag in req.tags {
                    call.key(tag);
                }
                call.arg(ttl_millis(req.lease_ttl))
                    .arg(&req.lease[..])
                    .arg(ttl_millis(req.tag_ttl))
                    .arg(if req.force_miss { "1" } else { "0" })
                    .arg(req.early.to_string());
                for _ in req.tags {
                    call.arg(&rand::random::<TagVersion>()[..]);
                }
                async move { call.invoke_async(&mut c).await }
            })
            .await?;
        parse_read_reply(reply)
            .ok_or_else(|| Error::Backend("unexpected reply from the read script".into()))
    }

    pub(crate) async fn store(
        &self,
        key: &str,
        claim: Claim<'_>,
        tags: &[String],
        bytes: &[u8],
        ttl: Duration,
    ) -> Result<bool, Error> {
        let (token, id): (&Lease, &[u8]) = match claim {
            Claim::Lease(lease) => (lease, &[]),
            Claim::Entry { id, lock } => (lock, id),
        };
        let stored: i64 = self
            .run(|mut c| {
                let mut call = self.store.key(key);
                call.key(refresh_lock(key));
                for tag in tags {
                    call.key(tag);
                }
                call.arg(&token[..]).arg(id).arg(bytes).arg(ttl_millis(ttl));
                async move { call.invoke_async(&mut c).await }
            })
            .await?;
        Ok(stored == 1)
    }

    pub(crate) async fn release(&self, key: &str, lease: &Lease) -> Result<(), Error> {
        self.run(|mut c| {
            let mut call = self.release.key(key);
            call.key(refresh_lock(key)).arg(&lease[..]);
            async move { call.invoke_async::<i64>(&mut c).await }
        })
        .await
        .map(drop)
    }

    pub(crate) async fn pttls(&self, keys: &[String]) -> Result<Vec<i64>, Error> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for key in keys {
            pipe.cmd("PTTL").arg(key);
        }
        self.run(|mut c| async move { pipe.query_async(&mut c).await })
            .await
    }

    pub(crate) async fn incr(
        &self,
        key: &str,
        delta: i64,
        ttl: Option<Duration>,
    ) -> Result<i64, Error> {
        let ttl_arg = ttl.map(|t| ttl_millis(t).to_string()).unwrap_or_default();
        let result = self
            .run(|mut c| {
                let mut call = self.incr.key(key);
                call.arg(delta).arg(ttl_arg);
                async move { call.invoke_async(&mut c).await }
            })
            .await;
        match result {
            Err(Error::Backend(e)) if e.to_string().contains("not an integer") => {
                Err(Error::NotAnInteger(key.to_owned()))
            }
            other => other,
        }
    }
}

fn bytes_of(value: &redis::Value) -> Option<Vec<u8>> {
    match value {
        redis::Value::BulkString(b) => Some(b.clone()),
        _ => None,
    }
}

fn int_of(value: &redis::Value) -> Option<i64> {
    match value {
        redis::Value::Int(n) => Some(*n),
        _ => None,
    }
}

/// Decodes [`READ_SCRIPT`]'s reply.
fn parse_read_reply(reply: Vec<redis::Value>) -> Option<Read> {
    let kind = int_of(reply.first()?)?;
    if kind == 1 {
        let refresh = match int_of(reply.get(3)?)? {
            0 => Refresh::No,
            1 => Refresh::Mine,
            _ => Refresh::Theirs,
        };
        let left_ms = int_of(reply.get(2)?)?;
        return Some(Read::Hit {
            bytes: bytes_of(reply.get(1)?)?,
            left_ms: if left_ms >= 9_007_199_254_740_991 {
                i64::MAX
            } else {
                left_ms
            },
            refresh,
        });
    }
    let kind = match kind {
        0 => MissKind::Absent,
        3 => MissKind::Unreadable,
        4 => MissKind::Stale,
        5 => MissKind::Leased,
        _ => return None,
    };
    let leased = int_of(reply.get(1)?)? == 1;
    let versions = reply[2..]
        .iter()
        .map(|v| bytes_of(v)?.try_into().ok())
        .collect::<Option<Vec<TagVersion>>>()?;
    Some(Read::Miss {
        kind,
        leased,
        versions,
    })
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
