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
//!   old entry back. So on a cluster every invalidation runs on the store's
//!   second connection and ends with `WAIT 1` on each primary it touched
//!   that has replicas: until one replica has it, it has not landed (it is
//!   queued and replayed). A primary without replicas cannot fail over, so
//!   it is not waited on. `WAIT` blocks its connection, which is why it
//!   never runs on the connection reads use.

use std::collections::{BTreeSet, HashMap, HashSet};

use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, Slot, SlotAddr};
use redis::{Cmd, Value};

use super::{RedisStore, SCAN_COUNT};
use crate::Error;
use crate::key::glob_escape;

/// How many times a prefix delete scans while the slots keep moving.
const ATTEMPTS: usize = 3;

/// Slots in a Redis Cluster.
const SLOTS: usize = 16_384;

/// A primary as it describes itself: the `myself` line of `CLUSTER NODES`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Primary {
    /// `host:port` as the client knows it (routing goes by this).
    addr: String,
    id: String,
    /// Slot ranges and migration markers, as printed (`0-5460`,
    /// `[93->-<target id>]`, `[93-<-<source id>]`).
    slots: Vec<String>,
}

impl Primary {
    /// Reads the `myself` line of a node's `CLUSTER NODES`.
    fn parse(addr: &str, nodes: &str) -> Option<Primary> {
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

/// The primaries a `CLUSTER SLOTS` reply names, as `endpoint:port`.
fn slot_owners(reply: Value) -> Option<BTreeSet<String>> {
    let Value::Array(ranges) = reply else {
        return None;
    };
    let mut owners = BTreeSet::new();
    for range in ranges {
        let Value::Array(parts) = range else {
            return None;
        };
        let Some(Value::Array(primary)) = parts.get(2) else {
            return None;
        };
        let endpoint: String = redis::from_redis_value(primary.first()?.clone()).ok()?;
        let port: u16 = redis::from_redis_value(primary.get(1)?.clone()).ok()?;
        // `?` or empty: an endpoint the node does not know; ours to refuse.
        if endpoint.is_empty() || endpoint == "?" {
            return None;
        }
        owners.insert(if endpoint.contains(':') {
            format!("[{endpoint}]:{port}")
        } else {
            format!("{endpoint}:{port}")
        });
    }
    Some(owners)
}

/// `host:port` as a route to that node.
fn by_address(addr: &str) -> Option<SingleNodeRoutingInfo> {
    let (host, port) = addr.rsplit_once(':')?;
    Some(SingleNodeRoutingInfo::ByAddress {
        host: host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned(),
        port: port.parse().ok()?,
    })
}

/// How many replicas a `ROLE` reply lists (0 for anything but a primary).
fn replicas(role: &Value) -> usize {
    match role {
        Value::Array(parts) => match (parts.first(), parts.get(2)) {
            (Some(Value::BulkString(kind)), Some(Value::Array(replicas)))
                if kind.as_slice() == b"master" =>
            {
                replicas.len()
            }
            _ => 0,
        },
        _ => 0,
    }
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

    /// Sends `cmd` where `routing` says, on the bulk connection, bounded by
    /// the bulk timeout.
    async fn route(&self, cmd: Cmd, routing: RoutingInfo) -> Result<Value, Error> {
        let mut conn = self.bulk_cluster()?;
        self.bounded(self.bulk_timeout, conn.route_command(cmd, routing))
            .await
    }

    /// Every primary's view of itself. Which nodes are primaries comes
    /// from the cluster (`CLUSTER SLOTS`, whose endpoints are the ones the
    /// client connects to), not from the client's map, which can still
    /// name a primary that died.
    pub(super) async fn primaries(&self) -> Result<Vec<Primary>, Error> {
        let slots = self
            .route(
                redis::cmd("CLUSTER").arg("SLOTS").clone(),
                RoutingInfo::SingleNode(SingleNodeRoutingInfo::Random),
            )
            .await?;
        let owners = slot_owners(slots).ok_or_else(|| unexpected("CLUSTER SLOTS"))?;
        let views = owners.into_iter().map(|addr| async move {
            let node = by_address(&addr).ok_or_else(|| unexpected("CLUSTER SLOTS"))?;
            let text = self
                .route(
                    redis::cmd("CLUSTER").arg("NODES").clone(),
                    RoutingInfo::SingleNode(node),
                )
                .await?;
            let text: String =
                redis::from_redis_value(text).map_err(|_| unexpected("CLUSTER NODES"))?;
            Primary::parse(&addr, &text).ok_or_else(|| unexpected("CLUSTER NODES"))
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
                deleted += self.scan_node(&primary.addr, &pattern).await?;
            }
            if self.primaries().await? == before {
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

    /// `SCAN`/`UNLINK` on one primary, then waits for its replica.
    async fn scan_node(&self, addr: &str, pattern: &str) -> Result<u64, Error> {
        let node = by_address(addr).ok_or_else(|| unexpected("CLUSTER NODES"))?;
        let mut cursor: u64 = 0;
        let mut deleted = 0;
        loop {
            let mut scan = redis::cmd("SCAN");
            scan.arg(cursor)
                .arg("MATCH")
                .arg(pattern)
                .arg("COUNT")
                .arg(SCAN_COUNT);
            let reply = self
                .route(scan, RoutingInfo::SingleNode(node.clone()))
                .await?;
            let (next, keys): (u64, Vec<Vec<u8>>) =
                redis::from_redis_value(reply).map_err(|_| unexpected("SCAN"))?;
            if !keys.is_empty() {
                // Routed by key: the client splits it per slot (and follows
                // `ASK` for a key already moved to a migration's target).
                let mut conn = self.bulk_cluster()?;
                let n: u64 = self
                    .bounded(
                        self.bulk_timeout,
                        redis::cmd("UNLINK").arg(&keys).query_async(&mut conn),
                    )
                    .await?;
                deleted += n;
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
        self.replicated(node).await?;
        Ok(deleted)
    }

    /// Deletes `keys` slot by slot on the bulk connection, then waits for
    /// each touched primary's replica.
    pub(super) async fn cluster_delete(&self, keys: &[String]) -> Result<u64, Error> {
        let mut slots: HashMap<Slot, Vec<&str>> = HashMap::new();
        for key in keys {
            slots.entry(Slot::for_key(key)).or_default().push(key);
        }
        let each = slots.into_iter().map(|(slot, keys)| async move {
            let route =
                SingleNodeRoutingInfo::SpecificNode(Route::with_slot(slot, SlotAddr::Master));
            let mut pipe = redis::pipe();
            pipe.cmd("UNLINK").arg(&keys).cmd("ROLE");
            let mut conn = self.bulk_cluster()?;
            let reply = self
                .bounded(
                    self.bulk_timeout,
                    conn.route_pipeline(pipe, 0, 2, route.clone()),
                )
                .await?;
            let [n, role] = <[Value; 2]>::try_from(reply).map_err(|_| unexpected("UNLINK"))?;
            let n: u64 = redis::from_redis_value(n).map_err(|_| unexpected("UNLINK"))?;
            if replicas(&role) > 0 {
                self.wait_for_replica(route).await?;
            }
            Ok::<_, Error>(n)
        });
        Ok(futures_util::future::try_join_all(each)
            .await?
            .into_iter()
            .sum())
    }

    /// Waits until a replica of the node `route` reaches has every write
    /// this connection sent it; nothing to wait for without replicas.
    async fn replicated(&self, route: SingleNodeRoutingInfo) -> Result<(), Error> {
        let role = self
            .route(
                redis::cmd("ROLE").clone(),
                RoutingInfo::SingleNode(route.clone()),
            )
            .await?;
        if replicas(&role) == 0 {
            return Ok(());
        }
        self.wait_for_replica(route).await
    }

    async fn wait_for_replica(&self, route: SingleNodeRoutingInfo) -> Result<(), Error> {
        let mut wait = redis::cmd("WAIT");
        wait.arg(1).arg(super::ttl_millis(self.op_timeout));
        let acked = self.route(wait, RoutingInfo::SingleNode(route)).await?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn primary(id: &str, slots: &[&str]) -> Primary {
        Primary {
            addr: format!("{id}:1"),
            id: id.into(),
            slots: slots.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn reads_the_myself_line() {
        let nodes = "\
b 127.0.0.1:7002@17002 master - 0 1 2 connected 5461-10922
a 127.0.0.1:7001@17001 myself,master - 0 0 1 connected 0-5460 [93->-b]
c 127.0.0.1:7004@17004 slave a 0 1 1 connected
";
        let p = Primary::parse("127.0.0.1:7001", nodes).expect("a myself line");
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
    fn slot_replies_name_the_primaries() {
        let node = |host: &str, port: i64, id: &str| {
            Value::Array(vec![
                Value::BulkString(host.into()),
                Value::Int(port),
                Value::BulkString(id.into()),
            ])
        };
        let range = |from, to, primary, replica| {
            Value::Array(vec![Value::Int(from), Value::Int(to), primary, replica])
        };
        let reply = Value::Array(vec![
            range(
                0,
                5460,
                node("10.0.0.1", 7000, "a"),
                node("10.0.0.4", 7000, "d"),
            ),
            range(
                5461,
                9000,
                node("::1", 7001, "b"),
                node("10.0.0.5", 7000, "e"),
            ),
            range(
                9001,
                16383,
                node("10.0.0.1", 7000, "a"),
                node("10.0.0.4", 7000, "d"),
            ),
        ]);
        let owners: Vec<String> = slot_owners(reply)
            .expect("well formed")
            .into_iter()
            .collect();
        assert_eq!(owners, ["10.0.0.1:7000", "[::1]:7001"]);
        let unknown = Value::Array(vec![range(0, 16383, node("?", 7000, "a"), Value::Nil)]);
        assert!(slot_owners(unknown).is_none());
    }

    #[test]
    fn role_replies_count_replicas() {
        let master = Value::Array(vec![
            Value::BulkString(b"master".to_vec()),
            Value::Int(10),
            Value::Array(vec![Value::Array(vec![])]),
        ]);
        assert_eq!(replicas(&master), 1);
        let replica = Value::Array(vec![Value::BulkString(b"slave".to_vec())]);
        assert_eq!(replicas(&replica), 0);
    }
}
