//! What every handler shares: the database pool and the cache handle.

use std::sync::Arc;

use cachemacro_runtime::Cache;
use metrics_exporter_prometheus::PrometheusHandle;
use sqlx::SqlitePool;

/// One instance of the app. Cached and invalidating functions are given
/// this instance's [`Cache`] (`cache = app.cache`), never the process
/// default, so several instances in one process stay apart.
pub struct App {
    /// The database.
    pub pool: SqlitePool,
    /// This instance's cache.
    pub cache: Cache,
    /// `/metrics` renders this, when the binary installed a recorder.
    pub metrics: Option<PrometheusHandle>,
}

/// The router's state.
pub type AppState = Arc<App>;

impl App {
    /// An instance over `pool` and `cache`, without `/metrics`.
    pub fn new(pool: SqlitePool, cache: Cache) -> App {
        App {
            pool,
            cache,
            metrics: None,
        }
    }

    /// Serves `/metrics` from this recorder's handle.
    #[must_use]
    pub fn with_metrics(mut self, handle: PrometheusHandle) -> App {
        self.metrics = Some(handle);
        self
    }
}
