//! The breaker's state machine, on paused time, over a store whose
//! failures the test chooses (the Redis side is in `tests/breaker.rs`).

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::*;
use crate::store::memory::MemoryStore;

/// How the backend under the breaker behaves.
#[derive(Clone, Copy, Debug)]
enum Mode {
    Up,
    /// Every operation times out.
    Down,
    /// The server answers, with an error about the data.
    Logical,
    /// Connecting fails with this problem.
    Misconfigured(Problem),
    /// A ping takes its whole limit, then times out.
    Hang,
}

/// A memory store that fails as told, counting what reaches it.
struct Flaky {
    memory: MemoryStore,
    mode: Mutex<Mode>,
    /// Operations (pings included) that reached this store.
    calls: AtomicUsize,
    /// When each ping arrived.
    pings: Mutex<Vec<Instant>>,
}

impl Flaky {
    fn new() -> Arc<Flaky> {
        Arc::new(Flaky {
            memory: MemoryStore::new(1 << 20),
            mode: Mutex::new(Mode::Up),
            calls: AtomicUsize::new(0),
            pings: Mutex::new(Vec::new()),
        })
    }

    fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    fn calls(&self) -> usize {
        self.calls.load(SeqCst)
    }

    fn pings(&self) -> Vec<Instant> {
        self.pings.lock().unwrap().clone()
    }

    fn failure(&self) -> Option<Error> {
        match *self.mode.lock().unwrap() {
            Mode::Up => None,
            Mode::Down | Mode::Hang => Some(Error::Timeout(Duration::from_millis(100))),
            Mode::Logical => Some(Error::NotAnInteger("k".into())),
            Mode::Misconfigured(problem) => Some(Error::Connect {
                url: "rediss://cache:6379".into(),
                source: "no answer within 1s".into(),
                problem: Some(problem),
            }),
        }
    }

    fn call<'a, T: Send + 'a>(
        &'a self,
        up: impl FnOnce(&'a MemoryStore) -> BoxFuture<'a, Result<T, Error>>,
    ) -> BoxFuture<'a, Result<T, Error>> {
        self.calls.fetch_add(1, SeqCst);
        match self.failure() {
            Some(e) => Box::pin(std::future::ready(Err(e))),
            None => up(&self.memory),
        }
    }
}

impl Store for Flaky {
    fn describe(&self) -> String {
        "flaky".into()
    }

    fn ping(&self, limit: Duration) -> BoxFuture<'_, Result<(), Error>> {
        self.pings.lock().unwrap().push(Instant::now());
        if matches!(*self.mode.lock().unwrap(), Mode::Hang) {
            self.calls.fetch_add(1, SeqCst);
            return Box::pin(async move {
                tokio::time::sleep(limit).await;
                Err(Error::Timeout(limit))
            });
        }
        self.call(|m| m.ping(limit))
    }

    fn read<'a>(
        &'a self,
        key: &'a str,
        tags: &'a [String],
        beta: f64,
    ) -> BoxFuture<'a, Result<Versioned, Error>> {
        self.call(|m| m.read(key, tags, beta))
    }

    fn read_many<'a>(&'a self, keys: &'a [String]) -> BoxFuture<'a, Result<Vec<Found>, Error>> {
        self.call(|m| m.read_many(keys))
    }

    fn versions<'a>(
        &'a self,
        tags: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Option<TagVersion>>, Error>> {
        self.call(|m| m.versions(tags))
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
        self.call(|m| m.acquire(key, expect, token, lease_ttl, tags, tag_ttl))
    }

    fn lock<'a>(
        &'a self,
        key: &'a str,
        id: EntryId,
        token: Token,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool, Error>> {
        self.call(|m| m.lock(key, id, token, ttl))
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
        self.call(|m| m.store(key, claim, bytes, value, tags, ttl))
    }

    fn release<'a>(&'a self, key: &'a str, token: Token) -> BoxFuture<'a, Result<(), Error>> {
        self.call(|m| m.release(key, token))
    }

    fn set_many(
        &self,
        entries: Vec<(String, Vec<u8>)>,
        ttl: Duration,
    ) -> BoxFuture<'_, Result<(), Error>> {
        self.call(|m| m.set_many(entries, ttl))
    }

    fn set_if_absent<'a>(
        &'a self,
        key: &'a str,
        bytes: Vec<u8>,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool, Error>> {
        self.call(|m| m.set_if_absent(key, bytes, ttl))
    }

    fn delete<'a>(&'a self, keys: &'a [String]) -> BoxFuture<'a, Result<u64, Error>> {
        self.call(|m| m.delete(keys))
    }

    fn delete_prefix<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<u64, Error>> {
        self.call(|m| m.delete_prefix(prefix))
    }

    fn incr<'a>(
        &'a self,
        key: &'a str,
        delta: i64,
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<i64, Error>> {
        self.call(|m| m.incr(key, delta, ttl))
    }
}

