//! A Redis Cluster next to a single redis-server, measured in one run and
//! reported as ratios: the `#[cached]` hit path, hits under concurrency, and
//! a prefix invalidation of 100 000 keys spread over three primaries.
//!
//! `cargo bench --bench cluster` (about 30 s on 2 cores, after the build).
//! `cargo bench --bench cluster -- --quick`, or `CLUSTER_QUICK=1`, is a
//! smoke run of a few seconds (3 rounds of 200 calls per contender and of
//! 20 calls per task, and 1 000 keys for the prefix delete), with every
//! check still made; so is any run without cargo bench's `--bench` flag
//! (`cargo test --benches`, as CI runs it). Smoke figures are rough.
//!
//! The bench starts a redis-server and a Redis Cluster (3 primaries with a
//! replica each, ~2 s) of its own on loopback; every cache has a 2 s
//! operation timeout, so a loaded machine slows the figures rather than
//! turning calls into errors.
//!
//! * Hit path, one task: the workload of `vs_raw.rs`, a `#[cached]`
//!   function of `user_id` returning 4 `Collection`s (217 bytes of bincode;
//!   the report prints the figure), 64 hot keys cycled, every call a hit.
//!   On the single server and on the cluster: a hand-written `GET` +
//!   bincode decode (on a redis-rs `ConnectionManager`, resp. a
//!   `cluster_async::ClusterConnection`), the `#[cached]` function, and a
//!   `#[cached]` function whose entries carry a tag (`tags =
//!   ["t:<user_id>"]`): its hit also reads the tag's version, which on a
//!   cluster lives in another slot and is read concurrently with the
//!   entry. Reported in ns/op, and as the ratios ours-cluster /
//!   raw-cluster, ours-cluster / ours-single, raw-cluster / raw-single and
//!   ours-tagged-cluster / ours-tagged-single. A diagnostic row reads raw
//!   keys that share one slot (a `{raw}` hash tag), so all on one primary:
//!   on loopback, reads spread over three redis-server processes are
//!   scheduled differently from reads of one (on a 2-core VM, faster), and
//!   this row tells that apart from what the cluster client costs.
//! * Concurrency: 64 tokio tasks on a 2-worker runtime, each cycling the hot
//!   keys in an order of its own, on the cluster: raw `GET` + decode against
//!   ours (and ours with `single_flight(false)`, one round trip per call as
//!   the raw one), in operations per second.
//! * Prefix invalidation: 100 000 keys under `bulk:` are stored with
//!   `Cache::set_many` in chunks of 1 000 (untimed; the split over the
//!   primaries is printed and checked to be roughly a third each), then
//!   `delete_pattern("bulk:*")` is timed: on the cluster it scans every
//!   primary, `UNLINK`s page by page and waits for a replica's
//!   acknowledgement per primary. The same on the single server. Each delete
//!   must return 100 000 and leave no key. Three repetitions, alternating
//!   which target goes first; the median in seconds and keys/s.
//!
//! Method: after a warm-up, every round runs each contender of a group for
//! the same number of calls (the order rotating from round to round), so
//! drift on a shared machine hits every contender alike; the figure is the
//! median over the rounds, with the fastest and slowest round beside it. A
//! ratio is the median of the per-round ratios of its two contenders, whose
//! calls ran milliseconds apart. Rounds are short (250 calls per contender,
//! 200 rounds; 100 calls per task, 40 rounds): on a small VM a loopback
//! round trip switches between about 20 µs and about 50 µs every few
//! seconds with the host's scheduling, which long rounds would pin on
//! whichever contender they caught. The caches' counters are checked after
//! each group: no cache errors and no loads during the measurement, so
//! every figure is of hits.
//!
//! Without `redis-server` and `redis-cli` on `PATH` the bench is skipped
//! with a note; with `CI` set that is a failure, as in the tests.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use cachemacro_runtime::{Cache, CacheBuilder, Stats, cached};
use cachemacro_tests::{RedisCluster, RedisServer};
use redis::AsyncCommands as _;
use redis::aio::{ConnectionLike, ConnectionManager};
use redis::cluster_async::ClusterConnection;
use tokio::runtime::Runtime;

