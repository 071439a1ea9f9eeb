//! What only a cluster needs: deleting a prefix on every primary, and
//! making sure an invalidation reached a replica before it counts.
//!
//! ## Behavior
//!
//! * A prefix delete asks every primary for its view of itself (`CLUSTER
//!   NODES`), checks that those views cover all 16 384 slots, and then runs
//!   `SCAN … MATCH` / `UNLINK` on each primary, continuing each node's
//!   cursor on that node. Which nodes are primaries is asked of the
//!   cluster (`CLUSTER SLOTS`), not taken from the client's map: redis-rs
//!   keeps a primary that died in its map after a failover, and silently
//!   leaves it out of a request to all primaries.
//! * A slot being migrated can only move keys from its source to its
//!   target, so the source is scanned before the target: a key that moves
//!   mid-scan is found on the target. Views that differ after the scan
//!   (a migration finished, a failover) mean the scan runs again, up to
//!   [`ATTEMPTS`] times; then the delete fails, and the invalidation is
//!   queued and replayed like any failed one.
//! * Redis replicates asynchronously: a primary that dies right after an
//!   `UNLINK` can fail over to a replica that never saw it, bringing the
//!   old entry back. So on a cluster an invalidation counts as landed only
//!   once a replica of each primary it touched has it: after its
//!   `UNLINK`s, a fence on that primary (a short-lived write, then `WAIT
//!   1`, in one pipeline checked by `CLUSTER MYID` to have run there). One
//!   replication stream per primary, so a replica that has the fence has
//!   every earlier `UNLINK`, from any connection; and a replay that finds
//!   nothing left to delete still fences. Otherwise it fails and is queued
//!   and replayed. Which primaries have replicas comes from the
//!   cluster (`CLUSTER SLOTS` lists every replica not marked failed, also
//!   one whose link is down for now); a primary without any cannot fail
//!   over, so it is not waited on. `WAIT` blocks its connection, which is
//!   why invalidations run on the second connection, never the reads'.
//! * Every command of an invalidation is routed to a node by address, from
//!   that map: redis-rs's own split of a multi-slot `UNLINK` silently
//!   drops the part for a node it has no connection to.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::LazyLock;

use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use redis::{Cmd, Pipeline, Value};

use super::{RedisStore, SCAN_COUNT};
use crate::Error;
use crate::key::glob_escape;

/// How many times a prefix delete scans while the slots keep moving.
const ATTEMPTS: usize = 3;

/// Slots in a Redis Cluster.
pub(super) const SLOTS: usize = 16_384;

/// A primary as it describes itself: the `myself` line of `CLUSTER NODES`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Primary {
    /// `host:port` as the client knows it (routing goes by this).
    addr: String,
    id: String,
    /// Slot ranges and migration markers, as printed (`0-5460`,
    /// `[93->-<target id>]`, `[93-<-<source id>]`).
    slots: Vec<String>,
    /// Its replicas not marked failed, as the cluster's slot map lists them.
    replicas: usize,
}

impl Primary {
    /// Reads the `myself` line of a node's `CLUSTER NODES`.
    fn parse(addr: &str, nodes: &str, replicas: usize) -> Option<Primary> {
        let line = nodes.lines().find(|l| {
            l.split_whitespace()
                .nth(2)
                .is_some_and(|flags| flags.split(',').any(|f| f == "myself"))
        })?;
        let fields: Vec<&str> = line.split_whitespace().collect();
        let mut slots: Vec<String> = fields.get(8..)?.iter().map(|s| s.to_string()).collect();
        slots.sort();
        Some(Primary {
            addr: addr.to_owned(),
            id: fields[0].to_owned(),
            slots,
            replicas,
        })
    }

