//! The start-up check of a Redis cache built without waiting for Redis
//! ([`CacheBuilder::build`](crate::CacheBuilder::build),
//! [`Cache::from_env`](crate::Cache::from_env), the process default).
//!
//! ## Behavior
//!
//! One `PING` within the connect timeout. If it fails, one warning: the
//! cache cannot reach its backend (the URL, password removed), the error,
//! and what it says about the setup ([`Problem`](crate::Problem)), such as
//! "authentication failed: check the user name and password in the URL";
//! calls run uncached meanwhile, and the cache keeps retrying. Nothing is
//! logged when Redis answers.

use std::sync::Arc;
use std::time::Duration;

use crate::Error;
use crate::store::Store;
use crate::store::diagnose::diagnose;

/// Runs [`check`] on the current tokio runtime, if there is one.
pub(super) fn spawn_check(store: Arc<dyn Store>, limit: Duration) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    runtime.spawn(async move {
        let _ = check(store.as_ref(), limit).await;
    });
}

/// Pings `store` within `limit`; logs one warning if it does not answer.
pub(super) async fn check(store: &dyn Store, limit: Duration) -> Result<(), Error> {
    let result = store.ping(limit).await;
    if let Err(e) = &result {
        let backend = store.describe();
        let diagnosis = diagnose(e).map_or_else(
            || "the error does not say why".to_owned(),
            |p| p.to_string(),
        );
        tracing::warn!(
            backend = %backend,
            error = %e,
            diagnosis = %diagnosis,
            "the cache cannot reach {backend}: {diagnosis}. Calls run uncached (their bodies run) meanwhile, and the cache keeps retrying"
        );
    }
    result
}
