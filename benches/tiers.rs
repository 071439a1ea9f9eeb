//! The two tiers, measured side by side in one run on a redis-server of the
//! bench's own, and printed as Markdown tables with ratios.
//!
//! `cargo bench --bench tiers` (well under two minutes on 2 cores, after the
//! build). `cargo bench --bench tiers -- --quick`, or `TIERS_QUICK=1`, is a
//! smoke run of a few seconds; so is any run without cargo bench's `--bench`
//! flag (`cargo test --benches`).
//!
//! Workload: a `Vec<u64>` of 10 items per key, 64 hot keys cycled.
//!
//! * Hits: a warm local hit through `#[cached]` (the in-process tier on, in
//!   front of Redis) next to a typed `moka::future::Cache::get` of the same
//!   value (the baseline; goal: at most 1.5× its time), and next to a Redis
//!   hit through `#[cached(local = false)]` on the same cache (expected: at
//!   least 50× the local hit's time). Interleaved rounds on a current-thread
//!   runtime, as in `vs_raw.rs`; the figure is the median over the rounds.
//! * Announcement delay: two instances A and B (`Cache` handles with
//!   connections of their own, both with the local tier) on a multi-thread
//!   runtime with 2 workers. Each iteration A holds the key in process (its
//!   read counted a local hit), B invalidates it through `#[invalidates]`,
//!   and the main thread, outside the runtime, polls A's
//!   `health().announcements.heard` (yielding the CPU between polls), which
//!   moves once A has dropped the entry. Percentiles of the time from B's
//!   call returning (and from its start) to that moment. After every drop,
//!   A's next read is checked to be a miss, not a local hit.
//!
//! Not criterion: it measures one function at a time, so a ratio of two of
//! its figures mixes two stretches of a shared machine's load.
//!
//! Without `redis-server` on `PATH` (or `REDIS_URL`) the bench prints a
//! note and measures nothing; with `CI` set that is a failure, as in the
//! tests.

use std::cell::Cell;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use cachemacro_runtime::{Cache, cached, invalidates};
use cachemacro_tests::{RedisServer, eventually};

#[path = "support/workload.rs"]
mod workload;
use workload::{HOT, median, time_calls, user};

/// Bodies run by the cached functions: after the warm-up, none should.
static LOADS: AtomicU64 = AtomicU64::new(0);

/// The value: 10 ids.
fn ids(id: u64) -> Vec<u64> {
    (0..10).map(|i| id * 100 + i).collect()
}

#[cached(key = "tiers:<id>", ttl = "1h", cache = cache)]
async fn recent_ids(cache: &Cache, id: u64) -> Vec<u64> {
    LOADS.fetch_add(1, Relaxed);
    ids(id)
}

/// The same, kept out of the in-process tier: every hit is a Redis hit.
#[cached(key = "tiers-remote:<id>", ttl = "1h", local = false, cache = cache)]
async fn recent_ids_remote(cache: &Cache, id: u64) -> Vec<u64> {
    LOADS.fetch_add(1, Relaxed);
    ids(id)
}

#[invalidates("tiers:<id>", cache = cache)]
async fn forget(cache: &Cache, id: u64) {
    black_box(id);
}

/// How long to run, from the command line and the environment.
#[derive(Clone, Copy)]
struct Plan {
    quick: bool,
    rounds: usize,
    /// Calls per contender per round: the in-process ones, Redis hits.
    local_iters: u64,
    redis_iters: u64,
    /// Invalidations whose announcement delay is measured.
    announcements: usize,
}

impl Plan {
    fn from_env() -> Plan {
        let args: Vec<String> = std::env::args().collect();
        let asked = args.iter().any(|a| a == "--quick")
            || std::env::var("TIERS_QUICK").is_ok_and(|v| !v.is_empty() && v != "0");
        // `cargo bench` passes `--bench`; `cargo test --benches` does not, and
        // there a smoke run is what is wanted.
        let benching = args.iter().any(|a| a == "--bench");
        if asked || !benching {
            Plan {
                quick: true,
                rounds: 3,
                local_iters: 20_000,
                redis_iters: 300,
                announcements: 300,
            }
        } else {
            Plan {
                quick: false,
                rounds: 15,
                // Under 50 ms a round: the tier's own tasks (heartbeat,
                // probes) cannot run during a round that never yields, and
                // a probe unanswered for half the operation timeout (125 ms)
                // stops local entries from being trusted.
                local_iters: 50_000,
                redis_iters: 5_000,
                announcements: 10_000,
            }
        }
    }
}

