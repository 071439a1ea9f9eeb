//! Invalidation: deleting keys, prefixes and tags, and making sure a
//! failed deletion is replayed rather than lost (see `replay.rs`); holding
//! deletions until a transaction commits (`pending.rs`).

mod land;
pub(crate) mod pending;
mod replay;
mod targets;

use std::sync::Arc;

pub(crate) use land::{Origin, land};
pub use pending::{Pending, after_commit};
pub(crate) use replay::Replayer;

use crate::Error;
use crate::key::Pattern;
use crate::store::Store;

/// Deletes full targets through `store`; what did not land is queued on
/// `replay`. Returns how many keys went, or the error with the targets
/// that failed (already queued).
pub(crate) async fn run(
    store: &Arc<dyn Store>,
    replay: &Replayer,
    targets: &[Pattern],
) -> Result<u64, (Error, Vec<Pattern>)> {
    let result = targets::delete(store.as_ref(), targets, false).await;
    if let Err((_, failed)) = &result {
        replay.enqueue(failed.clone());
    }
    result
}
