//! `cargo run -p pixel_studio` (the equivalent of `cargo run --example
//! pixel_studio`): the app on `PIXEL_STUDIO_ADDR` (default
//! `127.0.0.1:3000`; port 0 picks a free one), over the SQLite file
//! `PIXEL_STUDIO_DB` (default `pixel_studio.db`; `:memory:` for a
//! throwaway one) and the cache `CACHE_URL` names (unset: in memory).
//!
//! Prints one line on stdout once it accepts connections,
//! `listening on http://ADDR`; logs go to stderr (`RUST_LOG` filters).

use std::sync::Arc;

use cachemacro_runtime::Cache;
use metrics_exporter_prometheus::PrometheusBuilder;
use pixel_studio::{App, db, router};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();

    let path = std::env::var("PIXEL_STUDIO_DB").unwrap_or_else(|_| "pixel_studio.db".into());
    let addr = std::env::var("PIXEL_STUDIO_ADDR").unwrap_or_else(|_| "127.0.0.1:3000".into());
    let pool = db::open(&path)
        .await
        .map_err(|e| format!("opening database {path:?}: {e}"))?;
    // Before the cache: a family takes its metric handles from the
    // recorder in force at its first call.
    let metrics = PrometheusBuilder::new().install_recorder()?;
    let cache = Cache::from_env()
        .await
        .map_err(|e| format!("CACHE_URL: {e}"))?;
    tracing::info!(db = %path, cache = %cache.describe(), "starting");

    let app = Arc::new(App::new(pool, cache).with_metrics(metrics));
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .map_err(|e| format!("binding {addr}: {e}"))?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, router(app))
        .with_graceful_shutdown(shutdown())
        .await?;
    Ok(())
}

async fn shutdown() {
    let _ = tokio::signal::ctrl_c().await;
}