    /// The slots it owns (markers aside).
    fn owned(&self) -> impl Iterator<Item = usize> + '_ {
        self.slots
            .iter()
            .filter(|s| !s.starts_with('['))
            .flat_map(|range| {
                let (from, to) = range.split_once('-').unwrap_or((range, range));
                let from = from.parse().unwrap_or(1);
                let to = to.parse().unwrap_or(0);
                from..=to
            })
    }

    /// The node ids it is migrating slots to.
    fn migrating_to(&self) -> impl Iterator<Item = &str> + '_ {
        self.slots
            .iter()
            .filter_map(|s| s.strip_prefix('[')?.strip_suffix(']')?.split_once("->-"))
            .map(|(_, target)| target)
    }
}

/// Whether the primaries' own views claim every slot (they may not, for a
/// moment, while a failover or a migration settles).
fn covers_every_slot(primaries: &[Primary]) -> bool {
    let covered: HashSet<usize> = primaries.iter().flat_map(Primary::owned).collect();
    (0..SLOTS).all(|s| covered.contains(&s))
}

/// Orders primaries so every migration's source comes before its target.
/// `None` when the views do not cover every slot, or migrations form a cycle.
pub(super) fn scan_order(primaries: &[Primary]) -> Option<Vec<&Primary>> {
    if !covers_every_slot(primaries) {
        return None;
    }
    let by_id: HashMap<&str, &Primary> = primaries.iter().map(|p| (p.id.as_str(), p)).collect();
    let mut order = Vec::with_capacity(primaries.len());
    let mut placed: HashSet<&str> = HashSet::new();
    while order.len() < primaries.len() {
        // Next: one no unplaced primary migrates slots to.
        let next = primaries.iter().find(|p| {
            !placed.contains(p.id.as_str())
                && !primaries.iter().any(|q| {
                    !placed.contains(q.id.as_str())
                        && q.id != p.id
                        && q.migrating_to().any(|t| t == p.id)
                })
        })?;
        placed.insert(&next.id);
        order.push(*by_id.get(next.id.as_str())?);
    }
    Some(order)
}

/// The hash slot of `key`, as Redis Cluster computes it: CRC16 of the key,
/// or of its first non-empty `{…}` (a hash tag), modulo 16 384.
pub(super) fn slot_of(key: &[u8]) -> u16 {
    let tagged = key.iter().position(|&b| b == b'{').and_then(|open| {
        let rest = &key[open + 1..];
        let close = rest.iter().position(|&b| b == b'}')?;
        (close > 0).then(|| &rest[..close])
    });
    crc16::State::<crc16::XMODEM>::calculate(tagged.unwrap_or(key)) % SLOTS as u16
}

/// Which primary serves which slots (`CLUSTER SLOTS`, whose endpoints are
/// the ones clients connect to), and how many replicas each has (`CLUSTER
/// NODES`: `CLUSTER SLOTS` leaves out a replica whose replication offset
/// it has not heard of yet), as one node of the cluster says.
#[derive(Debug, Default)]
pub(super) struct SlotMap {
    /// `(first slot, last slot, primary as endpoint:port)`.
    ranges: Vec<(u16, u16, String)>,
    /// Replicas (not marked failed) of each primary.
    replicas: BTreeMap<String, usize>,
    /// Each primary's node id.
    ids: BTreeMap<String, String>,
}

impl SlotMap {
    /// Reads a `CLUSTER SLOTS` reply and the same node's `CLUSTER NODES`;
    /// `None` when malformed, or when a node's endpoint is unknown (`?`,
    /// empty).
    fn parse(slots: Value, nodes: &str) -> Option<SlotMap> {
        let Value::Array(ranges) = slots else {
            return None;
        };
        let mut map = SlotMap::default();
        for range in ranges {
            let Value::Array(parts) = range else {
                return None;
            };
            let from: u16 = redis::from_redis_value(parts.first()?.clone()).ok()?;
            let to: u16 = redis::from_redis_value(parts.get(1)?.clone()).ok()?;
            let (primary, id) = endpoint(parts.get(2)?)?;
            map.replicas
                .insert(primary.clone(), replicas_of(nodes, &id));
            map.ids.insert(primary.clone(), id);
            map.ranges.push((from, to, primary));
        }
        Some(map)
    }

