//! The stale-read checker: a randomized concurrent workload over running
//! instances of the app, every read judged against the database states
//! the app's oracle (`POST /db/snapshot`) reported between writes.
//!
//! ## How a run goes
//!
//! 1. Seeds a small world through the app's own actions (users, sets of
//!    generated images, collections, follows, likes, comments) and records
//!    state `S_0`.
//! 2. Until the deadline, reader tasks read random paths of the world on
//!    random instances, fully concurrently, while writer tasks take turns
//!    (one checker-side mutex) at write `k`: note its start `b_k`, send a
//!    random action to a random instance, note its completion `c_k` at the
//!    answer, ask the oracle for every read path in one request (state
//!    `S_k`), then let the next writer in.
//! 3. Judges every read by the rule in [`history`](self::history): fresh iff
//!    its value is that of a state between the last write completed before
//!    it was sent and the last one started before it was answered. A stale
//!    read is *within the window* only if a window is set (the announcement
//!    window of a local tier), it is no older than the window, its path is
//!    one the local tier may serve (not a `local = false` family), and
//!    every write that changed the path since its value was obsoleted ran
//!    on another instance than the reader's (see `within_window`).
//!
//! Every request is bounded by a timeout; a failed or timed-out read is
//! no read, and is counted; too many of them fail the run. A write that
//! was sent and got no answer (timeout, broken connection) ends the run
//! with an error: it may take effect at any later time, which breaks the
//! serialized writes the rule relies on. A write answered 5xx (or never
//! sent) is complete, and is counted as failed.

mod history;
mod http;
mod report;
mod universe;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use serde_json::Value;

use history::{Bounds, History, Verdict};
use http::{Failure, Http, Written};
pub use report::{Report, Violation};
use universe::{Action, Universe};

/// What a run does.
#[derive(Debug, Clone)]
pub struct Config {
    /// Base URLs of the instances (`http://127.0.0.1:3001`).
    pub instances: Vec<String>,
    /// How long the workload runs after seeding, at least.
    pub duration: Duration,
    /// Past `duration`, the run goes on until this many writes were
    /// carried out (a slow machine still checks enough), but never past
    /// `max_duration`; a run with fewer fails.
    pub min_writes: u64,
    /// Likewise for the writes after which some read path's state changed
    /// (refused writes and writes that change nothing check nothing);
    /// `None`: half of `min_writes`.
    pub min_changing_writes: Option<u64>,
    /// A run with fewer reads fails.
    pub min_reads: u64,
    pub max_duration: Duration,
    /// Concurrent readers.
    pub clients: usize,
    /// Writer tasks (they take turns).
    pub writers: usize,
    /// How stale a read on another instance than the writer's may be (the
    /// local tier's announcement window); zero: no stale read at all.
    pub window: Duration,
    pub seed: u64,
    /// Users in the world.
    pub users: usize,
    /// Bound of each read.
    pub read_timeout: Duration,
    /// Bound of each write and snapshot.
    pub write_timeout: Duration,
    /// Failed reads above this share of all reads fail the run.
    pub max_error_ratio: f64,
    /// Failed writes (5xx, or not sent) above this share of all writes
    /// fail the run (a write sent and not answered ends it at once).
    pub max_failed_write_ratio: f64,
    /// Violations kept in detail.
    pub keep: usize,
}

impl Config {
    /// The changing writes a run needs.
    pub fn min_changing_writes(&self) -> u64 {
        self.min_changing_writes.unwrap_or(self.min_writes / 2)
    }
}

impl Default for Config {
    fn default() -> Config {
        Config {
            instances: vec!["http://127.0.0.1:3000".into()],
            duration: Duration::from_secs(20),
            min_writes: 150,
            min_changing_writes: None,
            min_reads: 1_000,
            max_duration: Duration::from_secs(60),
            clients: 32,
            writers: 4,
            window: Duration::ZERO,
            seed: 1,
            users: 8,
            read_timeout: Duration::from_secs(5),
            write_timeout: Duration::from_secs(10),
            max_error_ratio: 0.02,
            max_failed_write_ratio: 0.02,
            keep: 5,
        }
    }
}

/// Live counters of a run, for a caller that acts mid-run (a test that
/// kills Redis once enough writes were checked).
#[derive(Debug, Default)]
pub struct Progress {
    reads: AtomicU64,
    writes: AtomicU64,
    carried_out: AtomicU64,
    changing: AtomicU64,
    failed: AtomicU64,
    /// Set once seeding is done and the workload runs.
    running: AtomicBool,
}

