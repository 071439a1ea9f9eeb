//! A circuit breaker in front of a remote store: while its backend keeps
//! failing, operations fail at once instead of each waiting out the
//! operation timeout.
//!
//! ## Behavior
//!
//! * **Closed** (the usual state): every operation goes to the backend. A
//!   failure that means the backend is unreachable or misbehaving at the
//!   transport level counts: a timeout, a failed connect, and a redis-rs
//!   error of the I/O, dropped or refused connection, TLS, authentication,
//!   parse, `CLUSTERDOWN`/`MASTERDOWN`/`LOADING` or cluster-connection kind.
//!   A success, and a logical error that proves the server answered (a
//!   `WRONGTYPE` reply, a value that is not an integer, a missing script),
//!   sets the count back to zero.
//! * After `threshold` failures in a row (5 by default) it **opens**: every
//!   operation fails at once with [`Error::CircuitOpen`], without touching
//!   the backend, so a cached call costs its body and nothing more. One
//!   warning is logged per opening, naming the last error and its
//!   [`Problem`].
//! * When it opens, a background task (spawned on the current tokio
//!   runtime, holding only a weak reference, so a dropped cache stops it)
//!   waits out the cool-down (250 ms by default), goes **half-open**, and
//!   probes the backend with one `PING` bounded by the operation timeout;
//!   operations keep failing at once meanwhile. A probe that succeeds
//!   closes the breaker (logged at debug: the tier's probes log the
//!   recovery once at info, with how long it lasted, `store/tier/reach.rs`); one that fails opens it again for another
//!   cool-down (not a longer one: a `PING` a second costs a down server
//!   nothing, and caching must resume within a cool-down of Redis coming
//!   back). If that task is gone (its runtime shut down),
//!   the first operation after the cool-down starts another.
//! * [`Store::ping`] goes through when a probe is due or running, and its
//!   success closes the breaker, so [`Cache::connect`](crate::Cache::connect)
//!   and a health check still reach the backend.
//! * Invalidations that fail because the breaker is open are queued and
//!   replayed like any other failed invalidation (see
//!   `invalidation/replay.rs`): they land once it has closed.
//! * Each failure's [`Problem`] is kept for [`Store::breaker`]'s snapshot;
//!   within one run of failures a plain timeout does not hide a more
//!   specific problem a connect attempt found (a TLS mismatch shows as
//!   timeouts on every operation, and as itself only to a probe).
//! * On a cluster the breaker covers the whole cluster: one primary that
//!   keeps failing opens it only if no call on another succeeds in between.
//! * What the tier in front of it (`store/tier/`) does in the background
//!   is not behind the breaker, and does not count: its clock probes
//!   ([`Store::probe`], bounded, and what tells it a node is back) and its
//!   subscription. Its announcements ([`Store::publish`]) and the
//!   announcement before a replay are operations like any other.

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use tokio::time::Instant;

use super::diagnose::{Problem, diagnose};
use super::{
    Acquire, BoxFuture, Claim, EntryId, Expect, Found, Probe, Store, TagVersion, Token, Versioned,
};
use crate::Error;

/// The longest cool-down a builder accepts.
pub(crate) const MAX_COOL_DOWN: Duration = Duration::from_secs(30);

/// When a breaker opens, and for how long at first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BreakerConfig {
    /// Failures in a row that open it; 0: no breaker.
    pub(crate) threshold: u32,
    /// The wait before each probe.
    pub(crate) cool_down: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            threshold: 5,
            cool_down: Duration::from_millis(250),
        }
    }
}

/// What a circuit breaker lets through.
///
/// ```
/// use cachemacro_runtime::BreakerState;
///
/// assert_eq!(serde_json::to_string(&BreakerState::HalfOpen).unwrap(), r#""halfopen""#);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum BreakerState {
    /// Every operation goes to the backend.
    Closed,
    /// Every operation fails at once; a probe is waiting for its cool-down.
    Open,
    /// A probe is on its way; other operations still fail at once.
    HalfOpen,
}