    /// The primary serving `slot`.
    fn owner(&self, slot: u16) -> Option<&str> {
        self.ranges
            .iter()
            .find(|(from, to, _)| (*from..=*to).contains(&slot))
            .map(|(_, _, owner)| owner.as_str())
    }

    /// `(first slot, last slot, primary)` for every range.
    pub(super) fn ranges(&self) -> &[(u16, u16, String)] {
        &self.ranges
    }

    fn replicas(&self, primary: &str) -> usize {
        self.replicas.get(primary).copied().unwrap_or(0)
    }
}

/// `endpoint:port` and id of a node in a `CLUSTER SLOTS` range.
fn endpoint(node: &Value) -> Option<(String, String)> {
    let Value::Array(node) = node else {
        return None;
    };
    let endpoint: String = redis::from_redis_value(node.first()?.clone()).ok()?;
    let port: u16 = redis::from_redis_value(node.get(1)?.clone()).ok()?;
    let id: String = redis::from_redis_value(node.get(2)?.clone()).ok()?;
    // `?` or empty: an endpoint the node does not know; ours to refuse.
    if endpoint.is_empty() || endpoint == "?" {
        return None;
    }
    let addr = if endpoint.contains(':') {
        format!("[{endpoint}]:{port}")
    } else {
        format!("{endpoint}:{port}")
    };
    Some((addr, id))
}

/// The replicas of primary `id` in a `CLUSTER NODES` text that are not
/// marked failed (one only suspected, `fail?`, counts: it may be elected).
fn replicas_of(nodes: &str, id: &str) -> usize {
    nodes
        .lines()
        .filter(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let flags: Vec<&str> = fields.get(2).map_or(Vec::new(), |f| f.split(',').collect());
            flags.iter().any(|f| *f == "slave" || *f == "replica")
                && !flags
                    .iter()
                    .any(|f| matches!(*f, "fail" | "handshake" | "noaddr"))
                && fields.get(3) == Some(&id)
        })
        .count()
}

/// `host:port` as a route to that node.
pub(super) fn by_address(addr: &str) -> Option<SingleNodeRoutingInfo> {
    let (host, port) = addr.rsplit_once(':')?;
    Some(SingleNodeRoutingInfo::ByAddress {
        host: host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned(),
        port: port.parse().ok()?,
    })
}

fn unexpected(what: &str) -> Error {
    Error::Backend(format!("unexpected reply from the cluster to {what}").into())
}

impl RedisStore {
    /// The bulk connection as a cluster one (only called on a cluster).
    fn bulk_cluster(&self) -> Result<ClusterConnection, Error> {
        self.bulk
            .as_cluster()
            .cloned()
            .ok_or_else(|| Error::Backend("not a cluster".into()))
    }

    /// Sends `cmd` to `node` on the bulk connection, bounded by its timeout.
    async fn on_node(&self, node: &SingleNodeRoutingInfo, cmd: Cmd) -> Result<Value, Error> {
        let mut conn = self.bulk_cluster()?;
        let routing = RoutingInfo::SingleNode(node.clone());
        self.bounded(self.bulk_timeout, conn.route_command(cmd, routing))
            .await
    }

    /// Sends `pipe` (of `count` commands) to `node` on the bulk connection.
    async fn pipeline_on(
        &self,
        node: &SingleNodeRoutingInfo,
        pipe: Pipeline,
        count: usize,
    ) -> Result<Vec<Value>, Error> {
        let mut conn = self.bulk_cluster()?;
        let reply = self
            .bounded(
                self.bulk_timeout,
                conn.route_pipeline(pipe, 0, count, node.clone()),
            )
            .await?;
        if reply.len() == count {
            Ok(reply)
        } else {
            Err(unexpected("a pipeline"))
        }
    }