impl Progress {
    pub fn reads(&self) -> u64 {
        self.reads.load(Relaxed)
    }

    /// Writes done (carried out or refused).
    pub fn writes(&self) -> u64 {
        self.writes.load(Relaxed)
    }

    /// Writes the app carried out (2xx).
    pub fn carried_out(&self) -> u64 {
        self.carried_out.load(Relaxed)
    }

    /// Writes after which some read path's state changed.
    pub fn changing_writes(&self) -> u64 {
        self.changing.load(Relaxed)
    }

    pub fn failed_requests(&self) -> u64 {
        self.failed.load(Relaxed)
    }

    pub fn running(&self) -> bool {
        self.running.load(Relaxed)
    }
}

/// One read, as sent and answered.
struct Read {
    path: String,
    instance: usize,
    t0: Instant,
    t1: Instant,
    value: Value,
    bounds: Bounds,
}

/// The counts guarded by one lock.
#[derive(Default)]
struct Tally {
    report: Report,
    /// Reads waiting for a state being recorded when they were answered.
    pending: Vec<Read>,
}

/// The writers' turn: the world and their random source.
struct Turn {
    universe: Universe,
    rng: StdRng,
}

struct Run {
    config: Config,
    http: Http,
    start: Instant,
    history: Mutex<History>,
    paths: RwLock<Arc<Vec<String>>>,
    turn: tokio::sync::Mutex<Turn>,
    tally: Mutex<Tally>,
    progress: Arc<Progress>,
    /// A writer could not record a state: everybody stops.
    abort: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// JSON cut to `max` bytes for a report.
fn cut(value: &Value, max: usize) -> String {
    let mut s = value.to_string();
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push('…');
    }
    s
}

/// Runs the checker against `config.instances`: seeds, runs the workload
/// for `config.duration`, and judges every read. `Err` when it could not
/// run at all (the app does not answer, seeding or the oracle failed).
pub async fn run(config: Config, progress: Arc<Progress>) -> Result<Report, String> {
    if config.instances.is_empty() {
        return Err("no instance to check".into());
    }
    let http = Http::new(config.read_timeout)?;
    let mut rng = StdRng::seed_from_u64(config.seed);
    let universe = seed(&http, &config, &mut rng).await?;
    let paths = universe.read_paths();
    let first = &config.instances[0];
    let s0 = http
        .snapshot(first, &paths, config.write_timeout)
        .await
        .map_err(|e| format!("the oracle on {first}: {e}"))?;
    let mut history = History::default();
    history.store(0, s0);
    let start = Instant::now();
    let run = Arc::new(Run {
        http,
        start,
        history: Mutex::new(history),
        paths: RwLock::new(Arc::new(paths)),
        turn: tokio::sync::Mutex::new(Turn { universe, rng }),
        tally: Mutex::new(Tally {
            report: Report {
                window: config.window,
                max_error_ratio: config.max_error_ratio,
                max_failed_write_ratio: config.max_failed_write_ratio,
                min_reads: config.min_reads,
                min_writes: config.min_writes,
                min_changing_writes: config.min_changing_writes(),
                ..Report::default()
            },
            pending: Vec::new(),
        }),
        progress: progress.clone(),
        abort: AtomicBool::new(false),
        config,
    });
    progress.running.store(true, Relaxed);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..run.config.clients {
        let seed = run.config.seed ^ (0x9e37_79b9_7f4a_7c15_u64.wrapping_mul(i as u64 + 1));
        tasks.spawn(read_loop(run.clone(), StdRng::seed_from_u64(seed)));
    }
    for _ in 0..run.config.writers.max(1) {
        tasks.spawn(write_loop(run.clone()));
    }
    let mut failed = None;
    while let Some(ended) = tasks.join_next().await {
        match ended {
            Ok(Ok(())) => {}
            Ok(Err(why)) => failed = failed.or(Some(why)),
            Err(e) => failed = failed.or(Some(format!("a checker task failed: {e}"))),
        }
    }
    progress.running.store(false, Relaxed);
    if let Some(why) = failed {
        return Err(why);
    }
    Ok(finish(&run))
}

