//! One invalidating call's targets, landed: deleted, counted, and whatever
//! fails logged and queued for replay, even when the caller is dropped
//! mid-way.
//!
//! ## Behavior
//!
//! Each landing runs in a `cachemacro.invalidate` span at debug level, with
//! `function`, `family` (its templates as written, comma-separated,
//! formatted only when the span is enabled) and `outcome`: `ok`, or
//! `failed` (queued for replay). No key is recorded.

use tracing::Instrument as _;

use crate::Cache;
use crate::Error;
use crate::key::Pattern;

/// Where an invalidation was written, for its log lines.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Origin {
    pub(crate) function: &'static str,
    pub(crate) file: &'static str,
    pub(crate) line: u32,
}

/// Deletes `targets` (full: namespaced), each with the template it counts
/// under. Never fails: what did not land is logged at warn, counted in
/// `invalidation_errors` and queued for replay by the cache.
pub(crate) async fn land(cache: &Cache, origin: &Origin, targets: &[(&'static str, Pattern)]) {
    let span = tracing::debug_span!(
        "cachemacro.invalidate",
        function = origin.function,
        family = %Templates(targets),
        outcome = tracing::field::Empty,
    );
    deletes(cache, origin, targets, &span)
        .instrument(span.clone())
        .await;
}

/// The templates of a landing, comma-separated, for a span's `family`.
struct Templates<'a>(&'a [(&'static str, Pattern)]);

impl std::fmt::Display for Templates<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (template, _)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(template)?;
        }
        Ok(())
    }
}

async fn deletes(
    cache: &Cache,
    origin: &Origin,
    targets: &[(&'static str, Pattern)],
    span: &tracing::Span,
) {
    let full: Vec<Pattern> = targets.iter().map(|(_, t)| t.clone()).collect();
    // If the caller is cancelled while the deletes are in flight (a handler
    // timeout, a dropped request), the guard queues them: after the body
    // ran, an invalidation is never lost silently.
    let guard = CancelGuard {
        cache,
        origin,
        targets: Some(full.clone()),
    };
    // Whatever fails is queued for replay by `delete_targets`.
    let result = cache.delete_targets(&full).await;
    guard.disarm();
    span.record("outcome", if result.is_ok() { "ok" } else { "failed" });
    match result {
        Ok(_) => {
            tracing::trace!("cache invalidation landed");
            for (template, _) in targets {
                cache
                    .invalidation_recorder(template)
                    .record_invalidation(true);
            }
        }
        Err((e, failed)) => {
            for (template, target) in targets {
                let lost = failed.contains(target);
                cache
                    .invalidation_recorder(template)
                    .record_invalidation(!lost);
                if lost {
                    warn_lost(cache, origin, template, target, &e);
                }
            }
        }
    }
}

/// Queues an invalidation whose call was dropped before it landed.
struct CancelGuard<'a> {
    cache: &'a Cache,
    origin: &'a Origin,
    targets: Option<Vec<Pattern>>,
}

impl CancelGuard<'_> {
    fn disarm(mut self) {
        self.targets = None;
    }
}

impl Drop for CancelGuard<'_> {
    fn drop(&mut self) {
        if let Some(targets) = self.targets.take() {
            tracing::warn!(
                function = self.origin.function,
                file = self.origin.file,
                line = self.origin.line,
                "an invalidating call was cancelled before its invalidations landed; queued for replay"
            );
            self.cache.enqueue(targets);
        }
    }
}

/// Never throttled: a failed invalidation means stale data until it lands.
fn warn_lost(cache: &Cache, origin: &Origin, template: &str, target: &Pattern, e: &Error) {
    let key = match target {
        Pattern::Exact(k) => k.clone(),
        Pattern::Prefix(p) | Pattern::TagPrefix(p) => format!("{p}*"),
        Pattern::Tag(t) => t.clone(),
    };
    tracing::warn!(
        function = origin.function,
        file = origin.file,
        line = origin.line,
        template,
        key,
        error = %e,
        backend = %cache.describe(),
        "cache invalidation failed; queued for replay, and this cache is bypassed until it lands"
    );
}
