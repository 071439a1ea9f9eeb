//! Test-only fault injection, for `tests/freshness.rs`: proof that the
//! stale-read checker catches a missing invalidation.
//!
//! `PIXEL_STUDIO_FAULT=skip-invalidation:<write>` (e.g. `like_image`) hands
//! that write a throwaway in-memory cache instead of the instance's, so its
//! `#[invalidates]` clears nothing a read can see. Unset (always, outside
//! that test), [`cache_for`] returns the instance's cache.

use std::sync::LazyLock;

use cachemacro_runtime::Cache;

/// The cache `write` invalidates in: `cache`, unless a fault says otherwise.
pub fn cache_for<'a>(cache: &'a Cache, write: &str) -> &'a Cache {
    static FAULT: LazyLock<Option<(String, Cache)>> = LazyLock::new(|| {
        let fault = std::env::var("PIXEL_STUDIO_FAULT").ok()?;
        let write = fault.strip_prefix("skip-invalidation:")?.to_owned();
        tracing::warn!(%write, "fault injected: this write invalidates nothing");
        Some((write, Cache::memory()))
    });
    match &*FAULT {
        Some((skipped, throwaway)) if skipped == write => throwaway,
        _ => cache,
    }
}