/// Builds the world through the first instance.
async fn seed(http: &Http, config: &Config, rng: &mut StdRng) -> Result<Universe, String> {
    let mut universe = Universe::default();
    let base = &config.instances[0];
    for round in 0.. {
        let actions = universe.seed_round(round, config.users, rng);
        if actions.is_empty() {
            break;
        }
        for action in actions {
            let written = http
                .write(
                    base,
                    action.method.clone(),
                    &action.path,
                    action.body.as_ref(),
                    config.write_timeout,
                )
                .await;
            match written {
                Ok(Written::Done(response)) => universe.apply(&action, &response),
                Ok(Written::Refused(status)) => {
                    return Err(format!(
                        "seeding: {} was refused (HTTP {status})",
                        action.describe()
                    ));
                }
                Err(e) => return Err(format!("seeding: {} on {base}: {e}", action.describe())),
            }
        }
    }
    if universe.users() == 0 {
        return Err("seeding created no user".into());
    }
    Ok(universe)
}

async fn read_loop(run: Arc<Run>, mut rng: StdRng) -> Result<(), String> {
    let instances = run.config.instances.len();
    while !run.over() {
        let paths = run
            .paths
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let path = paths.choose(&mut rng).expect("the world has read paths");
        let instance = rng.random_range(0..instances);
        let t0 = Instant::now();
        let answer = run.http.read(&run.config.instances[instance], path).await;
        let t1 = Instant::now();
        let value = match answer {
            Ok(value) => value,
            Err(failure) => {
                run.failed(format!("GET {path} on instance {instance}"), failure, false);
                continue;
            }
        };
        let (bounds, verdict) = {
            let history = lock(&run.history);
            let bounds = history.bounds(t0, t1);
            (bounds, history.judge(path, &value, bounds, t0))
        };
        run.progress.reads.fetch_add(1, Relaxed);
        let read = Read {
            path: path.clone(),
            instance,
            t0,
            t1,
            value,
            bounds,
        };
        run.account(read, verdict);
    }
    Ok(())
}

async fn write_loop(run: Arc<Run>) -> Result<(), String> {
    let instances = run.config.instances.len();
    loop {
        let mut turn = run.turn.lock().await;
        if run.over() {
            return Ok(());
        }
        let Turn { universe, rng } = &mut *turn;
        let action = universe.random_action(rng);
        let instance = rng.random_range(0..instances);
        let base = &run.config.instances[instance];
        let k = lock(&run.history).begin(instance, action.describe());
        let written = run
            .http
            .write(
                base,
                action.method.clone(),
                &action.path,
                action.body.as_ref(),
                run.config.write_timeout,
            )
            .await;
        if let Err(failure @ (Failure::Timeout | Failure::Transport(_))) = &written {
            // The write was sent and no answer came: it may still be
            // running, and commit and invalidate at any later time. Writes
            // are no longer serialized, and no completion time is sound:
            // `c_k` now would let later writes and snapshots run while it
            // lands (states S_k.. would not be the ones between writes),
            // and `c_k = +inf` would stop `k` at `k - 1` for every later
            // read (completions are searched in order), judging it against
            // S_{k-1}..: lenient without end, the false negatives this
            // checker exists to rule out. So the run ends as "could not
            // check" (an `Err`, which fails it), without releasing the
            // writers' turn as if the write had completed.
            run.abort.store(true, Relaxed);
            run.progress.writes.fetch_add(1, Relaxed);
            return Err(format!(
                "could not check: write {k} ({}) on instance {instance} {failure}: \
                 when it takes effect is unknown, so writes are no longer serialized",
                action.describe()
            ));
        }
        lock(&run.history).complete(k);
        run.wrote(&action, instance, written, universe);
        let paths = universe.read_paths();
        match run.snapshot(instance, &paths).await {
            Ok(state) => {
                if lock(&run.history).store(k, state) {
                    run.progress.changing.fetch_add(1, Relaxed);
                }
            }
            Err(why) => {
                run.abort.store(true, Relaxed);
                return Err(why);
            }
        }
        *run.paths.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(paths);
    }
}

impl Run {
    /// Whether the workload is over: past its duration with enough writes,
    /// past its longest duration, or aborted.
    fn over(&self) -> bool {
        let ran = self.start.elapsed();
        self.abort.load(Relaxed)
            || ran >= self.config.max_duration.max(self.config.duration)
            || (ran >= self.config.duration
                && self.progress.carried_out() >= self.config.min_writes
                && self.progress.changing_writes() >= self.config.min_changing_writes())
    }