/// A snapshot of a cache's circuit breaker; see
/// [`Cache::breaker_health`](crate::Cache::breaker_health).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use cachemacro_runtime::{BreakerState, Cache};
///
/// // Nothing listens on port 1: a lazy cache builds all the same.
/// let cache = Cache::builder().url("redis://127.0.0.1:1").build().unwrap();
/// let health = cache.breaker_health().expect("Redis caches have a breaker");
/// assert_eq!(health.state, BreakerState::Closed);
/// assert!(Cache::memory().breaker_health().is_none());
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct BreakerHealth {
    /// Closed, open or half-open.
    pub state: BreakerState,
    /// Failures in a row (failed probes included); 0 after a success.
    pub consecutive_failures: u32,
    /// How many times it has opened.
    pub opened: u64,
    /// Operations failed at once while it was open, without a round trip.
    pub skipped: u64,
    /// The last failure, as text (kept after recovery).
    pub last_error: Option<String>,
    /// What the last failures say about the setup (kept after recovery).
    pub problem: Option<Problem>,
}

const CLOSED: u8 = 0;
const OPEN: u8 = 1;
const HALF_OPEN: u8 = 2;

/// A store behind a circuit breaker.
pub(crate) struct Breaker(Arc<Shared>);

struct Shared {
    inner: Arc<dyn Store>,
    config: BreakerConfig,
    /// The bound on one probe's `PING`.
    probe_timeout: Duration,
    /// `CLOSED`, `OPEN` or `HALF_OPEN`: the one load an operation makes
    /// while closed. Written with `record` locked.
    state: AtomicU8,
    /// Failures in a row; read without the lock on success.
    failures: AtomicU32,
    /// Operations refused while open.
    skipped: AtomicU64,
    record: Mutex<Record>,
    /// Whether a probe task runs.
    probing: AtomicBool,
}

/// What changes only on failures and transitions.
#[derive(Default)]
struct Record {
    /// When it last opened (`None` while closed).
    since: Option<Instant>,
    /// When the next probe is due.
    due: Option<Instant>,
    cool_down: Duration,
    opened: u64,
    last_error: Option<String>,
    problem: Option<Problem>,
}

/// Clears `probing` however the probe task ends, runtime shutdown included.
struct Probing(Weak<Shared>);

impl Drop for Probing {
    fn drop(&mut self) {
        if let Some(shared) = self.0.upgrade() {
            shared.probing.store(false, SeqCst);
        }
    }
}

impl Breaker {
    /// `inner` behind a breaker; `probe_timeout` bounds each probe.
    pub(crate) fn new(
        inner: Arc<dyn Store>,
        config: BreakerConfig,
        probe_timeout: Duration,
    ) -> Breaker {
        report(inner.as_ref(), CLOSED);
        Breaker(Arc::new(Shared {
            inner,
            config,
            probe_timeout,
            state: AtomicU8::new(CLOSED),
            failures: AtomicU32::new(0),
            skipped: AtomicU64::new(0),
            record: Mutex::new(Record::default()),
            probing: AtomicBool::new(false),
        }))
    }

    /// The snapshot behind [`Store::breaker`].
    pub(crate) fn health(&self) -> BreakerHealth {
        let shared = &self.0;
        let record = shared.lock();
        BreakerHealth {
            state: match shared.state.load(SeqCst) {
                CLOSED => BreakerState::Closed,
                OPEN => BreakerState::Open,
                _ => BreakerState::HalfOpen,
            },
            consecutive_failures: shared.failures.load(SeqCst),
            opened: record.opened,
            skipped: shared.skipped.load(SeqCst),
            last_error: record.last_error.clone(),
            problem: record.problem,
        }
    }

