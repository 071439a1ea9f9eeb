//! `#[invalidates]`: runs the body between its invalidations.

use crate::Cache;
use crate::Error;
use crate::invalidation::{Origin, land, pending};
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
/// after it when `succeeded` says the write went through. Inside a
/// [`Pending`](crate::Pending) scope the second set is recorded there, to
/// land after the transaction commits.
async fn around<O, F: Future<Output = O>>(
    cache: &Cache,
    site: &'static InvalidationSite,
    plan: &[Planned],
    body: F,
    succeeded: impl FnOnce(&O) -> bool,
) -> O {
    let origin = Origin {
        function: site.function,
        file: site.file,
        line: site.line,
    };
    if site.before {
        land(cache, &origin, &targets(cache, site, plan)).await;
    }
    let out = body.await;
    if succeeded(&out) {
        let targets = targets(cache, site, plan);
        if !pending::record(cache, origin, &targets) {
            land(cache, &origin, &targets).await;
        }
    }
    out
}

/// The full targets of a call, each with its template.
fn targets(
    cache: &Cache,
    site: &InvalidationSite,
    plan: &[Planned],
) -> Vec<(&'static str, Pattern)> {
    plan.iter()
        .map(|(template, (pattern, widened))| {
            if let Some(e) = widened {
                tracing::warn!(function = site.function, template, error = %e,
                    "an invalidation key could not be built; clearing everything under its literal prefix instead");
            }
            (*template, cache.target(pattern))
        })
        .collect()
}