#[path = "support/workload.rs"]
mod workload;
use workload::{Collection, HOT, body, median, time_calls, user};

/// Generous, so a loaded machine gives slow figures, not errors.
const OP_TIMEOUT: Duration = Duration::from_secs(2);
const TTL: Duration = Duration::from_secs(3600);
/// Keys per `set_many` when filling for the prefix delete.
const FILL_CHUNK: usize = 1_000;
/// Tasks in the concurrency group.
const TASKS: u64 = 64;

/// Bodies run by the `#[cached]` functions: after the warm-up, none should.
static LOADS: AtomicU64 = AtomicU64::new(0);

/// `#[cached]` functions of the same key template, one per cache: a
/// function remembers the counters of the first cache it serves and looks
/// them up on every call for any other (README, "What a hit costs"), which
/// would tilt the comparison between caches.
macro_rules! collections {
    ($($name:ident),+) => {$(
        #[cached(key = "user-collections:<user_id>", ttl = "1h", cache = cache)]
        async fn $name(cache: &Cache, user_id: u64) -> Vec<Collection> {
            LOADS.fetch_add(1, Relaxed);
            body(user_id)
        }
    )+};
}

/// The same with tagged entries: a hit also reads the tag's version.
macro_rules! tagged_collections {
    ($($name:ident),+) => {$(
        #[cached(
            key = "tagged-collections:<user_id>",
            ttl = "1h",
            tags = ["t:<user_id>"],
            cache = cache
        )]
        async fn $name(cache: &Cache, user_id: u64) -> Vec<Collection> {
            LOADS.fetch_add(1, Relaxed);
            body(user_id)
        }
    )+};
}

collections!(
    single_collections,
    cluster_collections,
    concurrent_collections,
    solo_collections
);
tagged_collections!(single_tagged, cluster_tagged);

/// How long to run, from the command line and the environment.
#[derive(Clone, Copy)]
struct Plan {
    quick: bool,
    hit_rounds: usize,
    /// Calls per contender per round, single task.
    hit_iters: u64,
    concurrent_rounds: usize,
    /// Calls per task per round, 64 tasks.
    concurrent_iters: u64,
    /// Keys under the prefix that is deleted.
    prefix_keys: usize,
    prefix_reps: usize,
}

impl Plan {
    fn from_env() -> Plan {
        let args: Vec<String> = std::env::args().collect();
        let asked = args.iter().any(|a| a == "--quick")
            || std::env::var("CLUSTER_QUICK").is_ok_and(|v| !v.is_empty() && v != "0");
        // `cargo bench` passes `--bench`; `cargo test --benches` does not, and
        // there a smoke run is what is wanted.
        let benching = args.iter().any(|a| a == "--bench");
        if asked || !benching {
            Plan {
                quick: true,
                hit_rounds: 3,
                hit_iters: 200,
                concurrent_rounds: 3,
                concurrent_iters: 20,
                prefix_keys: 1_000,
                prefix_reps: 3,
            }
        } else {
            Plan {
                quick: false,
                hit_rounds: 200,
                hit_iters: 250,
                concurrent_rounds: 40,
                concurrent_iters: 100,
                prefix_keys: 100_000,
                prefix_reps: 3,
            }
        }
    }
}

/// One contender's per-round figures (ns/op, ops/s or seconds).
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