    /// Runs `op` on the backend while closed, counting its outcome;
    /// otherwise fails at once.
    fn guarded<'a, T: Send + 'a>(
        &'a self,
        op: impl FnOnce(&'a dyn Store) -> BoxFuture<'a, Result<T, Error>>,
    ) -> BoxFuture<'a, Result<T, Error>> {
        if self.0.state.load(SeqCst) != CLOSED {
            let refused = self.0.refuse();
            return Box::pin(std::future::ready(Err(refused)));
        }
        let request = op(self.0.inner.as_ref());
        Box::pin(async move {
            let result = request.await;
            self.0.observe(result.as_ref().err());
            result
        })
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Record> {
        self.record.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The error of an operation refused while open; starts a probe task
    /// if one is due and none runs.
    fn refuse(self: &Arc<Self>) -> Error {
        self.skipped.fetch_add(1, SeqCst);
        let now = Instant::now();
        let record = self.lock();
        if record.due.is_some_and(|due| now >= due) {
            self.spawn_probe();
        }
        Error::CircuitOpen {
            failures: self.failures.load(SeqCst),
            since: record.since.map(|t| now - t).unwrap_or_default(),
            last_error: record.last_error.clone().unwrap_or_default(),
            problem: record.problem,
        }
    }

    /// Counts an operation's outcome.
    fn observe(self: &Arc<Self>, error: Option<&Error>) {
        match error.filter(|e| trips(e)) {
            Some(e) => self.failed(e),
            None => {
                if self.failures.load(SeqCst) != 0 && self.state.load(SeqCst) == CLOSED {
                    self.failures.store(0, SeqCst);
                }
            }
        }
    }

    /// A failure: recorded, and counted; opens the breaker at the threshold.
    fn failed(self: &Arc<Self>, error: &Error) {
        let mut record = self.lock();
        if self.count(&mut record, error) {
            drop(record);
            self.spawn_probe();
        }
    }

    /// Records and counts a failure; true if that opened the breaker.
    fn count(&self, record: &mut Record, error: &Error) -> bool {
        let failures = self.failures.fetch_add(1, SeqCst).saturating_add(1);
        let problem = diagnose(error);
        // A timeout says less than what a connect attempt of the same run
        // of failures found (a TLS mismatch times out on every operation).
        let specific = record.problem.is_some_and(|p| p != Problem::Timeout);
        let vague = matches!(problem, None | Some(Problem::Timeout));
        if !(failures > 1 && specific && vague) {
            record.problem = problem;
        }
        record.last_error = Some(error.to_string());
        let opens = self.config.threshold > 0
            && failures >= self.config.threshold
            && self.state.load(SeqCst) == CLOSED;
        if opens {
            let now = Instant::now();
            self.state.store(OPEN, SeqCst);
            report(self.inner.as_ref(), OPEN);
            record.opened += 1;
            record.since = Some(now);
            record.cool_down = self.config.cool_down;
            record.due = Some(now + self.config.cool_down);
            tracing::warn!(
                backend = %self.inner.describe(),
                failures,
                error = %error,
                problem = record.problem.map(|p| p.to_string()),
                "the cache backend failed {failures} times in a row; calls skip it (running their bodies) until a probe gets an answer"
            );
        }
        opens
    }

    /// A probe's success: closes the breaker.
    fn close(&self) {
        let mut record = self.lock();
        self.failures.store(0, SeqCst);
        if self.state.swap(CLOSED, SeqCst) != CLOSED {
            report(self.inner.as_ref(), CLOSED);
            // At debug: the tier's probes log the recovery once, with how
            // long it lasted (`store/tier/reach.rs`).
            tracing::debug!(backend = %self.inner.describe(), "the cache backend answers again; the circuit breaker closed");
        }
        record.since = None;
        record.due = None;
    }

    /// A probe's failure: open again, for another cool-down; unless a ping
    /// closed the breaker while the probe ran (its failure is then stale).
    fn reopen(&self, error: &Error) {
        let mut record = self.lock();
        if self.state.load(SeqCst) == CLOSED {
            return;
        }
        self.count(&mut record, error);
        self.state.store(OPEN, SeqCst);
        report(self.inner.as_ref(), OPEN);
        record.cool_down = self.config.cool_down;
        record.due = Some(Instant::now() + record.cool_down);
        tracing::debug!(error = %error, cool_down = ?record.cool_down, "cache backend probe failed");
    }

    /// Starts the probe task unless one runs (or there is no runtime).
    fn spawn_probe(self: &Arc<Self>) {
        if self.probing.swap(true, SeqCst) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.probing.store(false, SeqCst);
            return;
        };
        // Made here, so that a task dropped before its first poll (its
        // runtime shut down) clears the flag too.
        let probing = Probing(Arc::downgrade(self));
        runtime.spawn(probe(probing));
    }
}

/// The probe task: waits for each cool-down, then pings, until a ping
/// answers or the breaker is dropped.
async fn probe(probing: Probing) {
    let weak = &probing.0;
    loop {
        let due = {
            let Some(shared) = weak.upgrade() else { return };
            let record = shared.lock();
            match (shared.state.load(SeqCst), record.due) {
                (CLOSED, _) | (_, None) => return,
                (_, Some(due)) => due,
            }
        };
        tokio::time::sleep_until(due).await;
        let Some(shared) = weak.upgrade() else { return };
        {
            let record = shared.lock();
            if shared.state.load(SeqCst) == CLOSED {
                return;
            }
            if record.due.is_none_or(|d| Instant::now() < d) {
                continue; // moved on meanwhile
            }
            shared.state.store(HALF_OPEN, SeqCst);
            report(shared.inner.as_ref(), HALF_OPEN);
        }
        match shared.inner.ping(shared.probe_timeout).await {
            Ok(()) => {
                shared.close();
                return;
            }
            Err(e) => shared.reopen(&e),
        }
    }
}

/// Reports a state to the `metrics` gauge `cachemacro_breaker_state`
/// (0 closed, 0.5 half-open, 1 open), labelled by backend.
fn report(_backend: &dyn Store, _state: u8) {
    #[cfg(feature = "metrics")]
    crate::stats::metrics::breaker_state(
        &_backend.describe(),
        match _state {
            CLOSED => 0.0,
            HALF_OPEN => 0.5,
            _ => 1.0,
        },
    );
}

/// Whether `error` means the backend is unreachable or misbehaving at the
/// transport level (rather than an answer the caller did not like).
pub(crate) fn trips(error: &Error) -> bool {
    match error {
        Error::Timeout(_) | Error::Connect { .. } => true,
        Error::Backend(source) => {
            let transport = source.downcast_ref::<redis::RedisError>().is_some_and(|e| {
                use redis::{ErrorKind as K, ServerErrorKind as S};
                e.is_io_error()
                    || e.is_connection_dropped()
                    || e.is_connection_refusal()
                    || e.is_timeout()
                    || matches!(
                        e.kind(),
                        K::AuthenticationFailed
                            | K::Parse
                            | K::ClusterConnectionNotFound
                            | K::Server(S::ClusterDown | S::MasterDown | S::BusyLoading)
                    )
            });
            transport || diagnose(error).is_some()
        }
        _ => false,
    }
}

impl Store for Breaker {
    fn describe(&self) -> String {
        self.0.inner.describe()
    }