    /// The cluster's slot map, as a random node sees it.
    pub(super) async fn slot_map(&self) -> Result<SlotMap, Error> {
        let mut pipe = redis::pipe();
        pipe.cmd("CLUSTER").arg("SLOTS").cmd("CLUSTER").arg("NODES");
        let reply = self
            .pipeline_on(&SingleNodeRoutingInfo::Random, pipe, 2)
            .await?;
        let [slots, nodes] =
            <[Value; 2]>::try_from(reply).map_err(|_| unexpected("CLUSTER SLOTS"))?;
        let nodes: String =
            redis::from_redis_value(nodes).map_err(|_| unexpected("CLUSTER NODES"))?;
        SlotMap::parse(slots, &nodes).ok_or_else(|| unexpected("CLUSTER SLOTS"))
    }

    /// Every primary's view of itself. Which nodes are primaries comes
    /// from the cluster (`CLUSTER SLOTS`, whose endpoints are the ones the
    /// client connects to), not from the client's map, which can still
    /// name a primary that died.
    pub(super) async fn primaries(&self) -> Result<Vec<Primary>, Error> {
        let map = self.slot_map().await?;
        let views = map.replicas.iter().map(|(addr, &replicas)| async move {
            let node = by_address(addr).ok_or_else(|| unexpected("CLUSTER SLOTS"))?;
            let mut nodes = redis::cmd("CLUSTER");
            nodes.arg("NODES");
            let text: String = redis::from_redis_value(self.on_node(&node, nodes).await?)
                .map_err(|_| unexpected("CLUSTER NODES"))?;
            Primary::parse(addr, &text, replicas).ok_or_else(|| unexpected("CLUSTER NODES"))
        });
        let mut primaries = futures_util::future::try_join_all(views).await?;
        primaries.sort_by(|a, b| a.addr.cmp(&b.addr));
        Ok(primaries)
    }

    /// Deletes every key starting with `prefix` on every primary.
    pub(super) async fn cluster_scan_delete(&self, prefix: &str) -> Result<u64, Error> {
        let pattern = format!("{}*", glob_escape(prefix));
        let mut deleted = 0;
        for _ in 0..ATTEMPTS {
            let before = self.primaries().await?;
            let Some(order) = scan_order(&before) else {
                continue;
            };
            for primary in order {
                deleted += self.scan_node(primary, &pattern).await?;
            }
            // The same primaries with the same slots and markers (replica
            // counts come from whichever node answered, and may differ).
            let after = self.primaries().await?;
            let layout = |ps: &[Primary]| -> Vec<(String, String, Vec<String>)> {
                ps.iter()
                    .map(|p| (p.addr.clone(), p.id.clone(), p.slots.clone()))
                    .collect()
            };
            if layout(&after) == layout(&before) {
                return Ok(deleted);
            }
        }
        Err(Error::Backend(
            format!(
                "the cluster's slots did not hold still for {ATTEMPTS} attempts at deleting `{prefix}*`"
            )
            .into(),
        ))
    }