/// One contender's per-round figures (ns/op).
struct Row {
    name: &'static str,
    samples: Vec<f64>,
}

impl Row {
    fn new(name: &'static str) -> Row {
        Row {
            name,
            samples: Vec::new(),
        }
    }

    fn median(&self) -> f64 {
        median(self.samples.clone())
    }

    fn range(&self) -> (f64, f64) {
        let min = self.samples.iter().copied().fold(f64::INFINITY, f64::min);
        let max = self.samples.iter().copied().fold(0.0, f64::max);
        (min, max)
    }
}

fn ns_per_op(elapsed: Duration, ops: u64) -> f64 {
    elapsed.as_nanos() as f64 / ops as f64
}

/// Runs `rounds` rounds of every contender, rotating which goes first.
fn interleave(rounds: usize, rows: &mut [Row], mut run: impl FnMut(usize) -> f64) {
    let n = rows.len();
    for round in 0..rounds {
        for k in 0..n {
            let c = (round + k) % n;
            let figure = run(c);
            rows[c].samples.push(figure);
        }
    }
}

/// An instance with the local tier on (default settings otherwise),
/// listening for announcements.
async fn instance(server: &RedisServer) -> Cache {
    let cache = server
        .builder()
        .local_capacity(10_000)
        .connect()
        .await
        .expect("connect to the bench's redis-server");
    eventually("the instance hears announcements", async || {
        cache.health().local.coherent
    })
    .await;
    cache
}

/// What the hit group measured, and how many of the local contender's
/// calls were not local hits (the tier stopped serving mid-round).
struct Hits {
    rows: Vec<Row>,
    not_local: u64,
}

/// A local hit against a typed moka get, and against a Redis hit.
fn hit_group(plan: Plan, server: &RedisServer) -> Hits {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    // The baseline: a hand-written in-process cache of the same value. It
    // builds the key as a String (as ours is built) and clones the Vec out;
    // moka checks its TTL. It has no freshness, tags, trust, stats or
    // single-flight, and no one to tell it of another process's writes.
    let moka: moka::future::Cache<String, Vec<u64>> = moka::future::Cache::builder()
        .max_capacity(10_000)
        .time_to_live(Duration::from_secs(3600))
        .build();
    let ours = rt.block_on(instance(server));
    rt.block_on(async {
        for i in 0..HOT {
            let id = user(i);
            moka.insert(format!("tiers:{id}"), ids(id)).await;
            // A miss stores in Redis; the next read keeps the entry in
            // process; the third is a local hit.
            for _ in 0..3 {
                assert_eq!(recent_ids(&ours, id).await, ids(id));
                assert_eq!(recent_ids_remote(&ours, id).await, ids(id));
            }
        }
    });
    let warm = ours.stats();
    assert_eq!(
        warm.local_hits, HOT,
        "the third read of every key is a local hit: {warm:?}"
    );
    let loads = LOADS.load(Relaxed);

    let mut rows = vec![
        Row::new("moka typed get + clone (baseline)"),
        Row::new("`#[cached]` local hit (in-process tier, on Redis)"),
        Row::new("`#[cached(local = false)]` Redis hit"),
    ];
    let not_local = Cell::new(0);
    let run = |c: usize, iters: u64| -> f64 {
        let before = ours.stats().local_hits;
        let elapsed = rt.block_on(async {
            // The tier's own tasks (heartbeat, probes) and their I/O run
            // here (the runtime parks), not in the middle of a round that
            // never yields.
            tokio::time::sleep(Duration::from_millis(1)).await;
            match c {
                0 => {
                    time_calls(iters, async |id| {
                        let key = format!("tiers:{id}");
                        moka.get(&key).await.expect("a moka hit")
                    })
                    .await
                }
                1 => time_calls(iters, async |id| recent_ids(&ours, id).await).await,
                _ => time_calls(iters, async |id| recent_ids_remote(&ours, id).await).await,
            }
        });
        if c == 1 {
            not_local.set(not_local.get() + iters - (ours.stats().local_hits - before));
        }
        ns_per_op(elapsed, iters)
    };
    run(0, plan.local_iters / 4);
    run(1, plan.local_iters / 4);
    run(2, (plan.redis_iters / 4).max(1));
    not_local.set(0);
    interleave(plan.rounds, &mut rows, |c| {
        let iters = if c == 2 {
            plan.redis_iters
        } else {
            plan.local_iters
        };
        run(c, iters)
    });

    let stats = ours.stats();
    assert_eq!(stats.errors, 0, "the cache reported errors: {stats:?}");
    let ran = LOADS.load(Relaxed) - loads;
    if ran > 0 {
        eprintln!(
            "hits: a body ran {ran} times during the measurement, so not every call was a hit"
        );
    }
    Hits {
        rows,
        not_local: not_local.get(),
    }
}

