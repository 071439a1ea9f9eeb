//! Each `#[cached]` hit path next to its raw baseline, measured in one run,
//! with the contenders interleaved, and printed as a Markdown table of ns/op
//! and ratios.
//!
//! `cargo bench --bench vs_raw` (about a minute on 2 cores, after the build).
//! `cargo bench --bench vs_raw -- --quick`, or `VS_RAW_QUICK=1`, is a smoke
//! run with a fraction of the iterations; so is any run without cargo
//! bench's `--bench` flag (`cargo test --benches`).
//!
//! Workload: `user_collections(user_id)` returns 4 `Collection`s (217 bytes
//! of bincode; the table prints the figure), and 64 hot keys are cycled,
//! every call a hit.
//!
//! * Memory: a typed `moka::future::Cache` read (the baseline), ours on
//!   `Cache::memory()`, and the `cached` crate's async `#[cached]`.
//! * Redis, on a redis-server of the bench's own: a hand-written `GET` plus
//!   bincode decode on a redis-rs `ConnectionManager` (the baseline), ours on
//!   the same server, and the `cached` crate's `AsyncRedisCache`.
//! * Concurrency: 64 tokio tasks on a 2-worker runtime, each cycling the hot
//!   keys in an order of its own, raw `GET` + decode against ours on Redis,
//!   in operations per second.
//!
//! Ours also appears with `single_flight(false)`, a diagnostic row: on
//! memory it shows what single-flight's bookkeeping costs a hit; under
//! concurrency it is the like-for-like row, one round trip per call as the
//! baseline makes, where the default lets tasks that meet on a key share one.
//!
//! Method: after a warm-up, every round runs each contender of a group for
//! the same number of calls (the order rotating from round to round), so
//! drift on a shared machine hits every contender alike; the figure is the
//! median over the rounds, with the fastest and slowest round beside it.
//!
//! Without `redis-server` on `PATH` (or `REDIS_URL`) the Redis groups are
//! skipped with a note; with `CI` set that is a failure, as in the tests.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use cached::{AsyncRedisCache, ConcurrentCachedAsync as _};
use cachemacro_runtime::{Cache, cached};
use cachemacro_tests::RedisServer;
use redis::AsyncCommands as _;
use redis::aio::ConnectionManager;
use tokio::runtime::Runtime;

#[path = "support/workload.rs"]
mod workload;
use workload::{Collection, HOT, body, median, time_calls, user};

/// Bodies run by our `#[cached]` function: after the warm-up, none should.
static OURS_LOADS: AtomicU64 = AtomicU64::new(0);
/// Bodies run by the `cached` crate's function: after the warm-up, none should.
static THEIRS_LOADS: AtomicU64 = AtomicU64::new(0);

#[cached(key = "user-collections:<user_id>", ttl = "1h", cache = cache)]
async fn user_collections(cache: &Cache, user_id: u64) -> Vec<Collection> {
    OURS_LOADS.fetch_add(1, Relaxed);
    body(user_id)
}

/// The `cached` crate's async `#[cached]`: a global `TtlCache` behind its
/// async lock, keyed by the same string as ours.
#[cached::macros::cached(
    ttl_secs = 3600,
    key = "String",
    convert = r#"{ format!("user-collections:{user_id}") }"#
)]
async fn cached_crate_user_collections(user_id: u64) -> Vec<Collection> {
    THEIRS_LOADS.fetch_add(1, Relaxed);
    body(user_id)
}

/// How long to run, from the command line and the environment.
#[derive(Clone, Copy)]
struct Plan {
    quick: bool,
    rounds: usize,
    /// Calls per contender per round, single task.
    memory_iters: u64,
    redis_iters: u64,
    /// Calls per task per round, 64 tasks.
    concurrent_iters: u64,
}

impl Plan {
    fn from_env() -> Plan {
        let args: Vec<String> = std::env::args().collect();
        let asked = args.iter().any(|a| a == "--quick")
            || std::env::var("VS_RAW_QUICK").is_ok_and(|v| !v.is_empty() && v != "0");
        // `cargo bench` passes `--bench`; `cargo test --benches` does not, and
        // there a smoke run is what is wanted.
        let benching = args.iter().any(|a| a == "--bench");
        if asked || !benching {
            Plan {
                quick: true,
                rounds: 3,
                memory_iters: 20_000,
                redis_iters: 500,
                concurrent_iters: 100,
            }
        } else {
            Plan {
                quick: false,
                rounds: 7,
                memory_iters: 400_000,
                redis_iters: 15_000,
                concurrent_iters: 3_000,
            }
        }
    }
}

/// One contender's per-round figures (ns/op, or ops/s for throughput).
struct Row {
    group: &'static str,
    name: &'static str,
    samples: Vec<f64>,
}

