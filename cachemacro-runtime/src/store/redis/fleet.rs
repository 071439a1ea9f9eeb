//! What the instances sharing one Redis need from it besides storage: each
//! node's clock (to learn that a node is back, and since when), pub/sub to
//! announce invalidations, and where to subscribe.
//!
//! ## Behavior
//!
//! * A probe sends `TIME` to every primary (one node: to it), each bounded
//!   on its own, and reports which slots each serves. On a cluster the slot
//!   map comes from the cluster itself, re-read at most once a second and
//!   after any failed probe; while it cannot be read (the node asked may be
//!   the one that is down) the last one is used, and before any was read
//!   every slot's probe fails.
//! * `PUBLISH` goes to any node: Redis Cluster forwards classic pub/sub
//!   messages to every node, so a subscriber on any node hears them.

use std::ops::RangeInclusive;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use redis::Value;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};

use super::RedisStore;
use super::cluster::{SLOTS, by_address};
use crate::Error;
use crate::store::Probe;

/// How long a cluster's slot map is used before it is read again.
const MAP_FOR: Duration = Duration::from_secs(1);

/// The primaries a probe asks, and when they were read.
#[derive(Default)]
pub(super) struct Nodes(Mutex<Option<(Instant, Primaries)>>);

type Primaries = Vec<(String, Vec<RangeInclusive<usize>>)>;

impl Nodes {
    /// The primaries last read, and whether they are recent enough to use
    /// without reading them again.
    fn get(&self) -> Option<(Primaries, bool)> {
        let nodes = self.0.lock().unwrap_or_else(|e| e.into_inner());
        nodes
            .as_ref()
            .map(|(at, primaries)| (primaries.clone(), at.elapsed() < MAP_FOR))
    }

    fn set(&self, primaries: Primaries) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some((Instant::now(), primaries));
    }

    /// Reads the map again at the next probe (keeping this one meanwhile).
    fn expire(&self) {
        if let Some((at, _)) = self.0.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            *at = Instant::now().checked_sub(MAP_FOR).unwrap_or(*at);
        }
    }
}

/// `TIME`'s reply in ms.
fn time_ms(reply: Value) -> Option<u64> {
    let (secs, micros): (u64, u64) = redis::from_redis_value(reply).ok()?;
    Some(secs * 1000 + micros / 1000)
}

impl RedisStore {
    /// Every node's clock (see the module's Behavior).
    pub(super) async fn probe_nodes(&self, limit: Duration) -> Vec<Probe> {
        let Some(cluster) = self.conn.as_cluster().cloned() else {
            let now_ms = self
                .bounded(limit, async {
                    let mut conn = self.watch.clone().unwrap_or_else(|| self.conn.clone());
                    redis::cmd("TIME").query_async::<Value>(&mut conn).await
                })
                .await
                .and_then(|v| time_ms(v).ok_or_else(|| Error::Backend("bad TIME reply".into())));
            return vec![Probe {
                shards: vec![0..=0],
                now_ms,
            }];
        };
        let known = self.nodes.get();
        let primaries = match known {
            Some((primaries, true)) => primaries,
            // Read again; a node that cannot say (it may be the one that is
            // down) leaves the last map in use.
            _ => match tokio::time::timeout(limit, self.slot_ranges()).await {
                Ok(Ok(primaries)) => {
                    self.nodes.set(primaries.clone());
                    primaries
                }
                Ok(Err(e)) => match known {
                    Some((primaries, _)) => primaries,
                    None => return vec![every_slot(e)],
                },
                Err(_) => match known {
                    Some((primaries, _)) => primaries,
                    None => return vec![every_slot(Error::Timeout(limit))],
                },
            },
        };
        let asks = primaries.into_iter().map(|(addr, shards)| {
            let mut conn = cluster.clone();
            async move {
                let now_ms = match by_address(&addr) {
                    Some(node) => self
                        .bounded(
                            limit,
                            conn.route_command(redis::cmd("TIME"), RoutingInfo::SingleNode(node)),
                        )
                        .await
                        .and_then(|v| {
                            time_ms(v).ok_or_else(|| Error::Backend("bad TIME reply".into()))
                        }),
                    None => Err(Error::Backend(format!("bad node address {addr}").into())),
                };
                Probe { shards, now_ms }
            }
        });
        let probes = futures_util::future::join_all(asks).await;
        if probes.iter().any(|p| p.now_ms.is_err()) {
            self.nodes.expire();
        }
        probes
    }

    /// Each primary and the slots it serves, as a random node says.
    async fn slot_ranges(&self) -> Result<Vec<(String, Vec<RangeInclusive<usize>>)>, Error> {
        let map = self.slot_map().await?;
        let mut primaries: Vec<(String, Vec<RangeInclusive<usize>>)> = Vec::new();
        for (from, to, addr) in map.ranges() {
            let range = usize::from(*from)..=usize::from(*to);
            match primaries.iter_mut().find(|(a, _)| a == addr) {
                Some((_, ranges)) => ranges.push(range),
                None => primaries.push((addr.clone(), vec![range])),
            }
        }
        Ok(primaries)
    }

    /// `PUBLISH channel message`, bounded by the operation timeout.
    pub(super) async fn publish_on(&self, channel: &str, message: Vec<u8>) -> Result<(), Error> {
        self.run(|mut c| async move {
            let mut cmd = redis::cmd("PUBLISH");
            cmd.arg(channel).arg(message);
            match &mut c {
                super::conn::Conn::Cluster(cluster) => cluster
                    .route_command(cmd, RoutingInfo::SingleNode(SingleNodeRoutingInfo::Random))
                    .await
                    .map(drop),
                node => cmd.query_async::<Value>(node).await.map(drop),
            }
        })
        .await
    }
}

/// A probe that failed for every slot.
fn every_slot(e: Error) -> Probe {
    Probe {
        shards: vec![0..=SLOTS - 1],
        now_ms: Err(e),
    }
}
