//! The circuit breaker in front of Redis, and the diagnosis of a
//! misconfigured one, on real redis-servers: slowed down by a `Proxy`,
//! spoken to in the wrong protocol, or given the wrong password.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cachemacro_runtime::{BreakerState, Cache, Error, Problem, cached, invalidates};
use cachemacro_tests::{Proxy, RedisServer, eventually};

const OP_TIMEOUT: Duration = Duration::from_millis(100);
/// What the function body takes.
const BODY: Duration = Duration::from_millis(20);
/// Scheduling slack on a busy 2-core machine: far below the proxy's latency.
const SLACK: Duration = Duration::from_millis(400);

/// The "database" row of each user.
static ROWS: [AtomicU64; 4] = [const { AtomicU64::new(1) }; 4];

#[cached(key = "profile:<id>", ttl = "1h", cache = cache)]
async fn profile(cache: &Cache, id: usize) -> u64 {
    tokio::time::sleep(BODY).await;
    ROWS[id].load(SeqCst)
}

#[invalidates("profile:<id>", cache = cache)]
async fn edit_profile(cache: &Cache, id: usize) {
    ROWS[id].fetch_add(1, SeqCst);
}

/// A hang guard, not a timing assertion: a cache call must come back.
async fn bounded<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(10), f)
        .await
        .expect("the call came back instead of hanging")
}

/// The breaker's state, failures in a row, and times opened.
fn breaker(cache: &Cache) -> (BreakerState, u32, u64) {
    let h = cache.breaker_health().expect("a Redis cache has a breaker");
    (h.state, h.consecutive_failures, h.opened)
}

async fn exists(server: &RedisServer, key: &str) -> bool {
    let mut raw = server.raw().await;
    redis::cmd("EXISTS")
        .arg(server.stored_key(key))
        .query_async(&mut raw)
        .await
        .unwrap()
}

/// Calls `profile(cache, id)` until the breaker opens (at most `calls`
/// times), each returning the body's value.
async fn call_until_open(cache: &Cache, id: usize, calls: usize) {
    for _ in 0..calls {
        assert_eq!(bounded(profile(cache, id)).await, ROWS[id].load(SeqCst));
        if breaker(cache).0 == BreakerState::Open {
            return;
        }
    }
    panic!(
        "the breaker did not open: {:?}",
        cache.breaker_health().unwrap()
    );
}

#[tokio::test]
async fn a_slow_redis_opens_the_breaker_and_calls_stop_waiting_for_it() {
    let Some(server) = RedisServer::start_controllable() else {
        return;
    };
    let proxy = Proxy::start(server.addr());
    let cache = Cache::builder()
        .url(proxy.url())
        .operation_timeout(OP_TIMEOUT)
        .connect_timeout(Duration::from_millis(500))
        // A cool-down long enough that no probe runs while the calls
        // below are counted.
        .breaker(5, Duration::from_secs(3))
        .connect()
        .await
        .expect("connect through the proxy");
    assert_eq!(profile(&cache, 0).await, 1);
    assert_eq!(profile(&cache, 0).await, 1);
    assert_eq!(cache.stats().hits, 1);

    proxy.set_latency(Duration::from_secs(2));
    for n in 1..=5 {
        let started = Instant::now();
        assert_eq!(bounded(profile(&cache, 0)).await, 1, "the body's value");
        let took = started.elapsed();
        assert!(
            took < OP_TIMEOUT + BODY + SLACK,
            "call {n} waited {took:?}: the operation timeout, not the 2s latency"
        );
        let expected = if n < 5 {
            (BreakerState::Closed, n, 0)
        } else {
            (BreakerState::Open, 5, 1)
        };
        assert_eq!(breaker(&cache), expected, "after call {n}");
    }
    let health = cache.breaker_health().unwrap();
    assert_eq!(health.problem, Some(Problem::Timeout));

    // Open: each call's one read is refused without a round trip, and
    // the body runs.
    let skipped = health.skipped;
    let errors = cache.stats().errors;
    let mut slowest = Duration::ZERO;
    for _ in 0..50 {
        let started = Instant::now();
        assert_eq!(bounded(profile(&cache, 0)).await, 1);
        slowest = slowest.max(started.elapsed());
    }
    let health = cache.breaker_health().unwrap();
    assert_eq!(
        (health.state, health.skipped),
        (BreakerState::Open, skipped + 50),
        "every call skipped Redis"
    );
    assert_eq!(cache.stats().errors, errors + 50, "and nothing else failed");
    assert!(matches!(
        cache.get::<u64>("profile:0").await,
        Err(Error::CircuitOpen { failures: 5, .. })
    ));
    assert!(slowest < OP_TIMEOUT, "no call paid a timeout: {slowest:?}");
    let reported = cache.health();
    assert_eq!(reported.breaker.map(|b| b.state), Some(BreakerState::Open));
    assert!(!reported.reachable);

    proxy.set_latency(Duration::ZERO);
    eventually("a probe closed the breaker", async || {
        breaker(&cache).0 == BreakerState::Closed
    })
    .await;
    assert_eq!(breaker(&cache), (BreakerState::Closed, 0, 1));
    // Entries stored before the outage are refilled once the tier trusts
    // the node again (`tier/trust.rs`); then calls hit.
    eventually("hits resumed", async || {
        let hits = cache.stats().hits;
        assert_eq!(profile(&cache, 0).await, 1);
        cache.stats().hits == hits + 1
    })
    .await;
}

