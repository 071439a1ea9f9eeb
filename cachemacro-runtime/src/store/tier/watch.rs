//! Probes every node's clock each heartbeat, marking the shards of a node
//! that does not answer suspect, and clearing them once it answers again
//! (see `trust.rs`); and logs when the backend stops and starts answering
//! (`reach.rs`).

use std::sync::Weak;
use std::sync::atomic::Ordering::SeqCst;

use super::reach::Reach;
use super::{Tier, alive};
use crate::store::Store;

pub(super) async fn watch(tier: Weak<Tier>, store: Weak<dyn Store>) {
    let mut reach = Reach::default();
    loop {
        let Some(every) = alive(&tier, |t| t.heartbeat) else {
            return;
        };
        tokio::time::sleep(every).await;
        let (Some(t), Some(store)) = (tier.upgrade(), store.upgrade()) else {
            return;
        };
        let sent = t.trust.probe_sent();
        let probes = store.probe(t.deaf_after).await;
        let (answered, failed): (Vec<_>, Vec<_>) =
            probes.into_iter().partition(|p| p.now_ms.is_ok());
        reach.observe(
            || store.describe(),
            answered.len() + failed.len(),
            failed.len(),
            failed.first().and_then(|p| p.now_ms.as_ref().err()),
        );
        for probe in failed {
            tracing::debug!(error = ?probe.now_ms.err(), "a cache node did not answer its probe");
            t.trust.suspect(&probe.shards);
        }
        t.trust.probe_done();
        // Only while listening (a watermark announced while deaf was
        // missed), or where pub/sub is refused and nothing is announced.
        if t.listening.load(SeqCst) || t.unsupported() {
            for probe in &answered {
                if let Ok(now_ms) = probe.now_ms {
                    t.trust.recover(&probe.shards, now_ms, sent);
                }
            }
        }
    }
}
