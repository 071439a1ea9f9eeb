//! Probes every node's clock each heartbeat, marking the shards of a node
//! that does not answer suspect, and clearing them once it answers again
//! (see `trust.rs`).

use std::sync::Weak;
use std::sync::atomic::Ordering::SeqCst;

use super::{Tier, alive};
use crate::store::Store;

pub(super) async fn watch(tier: Weak<Tier>, store: Weak<dyn Store>) {
    loop {
        let Some(every) = alive(&tier, |t| t.heartbeat) else {
            return;
        };
        tokio::time::sleep(every).await;
        let (Some(t), Some(store)) = (tier.upgrade(), store.upgrade()) else {
            return;
        };
        let generation = t.trust.generation();
        t.trust.probe_sent();
        let probes = store.probe(t.deaf_after).await;
        t.trust.probe_done();
        let listening = t.listening.load(SeqCst);
        let (answered, failed): (Vec<_>, Vec<_>) =
            probes.into_iter().partition(|p| p.now_ms.is_ok());
        if listening {
            for probe in &answered {
                if let Ok(now_ms) = probe.now_ms {
                    t.trust.recover(&probe.shards, now_ms, generation);
                }
            }
        }
        for probe in failed {
            tracing::debug!(error = ?probe.now_ms.err(), "a cache node did not answer its probe");
            t.trust.suspect(&probe.shards);
        }
    }
}