/// Announcement delays, one per invalidation.
struct Delays {
    /// B's invalidation returned → A dropped the entry (0 when A had by then).
    from_return: Vec<Duration>,
    /// B's invalidation started → A dropped the entry.
    from_start: Vec<Duration>,
    /// B's invalidation, start to return.
    call: Vec<Duration>,
    /// Times A had dropped the entry before B's call returned.
    before_return: usize,
}

fn heard(cache: &Cache) -> u64 {
    cache.health().announcements.map_or(0, |a| a.heard)
}

/// Reads `id` on A until a read is a local hit (a miss fills Redis, a
/// Redis hit keeps it in process).
async fn hold_locally(a: &Cache, id: u64) {
    for _ in 0..5 {
        let before = a.stats().local_hits;
        assert_eq!(recent_ids(a, id).await, ids(id));
        if a.stats().local_hits > before {
            return;
        }
    }
    panic!(
        "A never served key {id} from its local tier: {:?}",
        a.health()
    );
}

fn announcement_group(plan: Plan, server: &RedisServer) -> Delays {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a multi-thread tokio runtime");
    let (a, b) = rt.block_on(async { (instance(server).await, instance(server).await) });
    let id = 7;
    let mut delays = Delays {
        from_return: Vec::with_capacity(plan.announcements),
        from_start: Vec::with_capacity(plan.announcements),
        call: Vec::with_capacity(plan.announcements),
        before_return: 0,
    };
    let mut served_after_drop = 0;
    rt.block_on(hold_locally(&a, id));
    for _ in 0..plan.announcements {
        let was = heard(&a);
        let start = Instant::now();
        rt.block_on(forget(&b, id));
        let returned = Instant::now();
        // Poll from this thread, outside the runtime: A's listener runs on
        // a worker with nothing else to do.
        let mut first = true;
        let dropped = loop {
            if heard(&a) > was {
                break Instant::now();
            }
            first = false;
            assert!(
                returned.elapsed() < Duration::from_secs(5),
                "A did not hear B's invalidation within 5 s: {:?}",
                a.health()
            );
            // On 2 cores a busy spin would take the CPU from A's listener.
            std::thread::yield_now();
        };
        if first {
            delays.before_return += 1;
            delays.from_return.push(Duration::ZERO);
        } else {
            delays.from_return.push(dropped - returned);
        }
        delays.from_start.push(dropped - start);
        delays.call.push(returned - start);

        // Dropped means dropped: A's next read is a miss, not a local hit.
        let before = a.stats();
        rt.block_on(async { assert_eq!(recent_ids(&a, id).await, ids(id)) });
        let after = a.stats();
        if after.local_hits > before.local_hits {
            served_after_drop += 1;
        }
        rt.block_on(hold_locally(&a, id));
    }
    assert_eq!(
        served_after_drop, 0,
        "after `heard` moved, A still served the invalidated entry from its local tier"
    );
    let (sa, sb) = (a.health(), b.health());
    assert!(
        sa.local.flushes == 0 && sb.local.flushes == 0,
        "an instance lost its subscription during the measurement: {sa:?} {sb:?}"
    );
    delays
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn micros(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e6)
}