/// Asserts that between `before` and `after` the cache had no errors and
/// ran no body, and that its hits (plus reads shared by single-flight) were
/// `calls`: the figures are of hits.
fn assert_all_hits(what: &str, before: &Stats, after: &Stats, calls: u64) {
    let delta = |f: fn(&Stats) -> u64| f(after) - f(before);
    let (errors, loads) = (delta(|s| s.errors), delta(|s| s.loads));
    let served = delta(|s| s.hits) + delta(|s| s.coalesced);
    assert!(
        errors == 0 && loads == 0 && served == calls,
        "{what}: during the measurement the cache had {errors} errors and {loads} loads, \
         and served {served} of {calls} calls as hits; the figures would not be of hits \
         ({after:?})"
    );
}

/// The raw baselines' keys: `raw:` spreads the hot keys over the slots
/// (and a cluster's primaries), as ours are; `{raw}:` puts them all in one
/// slot (a hash tag), on one primary, for the diagnostic row.
const SPREAD: &str = "raw:";
const ONE_SLOT: &str = "{raw}:";

/// The raw baseline's read: one `GET`, then bincode 2 (standard config).
async fn raw_get<C: ConnectionLike + Send + Sync>(
    conn: &mut C,
    prefix: &str,
    id: u64,
) -> Vec<Collection> {
    let key = format!("{prefix}user-collections:{id}");
    let bytes: Option<Vec<u8>> = conn.get(&key).await.expect("GET");
    let bytes = bytes.expect("a raw hit");
    let (value, _read): (Vec<Collection>, usize) =
        bincode::serde::decode_from_slice(&bytes, bincode::config::standard()).expect("decode");
    value
}

async fn patient_cache(builder: CacheBuilder) -> Cache {
    builder
        .operation_timeout(OP_TIMEOUT)
        .connect()
        .await
        .expect("connect to the bench's Redis")
}

/// The connections of the hit-path group. A redis-rs connection is driven
/// by a task on the runtime that made it, so each runtime makes its own.
struct Targets {
    single: Cache,
    cluster: Cache,
    raw_single: ConnectionManager,
    /// Routes each command to the primary of its key's slot.
    raw_cluster: ClusterConnection,
}

async fn connect(server: &RedisServer, cluster: &RedisCluster) -> Targets {
    let raw_single =
        ConnectionManager::new(redis::Client::open(server.url()).expect("a redis url"))
            .await
            .expect("a ConnectionManager");
    Targets {
        single: patient_cache(server.builder()).await,
        cluster: patient_cache(cluster.builder()).await,
        raw_single,
        raw_cluster: cluster.raw().await,
    }
}

/// Stores every hot key for every contender and checks each reads back.
async fn plant(t: &mut Targets) {
    for i in 0..HOT {
        let id = user(i);
        let bytes =
            bincode::serde::encode_to_vec(body(id), bincode::config::standard()).expect("encode");
        let key = format!("{SPREAD}user-collections:{id}");
        let _: () = t
            .raw_single
            .set_ex(&key, &bytes, TTL.as_secs())
            .await
            .expect("SET");
        for prefix in [SPREAD, ONE_SLOT] {
            let key = format!("{prefix}user-collections:{id}");
            let _: () = t
                .raw_cluster
                .set_ex(&key, &bytes, TTL.as_secs())
                .await
                .expect("SET on the cluster");
            assert_eq!(raw_get(&mut t.raw_cluster, prefix, id).await, body(id));
        }
        assert_eq!(raw_get(&mut t.raw_single, SPREAD, id).await, body(id));
        assert_eq!(single_collections(&t.single, id).await, body(id));
        assert_eq!(single_tagged(&t.single, id).await, body(id));
        assert_eq!(cluster_collections(&t.cluster, id).await, body(id));
        assert_eq!(cluster_tagged(&t.cluster, id).await, body(id));
    }
}

/// The hit-path contenders, in table order.
const HIT_ROWS: [&str; 7] = [
    "redis-rs GET + decode, `ConnectionManager`, single server (raw-single)",
    "`#[cached]`, single server (ours-single)",
    "`#[cached]` tagged, single server (ours-tagged-single)",
    "redis-rs GET + decode, `cluster_async::ClusterConnection` (raw-cluster)",
    "`#[cached]`, cluster (ours-cluster)",
    "`#[cached]` tagged, cluster (ours-tagged-cluster)",
    "diagnostic: raw-cluster with the 64 keys in one slot, on one primary",
];

