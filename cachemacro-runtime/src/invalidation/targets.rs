//! Deleting full targets (exact keys and prefixes) from a store.

use crate::Error;
use crate::key::Pattern;
use crate::store::Store;

/// Deletes full targets: every exact key in one round trip, then each
/// prefix. Returns how many keys went, or the targets that did not land.
/// With `stop_on_error` (replays) the first failure ends the attempt, so an
/// outage costs one timeout, not one per prefix.
pub(crate) async fn delete(
    store: &dyn Store,
    targets: &[Pattern],
    stop_on_error: bool,
) -> Result<u64, (Error, Vec<Pattern>)> {
    let exact: Vec<String> = targets
        .iter()
        .filter_map(|t| match t {
            Pattern::Exact(k) => Some(k.clone()),
            _ => None,
        })
        .collect();
    let mut deleted = 0;
    let mut failed: Vec<Pattern> = Vec::new();
    let mut error = None;
    if !exact.is_empty() {
        match store.delete(&exact).await {
            Ok(n) => deleted += n,
            Err(e) => {
                failed.extend(exact.into_iter().map(Pattern::Exact));
                error = Some(e);
            }
        }
    }
    for target in targets {
        if let Pattern::Prefix(prefix) = target {
            if stop_on_error && error.is_some() {
                failed.push(target.clone());
                continue;
            }
            match store.delete_prefix(prefix).await {
                Ok(n) => deleted += n,
                Err(e) => {
                    failed.push(target.clone());
                    error = Some(e);
                }
            }
        }
    }
    match error {
        None => Ok(deleted),
        Some(e) => Err((e, failed)),
    }
}