#[tokio::test]
async fn invalidations_made_while_open_land_once_it_closes() {
    let Some(server) = RedisServer::start_controllable() else {
        return;
    };
    let proxy = Proxy::start(server.addr());
    let cache = Cache::builder()
        .url(proxy.url())
        .operation_timeout(Duration::from_millis(200))
        .connect_timeout(Duration::from_millis(500))
        .breaker(3, Duration::from_millis(500))
        .connect()
        .await
        .expect("connect through the proxy");
    let before = ROWS[1].load(SeqCst);
    assert_eq!(profile(&cache, 1).await, before);
    assert!(exists(&server, "profile:1").await);

    proxy.cut();
    call_until_open(&cache, 1, 10).await;
    bounded(edit_profile(&cache, 1)).await;
    let s = cache.stats();
    assert_eq!((s.invalidation_errors, s.invalidations_queued), (1, 1));
    assert!(
        exists(&server, "profile:1").await,
        "the delete never reached Redis"
    );
    // Queued: the stale entry is never served, open or not.
    assert_eq!(bounded(profile(&cache, 1)).await, before + 1);

    proxy.restore();
    eventually("the breaker closed and the queue replayed", async || {
        breaker(&cache).0 == BreakerState::Closed && cache.stats().invalidations_replayed == 1
    })
    .await;
    assert!(!exists(&server, "profile:1").await, "the replay deleted it");
    eventually("hits resumed, with the new value", async || {
        let hits = cache.stats().hits;
        assert_eq!(profile(&cache, 1).await, before + 1);
        cache.stats().hits == hits + 1
    })
    .await;
}

/// Collects formatted tracing output.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    /// Captures warnings on this thread (a current-thread runtime's tasks
    /// included) while the guard lives.
    fn capture() -> (Logs, tracing::subscriber::DefaultGuard) {
        let logs = Logs::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::WARN)
            .finish();
        (logs, tracing::subscriber::set_default(subscriber))
    }

    fn lines_with(&self, needle: &str) -> Vec<String> {
        String::from_utf8_lossy(&self.0.lock().unwrap())
            .lines()
            .filter(|l| l.contains(needle))
            .map(str::to_owned)
            .collect()
    }
}

#[tokio::test(flavor = "current_thread")]
async fn rediss_to_a_plain_server_is_diagnosed_and_stops_costing_the_timeout() {
    let Some(server) = RedisServer::start_controllable() else {
        return;
    };
    let (logs, _guard) = Logs::capture();
    let url = server.url().replace("redis://", "rediss://");
    let op_timeout = Duration::from_millis(250);
    let cache = Cache::builder()
        .url(&url)
        .operation_timeout(op_timeout)
        .connect_timeout(Duration::from_millis(500))
        .build()
        .expect("a lazy cache builds");

    // Before it opens, each call pays the operation timeout: the server
    // never answers the TLS handshake.
    call_until_open(&cache, 2, 10).await;
    eventually("the diagnosis", async || {
        cache.breaker_health().unwrap().problem == Some(Problem::TlsToPlainServer)
    })
    .await;
    for _ in 0..20 {
        let started = Instant::now();
        assert_eq!(bounded(profile(&cache, 2)).await, ROWS[2].load(SeqCst));
        assert!(started.elapsed() < op_timeout, "capped below the timeout");
    }
    match cache.get::<u64>("profile:2").await {
        Err(e @ Error::CircuitOpen { .. }) => {
            assert!(e.to_string().contains("does not speak TLS"), "{e}")
        }
        other => panic!("expected CircuitOpen, got {other:?}"),
    }

    let start_up = logs.lines_with("the cache cannot reach");
    assert_eq!(start_up.len(), 1, "one start-up warning: {start_up:?}");
    assert!(start_up[0].contains(&url), "{}", start_up[0]);
    assert!(
        start_up[0].contains("the server does not speak TLS: use redis://"),
        "{}",
        start_up[0]
    );
    assert_eq!(
        logs.lines_with("until a probe gets an answer").len(),
        1,
        "one warning per opening"
    );
}

#[tokio::test]
async fn a_plain_url_to_a_tls_server_is_diagnosed() {
    let Some(server) = RedisServer::start_tls() else {
        return;
    };
    let url = server.url().replace("rediss://", "redis://");
    let err = Cache::connect(&url).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Connect {
                problem: Some(Problem::PlainToTlsServer),
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().ends_with("use rediss://"), "{err}");
}

#[tokio::test]
async fn a_wrong_password_is_diagnosed() {
    let Some(server) = RedisServer::start_with_password("s3cret") else {
        return;
    };
    Cache::connect(&server.url())
        .await
        .expect("the right password connects");

    let wrong = server.url().replace("s3cret", "hunter2");
    let missing = server.url().replace(":s3cret@", "");
    for url in [&wrong, &missing] {
        let err = Cache::connect(url).await.unwrap_err();
        assert!(
            matches!(
                err,
                Error::Connect {
                    problem: Some(Problem::AuthFailed),
                    ..
                }
            ),
            "{url}: {err:?}"
        );
        let message = err.to_string();
        assert!(message.contains("authentication failed"), "{message}");
        assert!(!message.contains("hunter2"), "redacted: {message}");
    }

    let cache = Cache::builder()
        .url(&wrong)
        .build()
        .expect("a lazy cache builds");
    call_until_open(&cache, 3, 10).await;
    let health = cache.breaker_health().unwrap();
    assert_eq!(health.problem, Some(Problem::AuthFailed), "{health:?}");
    assert!(
        !health.last_error.unwrap_or_default().contains("hunter2"),
        "redacted"
    );
}