/// One task, the seven contenders interleaved; ns/op.
fn hit_group(plan: Plan, rt: &Runtime, t: &Targets) -> Vec<Row> {
    let run = |c: usize, iters: u64| -> f64 {
        let elapsed = rt.block_on(async {
            match c {
                0 => {
                    let mut conn = t.raw_single.clone();
                    time_calls(iters, async |id| raw_get(&mut conn, SPREAD, id).await).await
                }
                1 => time_calls(iters, async |id| single_collections(&t.single, id).await).await,
                2 => time_calls(iters, async |id| single_tagged(&t.single, id).await).await,
                3 => {
                    let mut conn = t.raw_cluster.clone();
                    time_calls(iters, async |id| raw_get(&mut conn, SPREAD, id).await).await
                }
                4 => time_calls(iters, async |id| cluster_collections(&t.cluster, id).await).await,
                5 => time_calls(iters, async |id| cluster_tagged(&t.cluster, id).await).await,
                _ => {
                    let mut conn = t.raw_cluster.clone();
                    time_calls(iters, async |id| raw_get(&mut conn, ONE_SLOT, id).await).await
                }
            }
        });
        ns_per_op(elapsed, iters)
    };
    let mut rows: Vec<Row> = HIT_ROWS.iter().map(|&name| Row::new(name)).collect();
    for c in 0..rows.len() {
        run(c, 4 * plan.hit_iters);
    }
    let (single, cluster) = (t.single.stats(), t.cluster.stats());
    let loads = LOADS.load(Relaxed);
    interleave(plan.hit_rounds, &mut rows, |c| run(c, plan.hit_iters));
    // Each cache served two contenders (untagged and tagged).
    let calls = 2 * plan.hit_rounds as u64 * plan.hit_iters;
    assert_all_hits("hit path, single server", &single, &t.single.stats(), calls);
    assert_all_hits("hit path, cluster", &cluster, &t.cluster.stats(), calls);
    assert_eq!(LOADS.load(Relaxed), loads, "hit path: a body ran");
    rows
}

/// The hot keys in task `t`'s own order (the same on every run), which the
/// task cycles (see vs_raw.rs: in one shared order, tasks that met on a key
/// under single-flight would move on in step for good).
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

