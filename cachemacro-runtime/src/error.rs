//! The one error type of the runtime.

use std::time::Duration;

/// A boxed error from a backend or codec.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What went wrong in a cache operation.
///
/// Generated code never returns it to callers: a failing cache means the
/// function body runs. The manual API on [`Cache`](crate::Cache) returns it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The cache URL could not be parsed or has an unsupported scheme.
    #[error("invalid cache URL `{url}`: {reason}")]
    InvalidUrl {
        /// The URL as given, with any password removed.
        url: String,
        /// Why it was rejected.
        reason: String,
    },
    /// The backend could not be reached when connecting.
    #[error("could not connect to the cache at `{url}`: {source}")]
    Connect {
        /// The URL, with any password removed.
        url: String,
        /// The underlying error (a `redis::RedisError` for Redis).
        source: BoxError,
    },
    /// The backend returned an error (a `redis::RedisError` for Redis).
    #[error("cache backend error: {0}")]
    Backend(#[source] BoxError),
    /// The backend did not answer within the operation timeout.
    #[error("cache operation timed out after {0:?}")]
    Timeout(Duration),
    /// A value could not be encoded by its codec.
    #[error("could not encode value for the cache: {0}")]
    Encode(#[source] BoxError),
    /// A `<name:hash>` placeholder's value could not be serialized.
    #[error("could not build cache key: {0}")]
    Key(#[source] BoxError),
    /// `incr` found a value that is not an integer.
    #[error("value at `{0}` is not an integer")]
    NotAnInteger(String),
    /// Failed invalidations are waiting to be replayed; until they land the
    /// cache is bypassed, so that it never serves what they should have cleared.
    #[error(
        "cache invalidations are waiting to be replayed; the cache is bypassed until they land"
    )]
    InvalidationsPending,
    /// A builder setting is out of range.
    #[error("invalid cache setting `{setting}`: {reason}")]
    Config {
        /// The setting, as the builder method names it.
        setting: &'static str,
        /// The range it takes.
        reason: String,
    },
    /// The process default cache could not be configured (bad `CACHE_URL`).
    #[error("no usable cache backend: {0}")]
    Unavailable(String),
}

/// A load given up at its `hard_timeout` with no old value to serve
/// instead. A `#[cached(hard_timeout = …)]` function returns
/// `Result<T, E>` with `E: From<LoadTimeout>`, and gets `Err(E::from(…))`.
///
/// ```
/// use cachemacro_runtime::{LoadTimeout, cached};
///
/// #[derive(Debug)]
/// enum DbError {
///     Slow(LoadTimeout),
/// }
///
/// impl From<LoadTimeout> for DbError {
///     fn from(t: LoadTimeout) -> Self {
///         DbError::Slow(t)
///     }
/// }
///
/// #[cached(key = "report:<id>", ttl = "5m", hard_timeout = "50ms")]
/// async fn report(id: u64) -> Result<String, DbError> {
///     tokio::time::sleep(std::time::Duration::from_secs(60)).await; // a stuck query
///     Ok(format!("report {id}"))
/// }
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// let err = report(1).await.unwrap_err();
/// assert!(matches!(err, DbError::Slow(t) if t.after.as_millis() == 50));
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("`{function}` did not load within its hard timeout of {after:?}")]
#[non_exhaustive]
pub struct LoadTimeout {
    /// The cached function, with its module path.
    pub function: &'static str,
    /// The hard timeout it ran out of.
    pub after: Duration,
}
