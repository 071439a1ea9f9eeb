//! The stale-read checker (`pixel_studio::checker`) against real app
//! instances (this crate's bin, as OS processes on one SQLite file) on real
//! Redis: one instance; two with the local tier; two while Redis is killed
//! and restarted; a Redis Cluster of its own losing a primary; and an app
//! with one invalidation skipped, which the checker must catch (and the same
//! workload without the fault, which must pass). The local-tier runs also
//! check that the tier served (`local_hits` in each instance's
//! `/cache/stats`), and the Redis restart that the run went on after it.
//!
//! The tests take turns (one lock): each loads both cores for its run.

use std::io::{BufRead as _, BufReader};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use cachemacro_tests::{RedisCluster, RedisServer};
use pixel_studio::checker::{self, Config, Progress, Report};

/// The local tier's announcement window with the default 250 ms operation
/// timeout: a local hit needs a heartbeat sent within the last heartbeat
/// (62.5 ms) and half operation timeout (125 ms) to have been answered.
/// The tier counts on a millisecond clock (`confirm_for_ms` = 187, of
/// truncated milliseconds), so the bound is just under 188 ms.
const WINDOW: Duration = Duration::from_millis(188);

/// How long an instance may take to say it listens.
const START_WITHIN: Duration = Duration::from_secs(30);

/// One test at a time: each runs servers, instances and 16 clients.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A scratch directory, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Scratch {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("pixel-studio-fresh-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch directory");
        Scratch(dir)
    }

    fn db(&self) -> PathBuf {
        self.0.join("pixel_studio.db")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// An app instance (the crate's bin) on a free loopback port; killed on
/// drop, and with this test binary in any case.
struct App {
    child: Child,
    url: String,
}

impl App {
    fn start(db: &Path, cache_url: &str, fault: Option<&str>) -> App {
        let mut command = Command::new(env!("CARGO_BIN_EXE_pixel_studio"));
        command
            .env("PIXEL_STUDIO_ADDR", "127.0.0.1:0")
            .env("PIXEL_STUDIO_DB", db)
            .env("CACHE_URL", cache_url)
            .env_remove("PIXEL_STUDIO_FAULT")
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "error".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(fault) = fault {
            command.env("PIXEL_STUDIO_FAULT", fault);
        }
        let parent = std::process::id();
        // SAFETY: prctl and getppid are async-signal-safe; the closure
        // allocates nothing.
        unsafe {
            command.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                if u32::try_from(libc::getppid()).ok() != Some(parent) {
                    return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
                }
                Ok(())
            });
        }
        let mut child = command.spawn().expect("start the pixel_studio bin");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut told = false;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if !told && let Some(url) = line.strip_prefix("listening on ") {
                    told = tx.send(url.trim().to_owned()).is_ok();
                }
            }
        });
        let url = match rx.recv_timeout(START_WITHIN) {
            Ok(url) => url,
            Err(_) => {
                let _ = child.kill();
                panic!("the app did not say it listens within {START_WITHIN:?} ({cache_url})");
            }
        };
        App { child, url }
    }
}

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `CACHE_URL` with the in-process tier on.
fn with_local_tier(url: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}local_capacity=10000")
}

/// A run of at least `duration`, 150 writes carried out and 75 of them
/// changing state (a slow machine runs longer, up to 90 s: under load the
/// two-instance runs make under 3 writes/s), 16 readers; fewer than 1 000
/// reads, 150 writes, or 75 changing writes fail it (the defaults, which
/// `freshness_check` requires too).
fn config(apps: &[&App], duration: Duration, window: Duration, seed: u64) -> Config {
    Config {
        instances: apps.iter().map(|a| a.url.clone()).collect(),
        duration,
        max_duration: Duration::from_secs(90),
        clients: 16,
        window,
        seed,
        ..Config::default()
    }
}