    fn breaker(&self) -> Option<BreakerHealth> {
        Some(self.health())
    }

    fn ping(&self, limit: Duration) -> BoxFuture<'_, Result<(), Error>> {
        let shared = &self.0;
        if shared.state.load(SeqCst) == CLOSED {
            return self.guarded(|inner| inner.ping(limit));
        }
        let due = {
            let record = shared.lock();
            shared.state.load(SeqCst) == HALF_OPEN
                || record.due.is_none_or(|due| Instant::now() >= due)
        };
        if !due {
            return Box::pin(std::future::ready(Err(shared.refuse())));
        }
        Box::pin(async move {
            let result = shared.inner.ping(limit).await;
            match &result {
                Ok(()) => shared.close(),
                Err(e) => shared.failed(e),
            }
            result
        })
    }

    fn read_now(&self, key: &str, tags: &[String]) -> Option<Versioned> {
        if self.0.state.load(SeqCst) != CLOSED {
            return None;
        }
        self.0.inner.read_now(key, tags)
    }

    fn read<'a>(
        &'a self,
        key: &'a str,
        tags: &'a [String],
        beta: f64,
    ) -> BoxFuture<'a, Result<Versioned, Error>> {
        self.guarded(|inner| inner.read(key, tags, beta))
    }

    fn read_many<'a>(&'a self, keys: &'a [String]) -> BoxFuture<'a, Result<Vec<Found>, Error>> {
        self.guarded(|inner| inner.read_many(keys))
    }

    fn versions<'a>(
        &'a self,
        tags: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Option<TagVersion>>, Error>> {
        self.guarded(|inner| inner.versions(tags))
    }

    fn acquire<'a>(
        &'a self,
        key: &'a str,
        expect: Expect,
        token: Token,
        lease_ttl: Duration,
        tags: &'a [String],
        tag_ttl: Duration,
    ) -> BoxFuture<'a, Result<(Acquire, Vec<TagVersion>), Error>> {
        self.guarded(|inner| inner.acquire(key, expect, token, lease_ttl, tags, tag_ttl))
    }

    fn lock<'a>(
        &'a self,
        key: &'a str,
        id: EntryId,
        token: Token,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool, Error>> {
        self.guarded(|inner| inner.lock(key, id, token, ttl))
    }

    fn store<'a>(
        &'a self,
        key: &'a str,
        claim: Claim,
        bytes: Arc<Vec<u8>>,
        value: Option<crate::engine::Shared>,
        tags: &'a [String],
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool, Error>> {
        self.guarded(|inner| inner.store(key, claim, bytes, value, tags, ttl))
    }

    fn release<'a>(&'a self, key: &'a str, token: Token) -> BoxFuture<'a, Result<(), Error>> {
        self.guarded(|inner| inner.release(key, token))
    }

    fn set_many(
        &self,
        entries: Vec<(String, Vec<u8>)>,
        ttl: Duration,
    ) -> BoxFuture<'_, Result<(), Error>> {
        self.guarded(|inner| inner.set_many(entries, ttl))
    }

    fn set_if_absent<'a>(
        &'a self,
        key: &'a str,
        bytes: Vec<u8>,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool, Error>> {
        self.guarded(|inner| inner.set_if_absent(key, bytes, ttl))
    }

    fn delete<'a>(&'a self, keys: &'a [String]) -> BoxFuture<'a, Result<u64, Error>> {
        self.guarded(|inner| inner.delete(keys))
    }

    fn delete_prefix<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<u64, Error>> {
        self.guarded(|inner| inner.delete_prefix(prefix))
    }

    fn incr<'a>(
        &'a self,
        key: &'a str,
        delta: i64,
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<i64, Error>> {
        self.guarded(|inner| inner.incr(key, delta, ttl))
    }

    fn shared(&self) -> bool {
        self.0.inner.shared()
    }

    fn shards(&self) -> usize {
        self.0.inner.shards()
    }

    fn shard_of(&self, key: &str) -> usize {
        self.0.inner.shard_of(key)
    }

    fn probe(&self, limit: Duration) -> BoxFuture<'_, Vec<Probe>> {
        self.0.inner.probe(limit)
    }

    fn publish<'a>(
        &'a self,
        channel: &'a str,
        message: Vec<u8>,
    ) -> BoxFuture<'a, Result<(), Error>> {
        self.guarded(|inner| inner.publish(channel, message))
    }

    fn before_replay(&self) -> BoxFuture<'_, Result<(), Error>> {
        self.guarded(|inner| inner.before_replay())
    }

    fn listen_on(&self) -> Vec<redis::Client> {
        self.0.inner.listen_on()
    }
}

#[cfg(test)]
mod tests;