impl Row {
    fn new(group: &'static str, name: &'static str) -> Row {
        Row {
            group,
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
/// `run(c)` runs contender `c` once and returns its figure for that round.
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

fn current_thread() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// Memory: typed moka read vs ours vs the `cached` crate.
fn memory_group(plan: Plan, rt: &Runtime) -> Vec<Row> {
    // The baseline: what a hand-written in-process cache of this value does on
    // a hit. It includes building the key as a String (as our key is built),
    // moka's lookup with its TTL check, and cloning the Vec<Collection> out
    // (9 allocations: the Vec, 4 names, 4 id lists). It does not include what
    // a cache library adds: a bytes encoding (ours stores bincode and decodes
    // on every hit, so entries are size-bounded and type-checked), stats,
    // single-flight or a miss path.
    let moka: moka::future::Cache<String, Vec<Collection>> = moka::future::Cache::builder()
        .max_capacity(10_000)
        .time_to_live(Duration::from_secs(3600))
        .build();
    let ours = Cache::memory();
    // A diagnostic row: the same, less the single-flight bookkeeping.
    let ours_solo = Cache::builder()
        .single_flight(false)
        .build()
        .expect("an in-memory cache");

    rt.block_on(async {
        for i in 0..HOT {
            let id = user(i);
            moka.insert(format!("user-collections:{id}"), body(id))
                .await;
            assert_eq!(user_collections(&ours, id).await, body(id));
            assert_eq!(user_collections(&ours_solo, id).await, body(id));
            assert_eq!(cached_crate_user_collections(id).await, body(id));
        }
    });
    let loads = (OURS_LOADS.load(Relaxed), THEIRS_LOADS.load(Relaxed));
    let warm = (plan.memory_iters / 4).max(1);

    let mut rows = vec![
        Row::new("memory", "moka typed get + clone (baseline)"),
        Row::new("memory", "`#[cached]` on `Cache::memory()`"),
        Row::new("memory", "`#[cached]`, memory, `single_flight(false)`"),
        Row::new("memory", "`cached` crate async `#[cached]` (TtlCache)"),
    ];
    let run = |c: usize, iters: u64| -> f64 {
        let elapsed = rt.block_on(async {
            match c {
                0 => {
                    time_calls(iters, async |id| {
                        let key = format!("user-collections:{id}");
                        moka.get(&key).await.expect("a moka hit")
                    })
                    .await
                }
                1 => time_calls(iters, async |id| user_collections(&ours, id).await).await,
                2 => time_calls(iters, async |id| user_collections(&ours_solo, id).await).await,
                _ => time_calls(iters, async |id| cached_crate_user_collections(id).await).await,
            }
        });
        ns_per_op(elapsed, iters)
    };
    for c in 0..rows.len() {
        run(c, warm);
    }
    interleave(plan.rounds, &mut rows, |c| run(c, plan.memory_iters));

    assert_eq!(
        (OURS_LOADS.load(Relaxed), THEIRS_LOADS.load(Relaxed)),
        loads,
        "memory: a body ran during the measurement, so not every call was a hit"
    );
    rows
}

/// The raw baseline's read: one `GET`, then bincode 2 (standard config).
async fn raw_get(conn: &mut ConnectionManager, id: u64) -> Vec<Collection> {
    let key = format!("raw:user-collections:{id}");
    let bytes: Option<Vec<u8>> = conn.get(&key).await.expect("GET");
    let bytes = bytes.expect("a raw hit");
    let (value, _read): (Vec<Collection>, usize) =
        bincode::serde::decode_from_slice(&bytes, bincode::config::standard()).expect("decode");
    value
}

/// Connections to the bench's server: ours, the baseline's and the `cached`
/// crate's. A redis-rs connection is driven by a task on the runtime that
/// made it, so each runtime makes its own.
struct Conns {
    ours: Cache,
    raw: ConnectionManager,
    theirs: AsyncRedisCache<u64, Vec<Collection>>,
}

async fn connect(server: &RedisServer) -> Conns {
    // Default settings, as `Cache::connect(server.url())`; the builder only
    // adds the harness's namespace when it falls back to a shared REDIS_URL.
    let ours = server
        .builder()
        .connect()
        .await
        .expect("connect to the bench's redis-server");
    let raw = ConnectionManager::new(redis::Client::open(server.url()).expect("a redis url"))
        .await
        .expect("a ConnectionManager");
    // Keys `cached-crate:user-collections:<id>`, values MessagePack (its only
    // format), on a ConnectionManager as the baseline's.
    let theirs = AsyncRedisCache::<u64, Vec<Collection>>::builder("user-collections")
        .ttl(Duration::from_secs(3600))
        .namespace("cached-crate")
        .connection_string(&server.url())
        .connection_manager(true)
        .build()
        .await
        .expect("the cached crate's AsyncRedisCache");
    Conns { ours, raw, theirs }
}

/// Stores every hot key for the three contenders and checks each reads back.
async fn plant(conns: &mut Conns) {
    for i in 0..HOT {
        let id = user(i);
        let bytes =
            bincode::serde::encode_to_vec(body(id), bincode::config::standard()).expect("encode");
        let _: () = conns
            .raw
            .set_ex(format!("raw:user-collections:{id}"), bytes, 3600)
            .await
            .expect("SET");
        assert_eq!(raw_get(&mut conns.raw, id).await, body(id));
        assert_eq!(user_collections(&conns.ours, id).await, body(id));
        let theirs = &conns.theirs;
        theirs
            .async_cache_set(id, body(id))
            .await
            .expect("cached SET");
        let read = theirs.async_cache_get(&id).await.expect("cached GET");
        assert_eq!(read, Some(body(id)));
    }
}

/// Redis, one task: raw `GET` + decode vs ours vs `AsyncRedisCache`.
fn redis_group(plan: Plan, rt: &Runtime, setup: &Conns) -> Vec<Row> {
    let loads = OURS_LOADS.load(Relaxed);
    let warm = (plan.redis_iters / 4).max(1);
    let mut rows = vec![
        Row::new("redis", "redis-rs GET + bincode decode (baseline)"),
        Row::new("redis", "`#[cached]` on `Cache::connect(url)`"),
        Row::new("redis", "`cached` crate `AsyncRedisCache` get"),
    ];
    let run = |c: usize, iters: u64| -> f64 {
        let elapsed = rt.block_on(async {
            match c {
                0 => {
                    let mut conn = setup.raw.clone();
                    time_calls(iters, async |id| raw_get(&mut conn, id).await).await
                }
                1 => time_calls(iters, async |id| user_collections(&setup.ours, id).await).await,
                _ => {
                    time_calls(iters, async |id| {
                        setup
                            .theirs
                            .async_cache_get(&id)
                            .await
                            .expect("cached GET")
                            .expect("a cached-crate hit")
                    })
                    .await
                }
            }
        });
        ns_per_op(elapsed, iters)
    };
    for c in 0..rows.len() {
        run(c, warm);
    }
    interleave(plan.rounds, &mut rows, |c| run(c, plan.redis_iters));
    let ran = OURS_LOADS.load(Relaxed) - loads;
    if ran > 0 {
        eprintln!("redis: our body ran {ran} times during the measurement (timeouts?)");
    }
    rows
}

/// The hot keys in task `t`'s own order (the same on every run), which the
/// task cycles. With one shared order, tasks that once met on a key (and
/// shared its read, under single-flight) would move on in step for good; in
/// orders of their own they meet only as often as chance has it.
fn shuffled_keys(t: u64) -> Vec<u64> {
    let mut keys: Vec<u64> = (0..HOT).map(user).collect();
    let mut state = t.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for i in (1..keys.len()).rev() {
        // xorshift64: reproducible, no dependency.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        keys.swap(i, (state % (i as u64 + 1)) as usize);
    }
    keys
}

/// Concurrency: 64 tasks on 2 workers, each `iters` calls; ops/s.
fn concurrency_group(plan: Plan, server: &RedisServer) -> (Vec<Row>, String) {
    const TASKS: u64 = 64;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a multi-thread tokio runtime");
    let setup = rt.block_on(connect(server));
    // A second row for ours: each call its own read, as the baseline's is.
    // Single-flight (the default) lets tasks that meet on a key share one.
    let solo = rt
        .block_on(server.builder().single_flight(false).connect())
        .expect("connect to the bench's redis-server");
    let before = setup.ours.stats();
    let run = |c: usize, iters: u64| -> f64 {
        let elapsed = rt.block_on(async {
            let start = Instant::now();
            let tasks: Vec<_> = (0..TASKS)
                .map(|t| {
                    let mut raw = setup.raw.clone();
                    let ours = if c == 1 {
                        setup.ours.clone()
                    } else {
                        solo.clone()
                    };
                    let order = shuffled_keys(t);
                    tokio::spawn(async move {
                        for i in 0..iters {
                            let id = order[(i % HOT) as usize];
                            let value = if c == 0 {
                                raw_get(&mut raw, id).await
                            } else {
                                user_collections(&ours, id).await
                            };
                            black_box(value);
                        }
                    })
                })
                .collect();
            for task in tasks {
                task.await.expect("a bench task");
            }
            start.elapsed()
        });
        (TASKS * iters) as f64 / elapsed.as_secs_f64()
    };
    let mut rows = vec![
        Row::new("concurrency", "redis-rs GET + bincode decode (baseline)"),
        Row::new("concurrency", "`#[cached]` on Redis"),
        Row::new(
            "concurrency",
            "`#[cached]` on Redis, `single_flight(false)`",
        ),
    ];
    for c in 0..rows.len() {
        run(c, (plan.concurrent_iters / 4).max(1));
    }
    let loads = OURS_LOADS.load(Relaxed);
    interleave(plan.rounds, &mut rows, |c| run(c, plan.concurrent_iters));
    let ran = OURS_LOADS.load(Relaxed) - loads;
    let (after, solo) = (setup.ours.stats(), solo.stats());
    let calls = (after.hits + after.coalesced) - (before.hits + before.coalesced);
    let note = format!(
        "single-flight: {:.0}% of the default cache's calls here (warm-up included) \
         shared another task's read of the same key instead of a round trip of their own",
        100.0 * (after.coalesced - before.coalesced) as f64 / calls.max(1) as f64
    );
    if ran > 0 || after.errors + solo.errors > 0 {
        // Timeouts on a starved machine: the body stood in for a Redis read.
        eprintln!(
            "concurrency: during the measurement our body ran {ran} times and the caches \
             reported {} errors; the figures are suspect",
            after.errors + solo.errors
        );
    }
    (rows, note)
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

fn print_latency_table(rows: &[Row]) {
    println!("| group | contender | ns/op (median) | min–max | ratio |");
    println!("| --- | --- | ---: | ---: | ---: |");
    let mut baseline = f64::NAN;
    let mut group = "";
    for row in rows {
        if row.group != group {
            group = row.group;
            baseline = row.median();
        }
        let (min, max) = row.range();
        println!(
            "| {} | {} | {:.0} | {:.0}–{:.0} | {:.2} |",
            row.group,
            row.name,
            row.median(),
            min,
            max,
            row.median() / baseline
        );
    }
}

fn print_throughput_table(rows: &[Row]) {
    println!("| group | contender | ops/s (median) | min–max | ratio |");
    println!("| --- | --- | ---: | ---: | ---: |");
    let baseline = rows[0].median();
    for row in rows {
        let (min, max) = row.range();
        println!(
            "| {} | {} | {:.0} | {:.0}–{:.0} | {:.2} |",
            row.group,
            row.name,
            row.median(),
            min,
            max,
            row.median() / baseline
        );
    }
    let verdict = |ratio: f64| if ratio >= 0.95 { "met" } else { "NOT met" };
    let (default, solo) = (rows[1].median() / baseline, rows[2].median() / baseline);
    println!(
        "\ncached/raw throughput (goal ≥ 0.95): {default:.2}, {} (default); \
         {solo:.2}, {} (`single_flight(false)`: one round trip per call, as raw)",
        verdict(default),
        verdict(solo)
    );
}

fn main() {
    let plan = Plan::from_env();
    let started = Instant::now();
    let rt = current_thread();

    let memory = memory_group(plan, &rt);
    let (redis, concurrency) = match RedisServer::start() {
        Some(server) => {
            let mut conns = rt.block_on(connect(&server));
            rt.block_on(plant(&mut conns));
            let redis = redis_group(plan, &rt, &conns);
            let stats = conns.ours.stats();
            assert_eq!(
                stats.errors, 0,
                "redis: the cache reported errors: {stats:?}"
            );
            let concurrency = concurrency_group(plan, &server);
            (redis, Some(concurrency))
        }
        None => (Vec::new(), None),
    };

    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("\n## vs_raw: `#[cached]` hit paths against raw baselines\n");
    println!("- machine: {cores} cores (nproc), {}", cpu_model());
    println!(
        "- command: `cargo bench --bench vs_raw`{}",
        if plan.quick {
            " (this was a --quick smoke run: figures are rough)"
        } else {
            ""
        }
    );
    println!(
        "- workload: 4 `Collection`s ({} B of bincode) per value, {HOT} hot keys cycled, all hits; \
         median of {} interleaved rounds of {} (memory) / {} (redis) calls per contender, \
         {} calls × 64 tasks (concurrency)",
        bincode::serde::encode_to_vec(body(user(0)), bincode::config::standard())
            .expect("encode")
            .len(),
        plan.rounds,
        plan.memory_iters,
        plan.redis_iters,
        plan.concurrent_iters
    );
    println!(
        "- single-task groups on a current-thread tokio runtime; concurrency on a multi-thread runtime with 2 workers\n"
    );
    let mut latency = memory;
    latency.extend(redis);
    print_latency_table(&latency);
    if let Some((rows, note)) = concurrency {
        println!();
        print_throughput_table(&rows);
        println!("{note}");
    } else {
        println!(
            "\nredis and concurrency groups: skipped, no redis-server could be started \
             (install redis-server or set REDIS_URL)"
        );
    }
    println!("\n(took {:.0} s)", started.elapsed().as_secs_f64());
}