    /// `SCAN`/`UNLINK` on one primary, then a fence for its replica.
    async fn scan_node(&self, primary: &Primary, pattern: &str) -> Result<u64, Error> {
        let node = by_address(&primary.addr).ok_or_else(|| unexpected("CLUSTER SLOTS"))?;
        let mut cursor: u64 = 0;
        let mut deleted = 0;
        loop {
            let mut scan = redis::cmd("SCAN");
            scan.arg(cursor)
                .arg("MATCH")
                .arg(pattern)
                .arg("COUNT")
                .arg(SCAN_COUNT);
            let (next, keys): (u64, Vec<Vec<u8>>) =
                redis::from_redis_value(self.on_node(&node, scan).await?)
                    .map_err(|_| unexpected("SCAN"))?;
            if !keys.is_empty() {
                deleted += self.unlink_on(&node, &primary.id, &keys).await?;
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
        if primary.replicas > 0 {
            // Always, even when this scan found nothing: a replay finds
            // nothing left to delete, and must still see the first try's
            // `UNLINK`s replicated before it counts as landed.
            let slot = primary
                .owned()
                .find(|&s| {
                    let marker = format!("[{s}-");
                    !primary.slots.iter().any(|m| m.starts_with(&marker))
                })
                .and_then(|s| u16::try_from(s).ok())
                .ok_or_else(|| unexpected("CLUSTER NODES"))?;
            self.fence(&node, &primary.id, slot, redis::pipe(), 0)
                .await?;
        }
        Ok(deleted)
    }

    /// `UNLINK`s `keys`, found on `node` (whose id is `id`), slot by slot,
    /// each after `ASKING` (for the keys of a slot it is importing;
    /// harmless for its own). Returns how many went.
    async fn unlink_on(
        &self,
        node: &SingleNodeRoutingInfo,
        id: &str,
        keys: &[Vec<u8>],
    ) -> Result<u64, Error> {
        let mut by_slot: BTreeMap<u16, Vec<&[u8]>> = BTreeMap::new();
        for key in keys {
            by_slot.entry(slot_of(key)).or_default().push(key);
        }
        let mut pipe = redis::pipe();
        for keys in by_slot.values() {
            pipe.cmd("ASKING").cmd("UNLINK").arg(keys);
        }
        pipe.cmd("CLUSTER").arg("MYID");
        let mut reply = self.pipeline_on(node, pipe, 2 * by_slot.len() + 1).await?;
        ran_on(reply.pop(), id)?;
        let mut deleted = 0;
        // `ASKING`'s `OK`, then `UNLINK`'s count, per slot.
        for n in reply.into_iter().skip(1).step_by(2) {
            deleted += redis::from_redis_value::<u64>(n).map_err(|_| unexpected("UNLINK"))?;
        }
        Ok(deleted)
    }

    /// Deletes `keys` on their primaries (from the cluster's slot map), one
    /// pipeline per primary, fenced for its replica when it has one.
    pub(super) async fn cluster_delete(&self, keys: &[String]) -> Result<u64, Error> {
        let map = self.slot_map().await?;
        let mut by_owner: BTreeMap<&str, BTreeMap<u16, Vec<&str>>> = BTreeMap::new();
        for key in keys {
            let slot = slot_of(key.as_bytes());
            let owner = map
                .owner(slot)
                .ok_or_else(|| Error::Backend(format!("no primary serves slot {slot}").into()))?;
            by_owner
                .entry(owner)
                .or_default()
                .entry(slot)
                .or_default()
                .push(key);
        }
        let each = by_owner.into_iter().map(|(owner, slots)| {
            let map = &map;
            async move {
                let node = by_address(owner).ok_or_else(|| unexpected("CLUSTER SLOTS"))?;
                let id = map
                    .ids
                    .get(owner)
                    .ok_or_else(|| unexpected("CLUSTER SLOTS"))?;
                let mut pipe = redis::pipe();
                for keys in slots.values() {
                    pipe.cmd("UNLINK").arg(keys);
                }
                let unlinks = slots.len();
                let replies = if map.replicas(owner) > 0 {
                    let slot = *slots.keys().next().ok_or_else(|| unexpected("UNLINK"))?;
                    self.fence(&node, id, slot, pipe, unlinks).await?
                } else {
                    pipe.cmd("CLUSTER").arg("MYID");
                    let mut reply = self.pipeline_on(&node, pipe, unlinks + 1).await?;
                    ran_on(reply.pop(), id)?;
                    reply
                };
                let mut deleted = 0;
                for n in replies {
                    deleted +=
                        redis::from_redis_value::<u64>(n).map_err(|_| unexpected("UNLINK"))?;
                }
                Ok::<_, Error>(deleted)
            }
        });
        Ok(futures_util::future::try_join_all(each)
            .await?
            .into_iter()
            .sum())
    }

    /// Sends `pipe` (`count` commands) to `node`, then, in the same
    /// pipeline, a fence: a write to `slot` (owned by `node`), the node's id
    /// (checked to be `id`: a redirect must not move the `WAIT` elsewhere),
    /// and `WAIT 1`. Replication is one ordered stream per primary, so a
    /// replica that has the fence has every write the node made before it,
    /// from any connection. Returns the replies to `pipe`.
    async fn fence(
        &self,
        node: &SingleNodeRoutingInfo,
        id: &str,
        slot: u16,
        mut pipe: Pipeline,
        count: usize,
    ) -> Result<Vec<Value>, Error> {
        pipe.cmd("SET")
            .arg(fence_key(slot))
            .arg(1)
            .arg("PX")
            .arg(FENCE_TTL_MS);
        pipe.cmd("CLUSTER").arg("MYID");
        pipe.add_command(wait(self.op_timeout));
        let mut reply = self.pipeline_on(node, pipe, count + 3).await?;
        let acked = reply.pop();
        ran_on(reply.pop(), id)?;
        reply.pop(); // the fence's `OK`
        self.acknowledged(acked.unwrap_or(Value::Nil))?;
        Ok(reply)
    }

    /// A `WAIT` reply: at least one replica, or the invalidation has not
    /// landed.
    fn acknowledged(&self, acked: Value) -> Result<(), Error> {
        match redis::from_redis_value::<i64>(acked) {
            Ok(n) if n >= 1 => Ok(()),
            Ok(_) => Err(Error::Backend(
                format!(
                    "no replica acknowledged an invalidation within {:?}",
                    self.op_timeout
                )
                .into(),
            )),
            Err(_) => Err(unexpected("WAIT")),
        }
    }
}

/// How long a fence key lives: it only has to reach the replicas.
const FENCE_TTL_MS: u64 = 10_000;

/// A key in `slot`: `__cachemacro:fence:{<n>}` with the smallest `n` that
/// hashes there (found once for every slot).
fn fence_key(slot: u16) -> String {
    static TAGS: LazyLock<Vec<u32>> = LazyLock::new(|| {
        let mut tags = vec![u32::MAX; SLOTS];
        let mut left = SLOTS;
        let mut n = 0u32;
        while left > 0 {
            let at = usize::from(slot_of(n.to_string().as_bytes()));
            if tags[at] == u32::MAX {
                tags[at] = n;
                left -= 1;
            }
            n += 1;
        }
        tags
    });
    format!("__cachemacro:fence:{{{}}}", TAGS[usize::from(slot)])
}

/// Checks a `CLUSTER MYID` reply against the node a pipeline was meant for.
fn ran_on(reply: Option<Value>, id: &str) -> Result<(), Error> {
    let ran: String = redis::from_redis_value(reply.unwrap_or(Value::Nil))
        .map_err(|_| unexpected("CLUSTER MYID"))?;
    if ran == id {
        Ok(())
    } else {
        Err(Error::Backend(
            format!("an invalidation meant for node {id} ran on {ran} (the slots moved)").into(),
        ))
    }
}

/// `WAIT 1 <timeout>`: until one replica has this connection's writes.
fn wait(timeout: std::time::Duration) -> Cmd {
    let mut wait = redis::cmd("WAIT");
    wait.arg(1).arg(super::ttl_millis(timeout));
    wait
}

#[cfg(test)]
mod tests {
    use super::*;

    fn primary(id: &str, slots: &[&str]) -> Primary {
        Primary {
            addr: format!("{id}:1"),
            id: id.into(),
            slots: slots.iter().map(|s| s.to_string()).collect(),
            replicas: 0,
        }
    }

    #[test]
    fn reads_the_myself_line() {
        let nodes = "\
b 127.0.0.1:7002@17002 master - 0 1 2 connected 5461-10922
a 127.0.0.1:7001@17001 myself,master - 0 0 1 connected 0-5460 [93->-b]
c 127.0.0.1:7004@17004 slave a 0 1 1 connected
";
        let p = Primary::parse("127.0.0.1:7001", nodes, 1).expect("a myself line");
        assert_eq!(p.id, "a");
        assert_eq!(p.owned().count(), 5461);
        assert_eq!(p.migrating_to().collect::<Vec<_>>(), ["b"]);
    }

    #[test]
    fn sources_are_scanned_before_targets() {
        let a = primary("a", &["0-5460", "[93->-c]"]);
        let b = primary("b", &["5461-10922"]);
        let c = primary("c", &["10923-16383", "[93-<-a]"]);
        let all = [c.clone(), b.clone(), a.clone()];
        let order: Vec<&str> = scan_order(&all)
            .expect("covered, acyclic")
            .iter()
            .map(|p| p.id.as_str())
            .collect();
        let at = |id| order.iter().position(|o| *o == id).unwrap();
        assert!(at("a") < at("c"), "{order:?}");
        assert_eq!(order.len(), 3);
    }

    #[test]
    fn gaps_and_cycles_refuse_to_scan() {
        let a = primary("a", &["0-5460"]);
        let b = primary("b", &["5461-10922"]);
        assert!(
            scan_order(&[a.clone(), b.clone()]).is_none(),
            "slots uncovered"
        );
        let a = primary("a", &["0-8191", "[1->-b]"]);
        let b = primary("b", &["8192-16383", "[9000->-a]"]);
        assert!(scan_order(&[a, b]).is_none(), "migrations in a cycle");
    }

    #[test]
    fn slot_maps_name_primaries_and_count_replicas() {
        let node = |host: &str, port: i64, id: &str| {
            Value::Array(vec![
                Value::BulkString(host.into()),
                Value::Int(port),
                Value::BulkString(id.into()),
            ])
        };
        let range = |from, to, nodes: Vec<Value>| {
            let mut parts = vec![Value::Int(from), Value::Int(to)];
            parts.extend(nodes);
            Value::Array(parts)
        };
        let reply = Value::Array(vec![
            range(
                0,
                5460,
                vec![node("10.0.0.1", 7000, "a"), node("10.0.0.4", 7000, "d")],
            ),
            range(5461, 9000, vec![node("::1", 7001, "b")]),
            range(
                9001,
                16383,
                vec![node("10.0.0.1", 7000, "a"), node("10.0.0.4", 7000, "d")],
            ),
        ]);
        let nodes = "\
a 10.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-5460 9001-16383
d 10.0.0.4:7000@17000 slave a 0 1 1 connected
e 10.0.0.5:7000@17000 slave,fail a 0 1 1 disconnected
f 10.0.0.6:7000@17000 slave,fail? a 0 1 1 connected
b [::1]:7001@17001 master - 0 1 2 connected 5461-9000
";
        let map = SlotMap::parse(reply, nodes).expect("well formed");
        assert_eq!(map.owner(0), Some("10.0.0.1:7000"));
        assert_eq!(map.owner(5461), Some("[::1]:7001"));
        assert_eq!(map.owner(16383), Some("10.0.0.1:7000"));
        assert_eq!(
            (map.replicas("10.0.0.1:7000"), map.replicas("[::1]:7001")),
            (2, 0),
            "d, and f (only suspected); not e (failed)"
        );
        let unknown = Value::Array(vec![range(0, 16383, vec![node("?", 7000, "a")])]);
        assert!(SlotMap::parse(unknown, nodes).is_none());
    }

    #[test]
    fn fence_keys_land_in_their_slot() {
        for slot in 0..SLOTS as u16 {
            assert_eq!(slot_of(fence_key(slot).as_bytes()), slot);
        }
    }

    #[test]
    fn slots_are_computed_as_redis_does() {
        use redis::cluster_routing::Slot;
        for key in [
            "",
            "a",
            "user:42",
            "{user:42}:x",
            "a{}b{c}",
            "{}",
            "x{y",
            "x}y{z}",
        ] {
            let ours = Slot::new(slot_of(key.as_bytes())).expect("in range");
            assert_eq!(ours, Slot::for_key(key), "{key:?}");
        }
        // Redis's own examples: CLUSTER KEYSLOT.
        assert_eq!(slot_of(b"somekey"), 11_058);
        assert_eq!(slot_of(b"foo{hash_tag}"), slot_of(b"hash_tag"));
    }
}
