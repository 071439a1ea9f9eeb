//! `#[invalidates]`: runs the body between its invalidations.
//!
//! ## Behavior
//!
//! Each round of an `#[invalidates]` function's deletes runs in a
//! `cachemacro.invalidate` span at debug level, with `function`, `family`
//! (its templates as written, comma-separated, formatted only when the span
//! is enabled) and `outcome`: `ok`, or `failed` (queued for replay). No key
//! is recorded.

use tracing::Instrument as _;

use crate::Cache;
use crate::Error;
use crate::key::Pattern;

use super::InvalidationSite;

/// One pattern or tag of an `#[invalidates]`: its template, and what it built.
pub type Planned = (&'static str, (Pattern, Option<Error>));

/// `#[invalidates]` on a function not returning `Result`: always invalidates.
pub async fn invalidating<T, F: Future<Output = T>>(
    cache: &Cache,
    site: &'static InvalidationSite,
    plan: Vec<Planned>,
    body: F,
) -> T {
    around(cache, site, &plan, body, |_| true).await
}

/// `#[invalidates]` on a function returning `Result`: invalidates on `Ok`.
pub async fn invalidating_result<T, E, F: Future<Output = Result<T, E>>>(
    cache: &Cache,
    site: &'static InvalidationSite,
    plan: Vec<Planned>,
    body: F,
) -> Result<T, E> {
    around(cache, site, &plan, body, Result::is_ok).await
}

/// Runs the body between the invalidations: before it with `before = true`,
/// after it when `succeeded` says the write went through.
async fn around<O, F: Future<Output = O>>(
    cache: &Cache,
    site: &'static InvalidationSite,
    plan: &[Planned],
    body: F,
    succeeded: impl FnOnce(&O) -> bool,
) -> O {
    if site.before {
        run_invalidations(cache, site, plan).await;
    }
    let out = body.await;
    if succeeded(&out) {
        run_invalidations(cache, site, plan).await;
    }
    out
}

async fn run_invalidations(cache: &Cache, site: &'static InvalidationSite, plan: &[Planned]) {
    let span = tracing::debug_span!(
        "cachemacro.invalidate",
        function = site.function,
        family = %Templates(plan),
        outcome = tracing::field::Empty,
    );
    invalidations(cache, site, plan, &span)
        .instrument(span.clone())
        .await;
}

/// The templates of a plan, comma-separated, for a span's `family`.
struct Templates<'a>(&'a [Planned]);

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

async fn invalidations(
    cache: &Cache,
    site: &'static InvalidationSite,
    plan: &[Planned],
    span: &tracing::Span,
) {
    let mut targets = Vec::with_capacity(plan.len());
    for (template, (pattern, widened)) in plan {
        if let Some(e) = widened {
            tracing::warn!(function = site.function, template, error = %e,
                "an invalidation key could not be built; clearing everything under its literal prefix instead");
        }
        targets.push((*template, cache.target(pattern)));
    }
    let full: Vec<Pattern> = targets.iter().map(|(_, t)| t.clone()).collect();
    // If the caller is cancelled while the deletes are in flight (a handler
    // timeout, a dropped request), the guard queues them: after the body
    // ran, an invalidation is never lost silently.
    let guard = CancelGuard {
        cache,
        site,
        targets: Some(full.clone()),
    };
    // Whatever fails is queued for replay by `delete_targets`.
    let result = cache.delete_targets(&full).await;
    guard.disarm();
    span.record("outcome", if result.is_ok() { "ok" } else { "failed" });
    match result {
        Ok(_) => {
            tracing::trace!("cache invalidation landed");
            for (template, _) in &targets {
                cache
                    .invalidation_recorder(template)
                    .record_invalidation(true);
            }
        }
        Err((e, failed)) => {
            for (template, target) in &targets {
                let lost = failed.contains(target);
                cache
                    .invalidation_recorder(template)
                    .record_invalidation(!lost);
                if lost {
                    warn_lost(cache, site, template, target, &e);
                }
            }
        }
    }
}

/// Queues an invalidation whose call was dropped before it landed.
struct CancelGuard<'a> {
    cache: &'a Cache,
    site: &'static InvalidationSite,
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
                function = self.site.function,
                file = self.site.file,
                line = self.site.line,
                "an invalidating call was cancelled before its invalidations landed; queued for replay"
            );
            self.cache.enqueue(targets);
        }
    }
}

/// Never throttled: a failed invalidation means stale data until it lands.
fn warn_lost(cache: &Cache, site: &InvalidationSite, template: &str, target: &Pattern, e: &Error) {
    let key = match target {
        Pattern::Exact(k) => k.clone(),
        Pattern::Prefix(p) | Pattern::TagPrefix(p) => format!("{p}*"),
        Pattern::Tag(t) => t.clone(),
    };
    tracing::warn!(
        function = site.function,
        file = site.file,
        line = site.line,
        template,
        key,
        error = %e,
        backend = %cache.describe(),
        "cache invalidation failed; queued for replay, and this cache is bypassed until it lands"
    );
}