fn print_hits(hits: &Hits, plan: Plan) {
    let rows = &hits.rows;
    let baseline = rows[0].median();
    println!("| contender | ns/op (median) | min–max | ratio to moka |");
    println!("| --- | ---: | ---: | ---: |");
    for row in rows {
        let (min, max) = row.range();
        println!(
            "| {} | {:.0} | {:.0}–{:.0} | {:.2} |",
            row.name,
            row.median(),
            min,
            max,
            row.median() / baseline
        );
    }
    let (local, remote) = (rows[1].median(), rows[2].median());
    let verdict = |met: bool| if met { "met" } else { "NOT met" };
    println!(
        "\nlocal hit / moka get (goal ≤ 1.5): {:.2}, {}",
        local / baseline,
        verdict(local / baseline <= 1.5)
    );
    println!(
        "Redis hit / local hit (expected ≥ 50): {:.0}×, {}",
        remote / local,
        verdict(remote / local >= 50.0)
    );
    let measured = plan.rounds as u64 * plan.local_iters;
    if hits.not_local > 0 {
        println!(
            "\n**{} of the {measured} measured local-hit calls were not local hits**: a round ran \
             long enough that the tier's probe, which cannot run until the round yields, was \
             overdue, and local entries were not trusted; the local row is suspect",
            hits.not_local
        );
    } else {
        println!("\nall {measured} measured calls of the local row were local hits");
    }
}

fn print_delays(delays: &Delays) {
    let n = delays.from_start.len();
    let late: Vec<Duration> = delays
        .from_return
        .iter()
        .copied()
        .filter(|d| !d.is_zero())
        .collect();
    println!("| measured | p50 µs | p99 µs | max µs |");
    println!("| --- | ---: | ---: | ---: |");
    for (name, xs) in [
        (
            "B's invalidation returned → A dropped the entry",
            &delays.from_return,
        ),
        ("the same, when A had not dropped it by then", &late),
        (
            "B's invalidation started → A dropped the entry",
            &delays.from_start,
        ),
        (
            "B's invalidation call itself (start → return)",
            &delays.call,
        ),
    ] {
        let mut sorted = xs.clone();
        sorted.sort();
        if sorted.is_empty() {
            println!("| {name} | – | – | – |");
            continue;
        }
        println!(
            "| {name} | {} | {} | {} |",
            micros(percentile(&sorted, 0.50)),
            micros(percentile(&sorted, 0.99)),
            micros(sorted[sorted.len() - 1]),
        );
    }
    println!(
        "\nA had already dropped the entry when B's call returned in {} of {n} invalidations \
         (counted as 0 in the first row, left out of the second); after every drop, A's next \
         read was a miss",
        delays.before_return
    );
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, model)| model.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into())
}

fn main() {
    let plan = Plan::from_env();
    let started = Instant::now();
    let Some(server) = RedisServer::start() else {
        println!(
            "\ntiers: skipped, no redis-server could be started \
             (install redis-server or set REDIS_URL)"
        );
        return;
    };
    let hits = hit_group(plan, &server);
    let delays = announcement_group(plan, &server);

    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("\n## tiers: the in-process tier against moka and Redis, and announcement delays\n");
    println!("- machine: {cores} cores (nproc), {}", cpu_model());
    println!(
        "- command: `cargo bench --bench tiers`{}",
        if plan.quick {
            " (this was a --quick smoke run: figures are rough)"
        } else {
            ""
        }
    );
    println!(
        "- hits: a `Vec<u64>` of 10 per key, {HOT} hot keys cycled, all hits; median of {} \
         interleaved rounds of {} (in process) / {} (Redis) calls per contender, on a \
         current-thread runtime; default settings plus `local_capacity(10_000)`",
        plan.rounds, plan.local_iters, plan.redis_iters
    );
    println!(
        "- announcements: {} invalidations of one key by B, each while A held it in process; \
         2-worker runtime, A's `heard` polled from a thread of its own\n",
        plan.announcements
    );
    print_hits(&hits, plan);
    println!();
    print_delays(&delays);
    println!("\n(took {:.0} s)", started.elapsed().as_secs_f64());
}
