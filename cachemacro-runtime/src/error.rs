//! The one error type of the runtime.

use std::time::Duration;

use crate::Problem;

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
    /// The backend could not be reached when connecting. The message ends
    /// with what the failure says about the setup, when it says something
    /// (see [`Problem`]).
    #[error("could not connect to the cache at `{url}`: {source}{}", hint(.problem))]
    Connect {
        /// The URL, with any password removed.
        url: String,
        /// The underlying error (a `redis::RedisError` for Redis).
        source: BoxError,
        /// What the failure says about the setup: a wrong password, TLS on
        /// one side only, nothing listening, no answer.
        problem: Option<Problem>,
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
    /// The backend failed `failures` times in a row, so the cache's circuit
    /// breaker skips it: the operation failed at once, without a round
    /// trip, and keeps doing so until a probe gets an answer (see
    /// [`CacheBuilder::breaker`](crate::CacheBuilder::breaker)).
    #[error(
        "the cache backend failed {failures} times in a row, so calls skip it until a probe succeeds (skipped for {since:?}; last error: {last_error}){}",
        hint_beyond(.problem, .last_error)
    )]
    CircuitOpen {
        /// Failures in a row, failed probes included.
        failures: u32,
        /// How long the breaker has been open.
        since: Duration,
        /// The last failure, as text.
        last_error: String,
        /// What the failures say about the setup, if anything.
        problem: Option<Problem>,
    },
    /// The process default cache could not be configured (bad `CACHE_URL`).
    #[error("no usable cache backend: {0}")]
    Unavailable(String),
}

/// `; <problem>`, or nothing.
fn hint(problem: &Option<Problem>) -> String {
    problem.map(|p| format!("; {p}")).unwrap_or_default()
}

/// [`hint`], unless `text` (an error that carried it) says it already.
fn hint_beyond(problem: &Option<Problem>, text: &str) -> String {
    let hint = hint(problem);
    if text.ends_with(&hint) {
        return String::new();
    }
    hint
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