const PROBE: Duration = Duration::from_millis(100);

fn breaker(inner: &Arc<Flaky>, threshold: u32) -> Breaker {
    let config = BreakerConfig {
        threshold,
        cool_down: Duration::from_secs(1),
    };
    Breaker::new(inner.clone(), config, PROBE)
}

/// One operation through the breaker.
async fn read(b: &Breaker) -> Result<(), Error> {
    b.read("k", &[], 0.0).await.map(drop)
}

/// Lets spawned tasks (the probe) run up to where they wait.
async fn settle() {
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test(start_paused = true)]
async fn it_opens_after_the_threshold_and_then_skips_the_backend() {
    let inner = Flaky::new();
    let b = breaker(&inner, 3);
    inner.set(Mode::Down);
    for n in 1..=3 {
        assert_eq!(b.health().state, BreakerState::Closed);
        assert!(matches!(read(&b).await, Err(Error::Timeout(_))));
        assert_eq!(b.health().consecutive_failures, n);
    }
    let health = b.health();
    assert_eq!((health.state, health.opened), (BreakerState::Open, 1));
    assert_eq!(health.problem, Some(Problem::Timeout));
    assert_eq!(inner.calls(), 3);

    for _ in 0..100 {
        match read(&b).await {
            Err(Error::CircuitOpen {
                failures,
                last_error,
                ..
            }) => {
                assert_eq!(failures, 3);
                assert!(last_error.contains("timed out"), "{last_error}");
            }
            other => panic!("expected CircuitOpen, got {other:?}"),
        }
    }
    let deleted = b.delete(&["k".to_owned()]).await;
    assert!(matches!(deleted, Err(Error::CircuitOpen { .. })));
    assert_eq!(inner.calls(), 3, "nothing reached the backend while open");
}

#[tokio::test(start_paused = true)]
async fn answers_reset_the_count_whether_they_are_values_or_logical_errors() {
    let inner = Flaky::new();
    let b = breaker(&inner, 3);
    for reset in [Mode::Logical, Mode::Up] {
        inner.set(Mode::Down);
        for _ in 0..2 {
            let _ = read(&b).await;
        }
        assert_eq!(b.health().consecutive_failures, 2);
        inner.set(reset);
        let _ = read(&b).await;
        let health = b.health();
        assert_eq!(
            (health.state, health.consecutive_failures),
            (BreakerState::Closed, 0),
            "{reset:?} proves the server answered"
        );
    }
    assert_eq!(b.health().opened, 0);
}

#[tokio::test(start_paused = true)]
async fn a_probe_after_the_cool_down_closes_it() {
    let inner = Flaky::new();
    let b = breaker(&inner, 1);
    inner.set(Mode::Down);
    let _ = read(&b).await;
    assert_eq!(b.health().state, BreakerState::Open);
    inner.set(Mode::Up);

    tokio::time::sleep(Duration::from_millis(999)).await;
    settle().await;
    assert!(inner.pings().is_empty(), "no probe before the cool-down");
    assert_eq!(b.health().state, BreakerState::Open);

    tokio::time::sleep(Duration::from_millis(1)).await;
    settle().await;
    assert_eq!(inner.pings().len(), 1);
    let health = b.health();
    assert_eq!(
        (health.state, health.consecutive_failures),
        (BreakerState::Closed, 0)
    );
    assert!(read(&b).await.is_ok(), "operations go through again");
}