    /// The oracle on `instance`, or on the others if it fails (a few
    /// tries: the run cannot go on without the state).
    async fn snapshot(
        &self,
        instance: usize,
        paths: &[String],
    ) -> Result<std::collections::HashMap<String, Value>, String> {
        let instances = &self.config.instances;
        let mut last = None;
        for attempt in 0..3 * instances.len() {
            let base = &instances[(instance + attempt) % instances.len()];
            match self
                .http
                .snapshot(base, paths, self.config.write_timeout)
                .await
            {
                Ok(state) => return Ok(state),
                Err(e) => {
                    last = Some(format!("the oracle on {base}: {e}"));
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
        Err(last.unwrap_or_default())
    }

    fn wrote(
        &self,
        action: &Action,
        instance: usize,
        written: Result<Written, Failure>,
        universe: &mut Universe,
    ) {
        self.progress.writes.fetch_add(1, Relaxed);
        match written {
            Ok(Written::Done(response)) => {
                universe.apply(action, &response);
                self.progress.carried_out.fetch_add(1, Relaxed);
                lock(&self.tally).report.writes += 1;
            }
            Ok(Written::Refused(_)) => lock(&self.tally).report.refused_writes += 1,
            Err(failure) => self.failed(
                format!("{} on instance {instance}", action.describe()),
                failure,
                true,
            ),
        }
    }

    fn failed(&self, what: String, failure: Failure, write: bool) {
        self.progress.failed.fetch_add(1, Relaxed);
        let mut tally = lock(&self.tally);
        let report = &mut tally.report;
        match (write, &failure) {
            (true, _) => report.failed_writes += 1,
            (false, Failure::Timeout) => report.read_timeouts += 1,
            (false, _) => report.read_errors += 1,
        }
        if report.errors.len() < self.config.keep {
            let at = self.start.elapsed();
            report.errors.push(format!("+{at:?} {what}: {failure}"));
        }
    }

    /// Counts a judged read.
    fn account(&self, read: Read, verdict: Verdict) {
        match verdict {
            Verdict::Fresh => {}
            Verdict::Pending => lock(&self.tally).pending.push(read),
            Verdict::Stale { age, by } => {
                let within =
                    within_window(&lock(&self.history), &read, age, by, self.config.window);
                let mut tally = lock(&self.tally);
                let report = &mut tally.report;
                report.max_age = report.max_age.max(Some(age));
                let keep = if within {
                    report.stale_within_window += 1;
                    report.within_window.len() < self.config.keep
                } else {
                    report.stale_beyond_window += 1;
                    report.violations.len() < self.config.keep
                };
                drop(tally);
                if keep {
                    let detail = self.detail(&read, Some(age), Some(by));
                    let mut tally = lock(&self.tally);
                    if within {
                        tally.report.within_window.push(detail);
                    } else {
                        tally.report.violations.push(detail);
                    }
                }
            }
            Verdict::Unexplained => {
                let keep = {
                    let mut tally = lock(&self.tally);
                    tally.report.stale_beyond_window += 1;
                    tally.report.unexplained += 1;
                    tally.report.violations.len() < self.config.keep
                };
                if keep {
                    let detail = self.detail(&read, None, None);
                    lock(&self.tally).report.violations.push(detail);
                }
            }
        }
    }

    fn detail(&self, read: &Read, age: Option<Duration>, by: Option<usize>) -> Violation {
        let history = lock(&self.history);
        let since = |t: Instant| t.saturating_duration_since(self.start);
        let expected = history
            .allowed(&read.path, read.bounds)
            .unwrap_or_default()
            .iter()
            .map(|v| cut(v, 400))
            .collect();
        let obsoleted_by = by.map(|by| {
            let w = history.write(by);
            let took = w.complete.map_or("-".into(), |c| {
                format!("{:?}", c.saturating_duration_since(w.begin))
            });
            format!(
                "write {by} ({} on {}), started +{:?}, completed +{:?} (took {took}: the age \
                 is counted from its completion as the checker saw it)",
                w.action,
                self.config.instances[w.instance],
                since(w.begin),
                w.complete.map(since).unwrap_or_default()
            )
        });
        Violation {
            path: read.path.clone(),
            instance: self.config.instances[read.instance].clone(),
            value: cut(&read.value, 400),
            expected,
            age,
            sent: since(read.t0),
            answered: since(read.t1),
            obsoleted_by,
        }
    }
}

/// Read routes whose families are kept out of the local tier (`local =
/// false` in `src/reads.rs`), with their key templates: a stale read of
/// one cannot come from an announcement delay (a unit test holds this list
/// to `src/reads.rs`).
const OUT_OF_LOCAL_TIER: &[(&str, &str)] = &[("/users/{id}/login", "user-login:<user_id>")];

/// Whether `pattern` (`/users/{id}/login`) names `path` (its query aside).
fn route_matches(pattern: &str, path: &str) -> bool {
    let path = path.split_once('?').map_or(path, |(p, _)| p);
    let mut want = pattern.split('/');
    let mut have = path.split('/');
    loop {
        match (want.next(), have.next()) {
            (None, None) => return true,
            (Some(w), Some(h)) if w.starts_with('{') && w.ends_with('}') => {
                if h.is_empty() {
                    return false;
                }
            }
            (Some(w), Some(h)) if w == h => {}
            _ => return false,
        }
    }
}

/// Whether reads of `path` may be served by the local tier.
fn local_tier_eligible(path: &str) -> bool {
    !OUT_OF_LOCAL_TIER
        .iter()
        .any(|(route, _)| route_matches(route, path))
}

/// Whether a stale read (aged `age`, its value obsoleted by write `by`)
/// is excused by the local tier's announcement window. Only a local hit
/// on the reader's instance that missed other instances' invalidations
/// can be that stale, so it needs all of:
///
/// - a window, and an age within it;
/// - a path the local tier may serve (`local = false` families are read
///   from Redis or the database only, never late by an announcement);
/// - no write in `by..=k` (from the one that obsoleted the value to the
///   last one completed before the read was sent) that changed the path
///   ran on the reader's instance: such a write cleared the entry in that
///   instance's own local tier before it answered (read-your-writes within
///   an instance), so the value cannot have come from there.
fn within_window(
    history: &History,
    read: &Read,
    age: Duration,
    by: usize,
    window: Duration,
) -> bool {
    !window.is_zero()
        && age <= window
        && local_tier_eligible(&read.path)
        && history
            .changed_by(&read.path, by, read.bounds.k)
            .all(|w| history.write(w).instance != read.instance)
}

/// Judges the reads left pending, now that every state is recorded.
fn finish(run: &Run) -> Report {
    let pending = std::mem::take(&mut lock(&run.tally).pending);
    for read in pending {
        let verdict = lock(&run.history).judge(&read.path, &read.value, read.bounds, read.t0);
        let verdict = match verdict {
            Verdict::Pending => Verdict::Unexplained,
            other => other,
        };
        run.account(read, verdict);
    }
    let mut report = lock(&run.tally).report.clone();
    report.reads = run.progress.reads();
    report.changing_writes = run.progress.changing_writes();
    report.elapsed = run.start.elapsed();
    report.paths = run
        .paths
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .len();
    report
}

/// `250ms`, `20s`, `1m`, `500us`, `187.5ms` (for command lines).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("not a duration: {text:?} (say 250ms, 20s, 1m)"))?;
    let seconds = match unit.trim() {
        "us" | "µs" => number / 1e6,
        "ms" => number / 1e3,
        "s" | "" if number == 0.0 => 0.0,
        "s" => number,
        "m" | "min" => number * 60.0,
        _ => return Err(format!("unknown unit in {text:?} (us, ms, s, m)")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("{text:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::HashMap;

    const A: usize = 0;
    const B: usize = 1;
    const LOGIN: &str = "/users/1/login";
    const LIKES: &str = "/users/1/likes";

    /// `S_0`, then one write per `(instance, values)`, each completed
    /// before the next begins.
    fn history(writes: &[(usize, [i64; 2])]) -> History {
        let state = |[login, likes]: [i64; 2]| {
            HashMap::from([
                (LOGIN.to_owned(), json!(login)),
                (LIKES.to_owned(), json!(likes)),
            ])
        };
        let mut h = History::default();
        h.store(0, state([0, 0]));
        for (n, (instance, values)) in writes.iter().enumerate() {
            let k = h.begin(*instance, format!("w{}", n + 1));
            h.complete(k);
            h.store(k, state(*values));
        }
        h
    }

    /// A read of `path` on `instance` sent now that returned `value`,
    /// judged; `(within the window of an hour, obsoleted by)`.
    fn judged(h: &History, path: &str, instance: usize, value: i64) -> (bool, usize) {
        let now = Instant::now();
        let bounds = h.bounds(now, now);
        let value = json!(value);
        let Verdict::Stale { age, by } = h.judge(path, &value, bounds, now) else {
            panic!("not stale: {:?}", h.judge(path, &value, bounds, now));
        };
        let read = Read {
            path: path.to_owned(),
            instance,
            t0: now,
            t1: now,
            value,
            bounds,
        };
        let window = Duration::from_secs(3600);
        (within_window(h, &read, age, by, window), by)
    }

    #[test]
    fn another_instances_write_excuses_a_local_tier_read_within_the_window() {
        let h = history(&[(B, [0, 1])]);
        assert_eq!(judged(&h, LIKES, A, 0), (true, 1));
        // On the writer's own instance: never.
        assert_eq!(judged(&h, LIKES, B, 0), (false, 1));
        // Not with no window, nor past it.
        let now = Instant::now();
        let read = Read {
            path: LIKES.into(),
            instance: A,
            t0: now,
            t1: now,
            value: json!(0),
            bounds: h.bounds(now, now),
        };
        let hour = Duration::from_secs(3600);
        assert!(!within_window(&h, &read, Duration::ZERO, 1, Duration::ZERO));
        assert!(!within_window(&h, &read, hour * 2, 1, hour));
    }

    /// The reviewer's case: B's write 1 obsoleted the value, then A's own
    /// write 2 changed the path again (clearing A's local entry), and a
    /// read on A returned the value of before write 1.
    #[test]
    fn a_read_after_its_own_instance_changed_the_path_is_beyond_the_window() {
        let h = history(&[(B, [0, 1]), (A, [0, 2])]);
        assert_eq!(judged(&h, LIKES, A, 0), (false, 1));
        // On B, whose write 1 obsoleted it: beyond too.
        assert_eq!(judged(&h, LIKES, B, 0), (false, 1));
        // A write of A that did not change the path does not count: the
        // value 1 was obsoleted by A's write 2, so B may read it late.
        let h = history(&[(B, [0, 1]), (A, [0, 2]), (A, [0, 2])]);
        assert_eq!(judged(&h, LIKES, B, 1), (true, 2));
        // Every change since the value was obsoleted by another instance:
        // within.
        let h = history(&[(B, [0, 1]), (B, [0, 3])]);
        assert_eq!(judged(&h, LIKES, A, 0), (true, 1));
    }

    #[test]
    fn a_family_kept_out_of_the_local_tier_is_never_within_the_window() {
        let h = history(&[(B, [1, 0])]);
        assert_eq!(judged(&h, LOGIN, A, 0), (false, 1));
        assert!(!local_tier_eligible("/users/12/login"));
        assert!(!local_tier_eligible("/users/12/login?x=1"));
        assert!(local_tier_eligible("/users/12/likes"));
        assert!(local_tier_eligible("/users/login"));
        assert!(local_tier_eligible("/users/12/login/x"));
    }

    /// Every `local = false` family in `src/reads.rs` is in
    /// [`OUT_OF_LOCAL_TIER`], and every route there is a read route.
    #[test]
    fn the_families_out_of_the_local_tier_are_those_of_reads_rs() {
        let source = include_str!("../reads.rs");
        let mut kept_out: Vec<&str> = source
            .split("#[cached(")
            .skip(1)
            .filter_map(|attribute| {
                let attribute = &attribute[..attribute.find(")]").expect("an attribute ends")];
                let squeezed: String = attribute.split_whitespace().collect();
                if !squeezed.contains("local=false") {
                    return None;
                }
                let key = attribute.split("key = \"").nth(1).expect("a key");
                Some(&key[..key.find('"').expect("a quoted key")])
            })
            .collect();
        kept_out.sort_unstable();
        let mut listed: Vec<&str> = OUT_OF_LOCAL_TIER.iter().map(|(_, key)| *key).collect();
        listed.sort_unstable();
        assert!(
            !kept_out.is_empty(),
            "src/reads.rs has `local = false` families"
        );
        assert_eq!(
            kept_out, listed,
            "OUT_OF_LOCAL_TIER is src/reads.rs's `local = false`"
        );
        for (route, _) in OUT_OF_LOCAL_TIER {
            assert!(crate::http::READ_ROUTES.contains(route), "{route}");
        }
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("188ms"), Ok(Duration::from_millis(188)));
        assert_eq!(
            parse_duration("187.5ms"),
            Ok(Duration::from_micros(187_500))
        );
        assert_eq!(parse_duration("20s"), Ok(Duration::from_secs(20)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("ms").is_err());
    }
}
