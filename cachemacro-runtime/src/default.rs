//! The process default cache, used by attributes without `cache = …`.

use std::sync::OnceLock;

use crate::Cache;

static DEFAULT: OnceLock<Cache> = OnceLock::new();

/// Installs the cache that attributes without `cache = …` use.
///
/// Call it once at startup, before the first cached call. If a default is
/// already in place (set before, or initialised from the environment by a
/// first use) nothing changes and the given cache is handed back.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let cache = cachemacro_runtime::Cache::memory();
/// cachemacro_runtime::set_default(cache).expect("set once, at startup");
/// # }
/// ```
///
/// # Errors
/// The cache passed in, when a default was already installed.
pub fn set_default(cache: Cache) -> Result<(), Cache> {
    DEFAULT.set(cache)
}

/// The process default cache, initialising it from `CACHE_URL` on first use.
///
/// ## Behavior
/// Unset or empty `CACHE_URL`: in memory. A Redis URL: connects lazily and
/// keeps reconnecting, so a Redis that is down at boot makes calls run
/// uncached rather than fail. A malformed `CACHE_URL` is logged at error and
/// caching is bypassed (every call runs its body) rather than silently
/// falling back to a per-process memory cache, whose entries other processes
/// could not invalidate. With a Redis URL, the first use must happen inside
/// a tokio runtime; the default is meant for the process's main runtime.
pub fn default_cache() -> &'static Cache {
    DEFAULT.get_or_init(|| match Cache::from_env_lazy() {
        Ok(cache) => cache,
        Err(e) => {
            tracing::error!(error = %e, "CACHE_URL is unusable; caching is bypassed until it is fixed");
            Cache::unavailable(e.to_string())
        }
    })
}