#[tokio::test(start_paused = true)]
async fn failed_probes_retry_every_cool_down_and_recovery_takes_at_most_one() {
    let inner = Flaky::new();
    let b = breaker(&inner, 1);
    inner.set(Mode::Down);
    let _ = read(&b).await;
    let opened = Instant::now();
    // Probes every second, however long it stays down.
    tokio::time::sleep(Duration::from_secs(7)).await;
    settle().await;
    let waits: Vec<u64> = std::iter::once(opened)
        .chain(inner.pings())
        .collect::<Vec<_>>()
        .windows(2)
        .map(|w| (w[1] - w[0]).as_secs())
        .collect();
    assert_eq!(waits, [1, 1, 1, 1, 1, 1, 1]);
    let health = b.health();
    assert_eq!(health.state, BreakerState::Open);
    assert_eq!(health.consecutive_failures, 8, "1 operation and 7 probes");
    assert_eq!(health.opened, 1, "a failed probe is not a new opening");

    inner.set(Mode::Up);
    tokio::time::sleep(Duration::from_secs(1)).await;
    settle().await;
    assert_eq!(b.health().state, BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn ping_goes_through_only_when_a_probe_is_due_or_running() {
    let inner = Flaky::new();
    let b = breaker(&inner, 1);
    inner.set(Mode::Down);
    let _ = read(&b).await;
    let calls = inner.calls();
    assert!(matches!(
        b.ping(PROBE).await,
        Err(Error::CircuitOpen { .. })
    ));
    assert_eq!(
        inner.calls(),
        calls,
        "not due: refused without a round trip"
    );

    // The probe hangs (half-open); a ping meanwhile goes through and its
    // success closes the breaker.
    inner.set(Mode::Hang);
    tokio::time::sleep(Duration::from_secs(1)).await;
    settle().await;
    assert_eq!(b.health().state, BreakerState::HalfOpen);
    assert!(matches!(read(&b).await, Err(Error::CircuitOpen { .. })));
    inner.set(Mode::Up);
    assert!(b.ping(PROBE).await.is_ok());
    assert_eq!(b.health().state, BreakerState::Closed);

    // The hung probe's late failure does not reopen it.
    tokio::time::sleep(PROBE).await;
    settle().await;
    let health = b.health();
    assert_eq!((health.state, health.opened), (BreakerState::Closed, 1));
}

#[tokio::test(start_paused = true)]
async fn a_connect_attempts_problem_outlives_the_timeouts_after_it() {
    let inner = Flaky::new();
    let b = breaker(&inner, 10);
    inner.set(Mode::Misconfigured(Problem::TlsToPlainServer));
    let _ = b.ping(PROBE).await;
    inner.set(Mode::Down);
    for _ in 0..3 {
        let _ = read(&b).await;
    }
    let health = b.health();
    assert_eq!(health.consecutive_failures, 4);
    assert_eq!(health.problem, Some(Problem::TlsToPlainServer));
    assert!(health.last_error.unwrap().contains("timed out"));

    // A new run of failures starts afresh.
    inner.set(Mode::Up);
    let _ = read(&b).await;
    inner.set(Mode::Down);
    let _ = read(&b).await;
    assert_eq!(b.health().problem, Some(Problem::Timeout));
}

#[tokio::test(start_paused = true)]
async fn a_dropped_breaker_stops_its_probe() {
    let inner = Flaky::new();
    let b = breaker(&inner, 1);
    inner.set(Mode::Down);
    let _ = read(&b).await;
    let shared = Arc::downgrade(&b.0);
    drop(b);
    assert!(
        shared.upgrade().is_none(),
        "the probe task holds no strong ref"
    );
    tokio::time::sleep(Duration::from_secs(60)).await;
    settle().await;
    assert!(inner.pings().is_empty());
}

#[test]
fn a_probe_lost_with_its_runtime_is_started_again() {
    let paused = || {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap()
    };
    let inner = Flaky::new();
    let b = breaker(&inner, 1);
    inner.set(Mode::Down);
    let first = paused();
    first.block_on(async {
        let _ = read(&b).await;
    });
    assert!(b.0.probing.load(SeqCst));
    drop(first); // cancels the probe task
    assert!(!b.0.probing.load(SeqCst));

    inner.set(Mode::Up);
    paused().block_on(async {
        tokio::time::sleep(Duration::from_secs(1)).await;
        // Due: refused, and a probe starts.
        assert!(matches!(read(&b).await, Err(Error::CircuitOpen { .. })));
        settle().await;
        assert_eq!(b.health().state, BreakerState::Closed);
        assert!(read(&b).await.is_ok());
    });
}