/// 64 tasks on the 2-worker runtime `mt`, on the cluster; ops/s.
fn concurrency_group(plan: Plan, mt: &Runtime, cluster: &RedisCluster) -> Vec<Row> {
    let (ours, solo, raw) = mt.block_on(async {
        (
            patient_cache(cluster.builder()).await,
            patient_cache(cluster.builder().single_flight(false)).await,
            cluster.raw().await,
        )
    });
    let run = |c: usize, iters: u64| -> f64 {
        let elapsed = mt.block_on(async {
            let start = Instant::now();
            let tasks: Vec<_> = (0..TASKS)
                .map(|t| {
                    let mut raw = raw.clone();
                    let (ours, solo) = (ours.clone(), solo.clone());
                    let order = shuffled_keys(t);
                    tokio::spawn(async move {
                        for i in 0..iters {
                            let id = order[(i % HOT) as usize];
                            let value = match c {
                                0 => raw_get(&mut raw, SPREAD, id).await,
                                1 => concurrent_collections(&ours, id).await,
                                _ => solo_collections(&solo, id).await,
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
        Row::new("redis-rs GET + decode, `ClusterConnection` (raw-cluster)"),
        Row::new("`#[cached]`, cluster (ours-cluster)"),
        Row::new("`#[cached]`, cluster, `single_flight(false)`"),
    ];
    for c in 0..rows.len() {
        run(c, plan.concurrent_iters);
    }
    let before = (ours.stats(), solo.stats());
    interleave(plan.concurrent_rounds, &mut rows, |c| {
        run(c, plan.concurrent_iters)
    });
    let calls = plan.concurrent_rounds as u64 * TASKS * plan.concurrent_iters;
    assert_all_hits("concurrency, cluster", &before.0, &ours.stats(), calls);
    assert_all_hits(
        "concurrency, cluster, single_flight(false)",
        &before.1,
        &solo.stats(),
        calls,
    );
    rows
}

/// Keys matching `pattern` on one node, by `SCAN`.
async fn count_keys(conn: &mut redis::aio::MultiplexedConnection, pattern: &str) -> usize {
    let (mut cursor, mut count) = (0u64, 0usize);
    // Bounded: a SCAN ends within a few passes over the keyspace.
    for _ in 0..1_000_000 {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(conn)
            .await
            .expect("SCAN");
        count += keys.len();
        cursor = next;
        if cursor == 0 {
            return count;
        }
    }
    panic!("SCAN never finished");
}

/// Stores `n` keys under `bulk:` with `set_many`, `FILL_CHUNK` at a time.
async fn fill(cache: &Cache, n: usize) -> Duration {
    let keys: Vec<String> = (0..n).map(|i| format!("bulk:item:{i}")).collect();
    let start = Instant::now();
    for chunk in keys.chunks(FILL_CHUNK) {
        let batch: Vec<(&str, &u64)> = chunk.iter().map(|k| (k.as_str(), &7)).collect();
        cache.set_many(&batch, TTL).await.expect("set_many");
    }
    start.elapsed()
}

/// Times `delete_pattern("bulk:*")` and checks that it deleted `n` keys.
async fn delete_all(cache: &Cache, n: usize, what: &str) -> Duration {
    let start = Instant::now();
    let deleted = cache
        .delete_pattern("bulk:*")
        .await
        .unwrap_or_else(|e| panic!("{what}: delete_pattern failed: {e}"));
    let took = start.elapsed();
    assert_eq!(deleted, n as u64, "{what}: delete_pattern's count");
    took
}

/// The prefix-invalidation group's figures.
struct Prefix {
    /// Seconds per delete: cluster, single.
    delete: [Row; 2],
    /// Seconds per fill: cluster, single (untimed in the comparison).
    fill: [Row; 2],
    /// Keys per primary after the first fill.
    split: Vec<(String, usize)>,
}

/// Fill, then delete `plan.prefix_keys` keys, on the cluster and on the
/// single server, `plan.prefix_reps` times, alternating which goes first.
fn prefix_group(plan: Plan, mt: &Runtime, server: &RedisServer, cluster: &RedisCluster) -> Prefix {
    let n = plan.prefix_keys;
    mt.block_on(async {
        let on_cluster = patient_cache(cluster.builder()).await;
        let on_single = patient_cache(server.builder()).await;
        let mut single_raw = server.raw().await;
        let single_pattern = server.stored_key("bulk:*");
        let mut out = Prefix {
            delete: [Row::new("cluster"), Row::new("single server")],
            fill: [Row::new("cluster"), Row::new("single server")],
            split: Vec::new(),
        };
        let (before_cluster, before_single) = (on_cluster.stats(), on_single.stats());
        for rep in 0..plan.prefix_reps {
            for k in 0..2 {
                if (rep + k) % 2 == 0 {
                    out.fill[0]
                        .samples
                        .push(fill(&on_cluster, n).await.as_secs_f64());
                    let split = cluster.keys_on_each_primary("bulk:*").await;
                    assert_eq!(split.len(), 3, "three primaries: {split:?}");
                    assert_eq!(split.iter().map(|(_, c)| c).sum::<usize>(), n, "{split:?}");
                    // Slots are spread evenly and keys hash evenly over them.
                    assert!(
                        split.iter().all(|(_, c)| *c * 4 > n && *c * 5 < n * 2),
                        "not roughly a third on each primary: {split:?}"
                    );
                    if out.split.is_empty() {
                        out.split = split;
                    }
                    let took = delete_all(&on_cluster, n, "cluster").await;
                    out.delete[0].samples.push(took.as_secs_f64());
                    let left = cluster.keys_on_each_primary("bulk:*").await;
                    assert!(
                        left.iter().all(|(_, c)| *c == 0),
                        "keys left on the cluster: {left:?}"
                    );
                } else {
                    out.fill[1]
                        .samples
                        .push(fill(&on_single, n).await.as_secs_f64());
                    assert_eq!(count_keys(&mut single_raw, &single_pattern).await, n);
                    let took = delete_all(&on_single, n, "single server").await;
                    out.delete[1].samples.push(took.as_secs_f64());
                    assert_eq!(
                        count_keys(&mut single_raw, &single_pattern).await,
                        0,
                        "keys left on the single server"
                    );
                }
            }
        }
        for (what, before, cache) in [
            ("prefix, cluster", before_cluster, &on_cluster),
            ("prefix, single server", before_single, &on_single),
        ] {
            let after = cache.stats();
            assert_eq!(after.errors - before.errors, 0, "{what}: errors: {after:?}");
            assert_eq!(
                after.invalidations - before.invalidations,
                plan.prefix_reps as u64,
                "{what}: every delete landed: {after:?}"
            );
        }
        out
    })
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

fn print_rows(unit: &str, rows: &[Row], digits: usize) {
    println!("| contender | {unit} (median) | min–max |");
    println!("| --- | ---: | ---: |");
    for row in rows {
        let (min, max) = row.range();
        println!(
            "| {} | {:.digits$} | {:.digits$}–{:.digits$} |",
            row.name,
            row.median(),
            min,
            max
        );
    }
}

/// `a / b` per round: the median, and the lowest and highest.
fn paired(a: &Row, b: &Row) -> (f64, f64, f64) {
    let ratios: Vec<f64> = a
        .samples
        .iter()
        .zip(&b.samples)
        .map(|(x, y)| x / y)
        .collect();
    let min = ratios.iter().copied().fold(f64::INFINITY, f64::min);
    let max = ratios.iter().copied().fold(0.0, f64::max);
    (median(ratios), min, max)
}

fn print_hits(rows: &[Row]) {
    print_rows("ns/op", rows, 0);
    const RAW_SINGLE: usize = 0;
    const OURS_SINGLE: usize = 1;
    const TAGGED_SINGLE: usize = 2;
    const RAW_CLUSTER: usize = 3;
    const OURS_CLUSTER: usize = 4;
    const TAGGED_CLUSTER: usize = 5;
    const RAW_ONE_NODE: usize = 6;
    println!("\n| ratio of ns/op (median of per-round ratios) | value | min–max |");
    println!("| --- | ---: | ---: |");
    for (name, a, b) in [
        ("ours-cluster / raw-cluster", OURS_CLUSTER, RAW_CLUSTER),
        ("ours-cluster / ours-single", OURS_CLUSTER, OURS_SINGLE),
        ("raw-cluster / raw-single", RAW_CLUSTER, RAW_SINGLE),
        (
            "ours-tagged-cluster / ours-tagged-single",
            TAGGED_CLUSTER,
            TAGGED_SINGLE,
        ),
        (
            "ours-single / raw-single (as in vs_raw)",
            OURS_SINGLE,
            RAW_SINGLE,
        ),
        (
            "ours-tagged-cluster / ours-cluster (a tag on a cluster)",
            TAGGED_CLUSTER,
            OURS_CLUSTER,
        ),
        (
            "diagnostic: raw-cluster, one slot / raw-single",
            RAW_ONE_NODE,
            RAW_SINGLE,
        ),
    ] {
        let (ratio, min, max) = paired(&rows[a], &rows[b]);
        println!("| {name} | {ratio:.2} | {min:.2}–{max:.2} |");
    }
}

fn print_concurrency(rows: &[Row]) {
    print_rows("ops/s", rows, 0);
    let (default, _, _) = paired(&rows[1], &rows[0]);
    let (solo, _, _) = paired(&rows[2], &rows[0]);
    println!(
        "\nours-cluster / raw-cluster throughput (median of per-round ratios): \
         {default:.2} (default), {solo:.2} (`single_flight(false)`)"
    );
}

fn print_prefix(plan: Plan, prefix: &Prefix) {
    let n = plan.prefix_keys;
    let split: Vec<String> = prefix
        .split
        .iter()
        .map(|(node, c)| format!("{node}: {c} ({:.1}%)", 100.0 * *c as f64 / n as f64))
        .collect();
    println!("keys per primary after the fill: {}\n", split.join(", "));
    println!(
        "| target | keys | `delete_pattern` s (median) | min–max | keys/s | fill s (median, untimed) |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    for (delete, fill) in prefix.delete.iter().zip(&prefix.fill) {
        let (min, max) = delete.range();
        println!(
            "| {} | {n} | {:.3} | {min:.3}–{max:.3} | {:.0} | {:.3} |",
            delete.name,
            delete.median(),
            n as f64 / delete.median(),
            fill.median()
        );
    }
    println!(
        "\ncluster / single, `delete_pattern` time: {:.2}",
        prefix.delete[0].median() / prefix.delete[1].median()
    );
}

fn main() {
    let plan = Plan::from_env();
    let started = Instant::now();
    // Both panic under CI when they cannot start.
    let Some(server) = RedisServer::start() else {
        println!("cluster: skipped, no redis-server could be started");
        return;
    };
    let Some(cluster) = RedisCluster::start() else {
        println!("cluster: skipped, no Redis Cluster could be started");
        return;
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let mt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a multi-thread tokio runtime");

    let mut targets = rt.block_on(connect(&server, &cluster));
    rt.block_on(plant(&mut targets));
    let hits = hit_group(plan, &rt, &targets);
    let concurrency = concurrency_group(plan, &mt, &cluster);
    let prefix = prefix_group(plan, &mt, &server, &cluster);

    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("\n## cluster: a 3-primary Redis Cluster against a single redis-server\n");
    println!("- machine: {cores} cores (nproc), {}", cpu_model());
    println!(
        "- command: `cargo bench --bench cluster`{}",
        if plan.quick {
            " (this was a smoke run: figures are rough)"
        } else {
            ""
        }
    );
    println!(
        "- Redis: a redis-server and a cluster of 3 primaries + 3 replicas, all on loopback; \
         caches with a {OP_TIMEOUT:?} operation timeout"
    );
    println!(
        "- hit path: 4 `Collection`s ({} B of bincode) per value, {HOT} hot keys cycled, all hits; \
         median of {} interleaved rounds of {} calls per contender on a current-thread runtime; \
         concurrency: median of {} rounds of {} calls × {TASKS} tasks on 2 workers",
        bincode::serde::encode_to_vec(body(user(0)), bincode::config::standard())
            .expect("encode")
            .len(),
        plan.hit_rounds,
        plan.hit_iters,
        plan.concurrent_rounds,
        plan.concurrent_iters
    );
    println!(
        "- prefix: {} keys (`u64` values) per delete, filled by `set_many` {FILL_CHUNK} at a time; \
         median of {} repetitions on a 2-worker runtime\n",
        plan.prefix_keys, plan.prefix_reps
    );
    println!("### Hit path, one task\n");
    print_hits(&hits);
    println!("\n### Hits under concurrency, on the cluster ({TASKS} tasks, 2 workers)\n");
    print_concurrency(&concurrency);
    println!("\n### Prefix invalidation\n");
    print_prefix(plan, &prefix);
    println!("\n(took {:.0} s)", started.elapsed().as_secs_f64());
}