/// Polls `check` every 20 ms for up to `within`; panics naming `what`.
async fn wait_for(what: &str, within: Duration, check: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + within;
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "never happened within {within:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Local hits an instance served, summed over its families in its
/// `GET /cache/stats` (the runtime's `Stats`: `families: {template: {kind,
/// hits, local_hits, …}}`, totals at the top level).
async fn local_hits(app: &App) -> u64 {
    let url = format!("{}/cache/stats", app.url);
    let stats: serde_json::Value = reqwest::get(&url)
        .await
        .and_then(reqwest::Response::error_for_status)
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
        .json()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let families = stats["families"]
        .as_object()
        .unwrap_or_else(|| panic!("no families in {stats}"));
    let sum = families
        .values()
        .map(|f| f["local_hits"].as_u64().unwrap_or(0))
        .sum();
    println!(
        "  {}: local hits {sum} over its families ({} in the totals)",
        app.url, stats["local_hits"]
    );
    sum
}

/// The local tier served on every instance: a run of the local-tier
/// configurations that never hit it would check nothing of it.
async fn assert_local_tier_served(name: &str, apps: &[&App]) {
    for app in apps {
        let hits = local_hits(app).await;
        assert!(hits > 0, "{name}: {} served no local hit", app.url);
    }
}

/// Enough was checked (the report's minimums), and nothing was stale
/// beyond the window.
fn assert_fresh(name: &str, report: &Report) {
    println!("{name}: {report}");
    assert!(report.passed(), "{name}: {report}");
    assert!(report.min_reads >= 1_000 && report.min_writes >= 150);
    assert!(report.min_changing_writes >= 75);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_instance_on_redis_serves_no_stale_read() {
    let _serial = SERIAL.lock().await;
    let Some(redis) = RedisServer::start_controllable() else {
        return;
    };
    let scratch = Scratch::new();
    let app = App::start(&scratch.db(), &redis.url(), None);
    let report = checker::run(
        config(&[&app], Duration::from_secs(15), Duration::ZERO, 1),
        Arc::default(),
    )
    .await
    .expect("the checker runs");
    assert_fresh("one instance, Redis", &report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_with_local_tiers_are_stale_only_within_the_window() {
    let _serial = SERIAL.lock().await;
    let Some(redis) = RedisServer::start_controllable() else {
        return;
    };
    let scratch = Scratch::new();
    let url = with_local_tier(&redis.url());
    let a = App::start(&scratch.db(), &url, None);
    let b = App::start(&scratch.db(), &url, None);
    let report = checker::run(
        config(&[&a, &b], Duration::from_secs(15), WINDOW, 2),
        Arc::default(),
    )
    .await
    .expect("the checker runs");
    assert_fresh("two instances, local tier + Redis", &report);
    assert_local_tier_served("two instances, local tier + Redis", &[&a, &b]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_and_restarted_mid_run_serves_no_stale_read() {
    let _serial = SERIAL.lock().await;
    // Its data survives the kill: entries that writes during the outage
    // could not delete come back with it, and must not be served.
    let Some(mut redis) = RedisServer::start_persistent() else {
        return;
    };
    let scratch = Scratch::new();
    let url = with_local_tier(&redis.url());
    let a = App::start(&scratch.db(), &url, None);
    let b = App::start(&scratch.db(), &url, None);
    let progress = Arc::new(Progress::default());
    let run = tokio::spawn(checker::run(
        config(&[&a, &b], Duration::from_secs(20), WINDOW, 3),
        progress.clone(),
    ));
    let within = Duration::from_secs(60);
    wait_for("50 writes before the kill", within, || {
        progress.writes() >= 50
    })
    .await;
    redis.stop();
    let at_kill = progress.writes();
    wait_for("30 writes while Redis is down", within, || {
        progress.writes() >= at_kill + 30
    })
    .await;
    redis.restart();
    let (restarted, at_restart) = (progress.writes(), progress.carried_out());
    let report = run
        .await
        .expect("the checker task")
        .expect("the checker runs");
    let name = "two instances, local tier, Redis killed and restarted";
    println!(
        "killed after {at_kill} writes, restarted after {} ({at_restart} carried out); {} carried out after the restart",
        restarted,
        report.writes - at_restart
    );
    assert!(
        report.writes >= at_restart + 20,
        "the run ended before it checked Redis back: {report}"
    );
    assert_fresh(name, &report);
    assert_local_tier_served(name, &[&a, &b]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_losing_a_primary_mid_run_serves_no_stale_read() {
    let _serial = SERIAL.lock().await;
    let Some(cluster) = RedisCluster::start() else {
        return;
    };
    let scratch = Scratch::new();
    let url = with_local_tier(&cluster.url());
    let a = App::start(&scratch.db(), &url, None);
    let b = App::start(&scratch.db(), &url, None);
    let progress = Arc::new(Progress::default());
    let run = tokio::spawn(checker::run(
        config(&[&a, &b], Duration::from_secs(25), WINDOW, 4),
        progress.clone(),
    ));
    wait_for("50 writes before the kill", Duration::from_secs(60), || {
        progress.writes() >= 50
    })
    .await;
    let primary = cluster.primaries().await[0].clone();
    cluster.kill(&primary);
    let at_kill = progress.writes();
    cluster.wait_for_failover().await;
    let at_failover = progress.writes();
    let report = run
        .await
        .expect("the checker task")
        .expect("the checker runs");
    println!("killed primary {primary} after {at_kill} writes; failed over after {at_failover}");
    assert!(
        report.writes > at_failover,
        "the run ended before the failover was over: {report}"
    );
    let name = "two instances, local tier, Redis Cluster losing a primary";
    assert_fresh(name, &report);
    assert_local_tier_served(name, &[&a, &b]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_checker_catches_a_skipped_invalidation() {
    let _serial = SERIAL.lock().await;
    let Some(redis) = RedisServer::start_controllable() else {
        return;
    };
    let scratch = Scratch::new();
    let app = App::start(
        &scratch.db(),
        &redis.url(),
        Some("skip-invalidation:like_image"),
    );
    let report = checker::run(
        config(&[&app], Duration::from_secs(10), Duration::ZERO, 5),
        Arc::default(),
    )
    .await
    .expect("the checker runs");
    drop(app);
    drop(redis);
    println!("like_image without its invalidation: {report}");
    assert!(!report.passed(), "the checker missed it: {report}");
    assert!(report.stale_beyond_window > 0, "{report}");
    assert!(
        report.violations.iter().any(|v| v.path.ends_with("/likes")
            || v.path.starts_with("/images/")
            || v.path.starts_with("/explore")),
        "the stale reads are of the skipped invalidation's reads: {report}"
    );

    // The control: the same seed and workload without the fault (a fresh
    // database and Redis) has nothing stale, so what the faulty run
    // caught is the skipped invalidation's.
    let Some(redis) = RedisServer::start_controllable() else {
        return;
    };
    let scratch = Scratch::new();
    let app = App::start(&scratch.db(), &redis.url(), None);
    let control = checker::run(
        config(&[&app], Duration::from_secs(10), Duration::ZERO, 5),
        Arc::default(),
    )
    .await
    .expect("the checker runs");
    assert_eq!(control.stale_beyond_window, 0, "the control: {control}");
    assert_fresh("the control: like_image with its invalidation", &control);
}
