//! What only a Redis Cluster can show: entries spread over every primary,
//! prefix deletes across nodes and through a slot migration, invalidations
//! that wait for a replica, and a failover under load. The behaviour suite
//! runs on a cluster as well (`on_cluster::*` in every behaviour file).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::time::Duration;

use cachemacro_runtime::{Cache, EntryOptions, Error};
use cachemacro_tests::{RedisCluster, eventually};

/// A cache on `cluster` with room for a loaded 2-core machine: these tests
/// assert that nothing fails, not how fast.
async fn patient(cluster: &RedisCluster) -> Cache {
    cluster
        .builder()
        .operation_timeout(Duration::from_secs(2))
        .connect()
        .await
        .expect("connect to the test cluster")
}

fn options() -> EntryOptions {
    EntryOptions::new(Duration::from_secs(600))
}

/// Reads `key` through the cache; the loader counts its runs in `loads`
/// and returns `value`.
async fn read(cache: &Cache, key: &str, value: u64, loads: &Arc<AtomicU64>) -> u64 {
    let loads = loads.clone();
    cache
        .get_or_load(key, &options(), move || async move {
            loads.fetch_add(1, SeqCst);
            Ok::<_, String>(value)
        })
        .await
        .expect("the loader never fails")
}

/// Pointed at a cluster, every key is cached: 300 keys read twice load
/// 300 times and hit 300 times, with no cache error, and every primary
/// holds some of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_key_is_cached_and_every_primary_holds_some() {
    let Some(shared) = RedisCluster::shared() else {
        return;
    };
    let cluster = shared.in_fresh_namespace();
    let cache = patient(&cluster).await;
    let loads = Arc::new(AtomicU64::new(0));
    for _ in 0..2 {
        for i in 0..300 {
            assert_eq!(read(&cache, &format!("spread:{i}"), i, &loads).await, i);
        }
    }
    let stats = cache.stats();
    assert_eq!(loads.load(SeqCst), 300);
    assert_eq!((stats.hits, stats.errors), (300, 0), "{stats:?}");
    let spread = cluster.keys_on_each_primary("spread:*").await;
    assert_eq!(spread.len(), 3, "{spread:?}");
    assert!(spread.iter().all(|(_, n)| *n > 0), "{spread:?}");
    assert_eq!(spread.iter().map(|(_, n)| n).sum::<usize>(), 300);
}

/// `CacheBuilder::cluster` and a `redis+cluster://` URL carrying settings
/// reach the same cluster; a malformed cluster URL is an error at start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_urls_and_the_builder_reach_the_same_cluster() {
    let Some(shared) = RedisCluster::shared() else {
        return;
    };
    let cluster = shared.in_fresh_namespace();
    let url = format!(
        "{}?namespace={}&operation_timeout=300ms",
        cluster.url(),
        cluster.namespace()
    );
    let by_url = Cache::connect(&url).await.expect("a cluster URL connects");
    by_url
        .set("via-url", &7u32, Duration::from_secs(60))
        .await
        .unwrap();
    let seeds: Vec<String> = cluster
        .url()
        .trim_start_matches("redis+cluster://")
        .split(',')
        .map(str::to_owned)
        .collect();
    let by_builder = Cache::builder()
        .cluster(seeds[..1].to_vec())
        .namespace(cluster.namespace())
        .connect()
        .await
        .expect("one seed is enough");
    assert_eq!(by_builder.get::<u32>("via-url").await.unwrap(), Some(7));
    for (bad, says) in [
        ("redis+cluster://127.0.0.1:7000/3", "only database 0"),
        ("redis+cluster://127.0.0.1", "host and a port"),
        (
            "redis+cluster://127.0.0.1:7000?namespace=a&bogus=1",
            "bogus",
        ),
    ] {
        match Cache::connect(bad).await {
            Err(Error::InvalidUrl { reason, .. }) => {
                assert!(reason.contains(says), "{bad}: {reason}")
            }
            other => panic!("{bad}: expected InvalidUrl, got {:?}", other.map(|_| ())),
        }
    }
}

/// A prefix delete reaches every primary: 3 000 keys spread over the three
/// go, and nothing outside the prefix does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prefix_delete_clears_every_primary() {
    let Some(shared) = RedisCluster::shared() else {
        return;
    };
    let cluster = shared.in_fresh_namespace();
    let cache = patient(&cluster).await;
    let entries: Vec<(String, u32)> = (0..3_000).map(|i| (format!("wide:{i}"), i)).collect();
    let refs: Vec<(&str, &u32)> = entries.iter().map(|(k, v)| (k.as_str(), v)).collect();
    cache
        .set_many(&refs, Duration::from_secs(600))
        .await
        .unwrap();
    cache
        .set("wider:1", &1u32, Duration::from_secs(600))
        .await
        .unwrap();
    assert!(
        cluster
            .keys_on_each_primary("wide:*")
            .await
            .iter()
            .all(|(_, n)| *n > 500)
    );
    assert_eq!(cache.delete_pattern("wide:*").await.unwrap(), 3_000);
    let left = cluster.keys_on_each_primary("wide:*").await;
    assert!(left.iter().all(|(_, n)| *n == 0), "{left:?}");
    assert_eq!(cache.get::<u32>("wider:1").await.unwrap(), Some(1));
}

/// The node id of the node at `addr`.
async fn node_id(cluster: &RedisCluster, addr: &str) -> String {
    redis::cmd("CLUSTER")
        .arg("MYID")
        .query_async(&mut cluster.node(addr).await)
        .await
        .expect("CLUSTER MYID")
}

/// Starts moving `key`'s slot from its primary to another (`IMPORTING` on
/// the target, `MIGRATING` on the source), moving no key yet; returns
/// (source, target).
async fn begin_migration(cluster: &RedisCluster, key: &str) -> (String, String) {
    let source = cluster.primary_for(key).await;
    let target = cluster
        .primaries()
        .await
        .into_iter()
        .find(|p| *p != source)
        .expect("another primary");
    let (source_id, target_id) = (
        node_id(cluster, &source).await,
        node_id(cluster, &target).await,
    );
    let mut src = cluster.node(&source).await;
    let mut dst = cluster.node(&target).await;
    let slot: u16 = redis::cmd("CLUSTER")
        .arg("KEYSLOT")
        .arg(cluster.stored_key(key))
        .query_async(&mut src)
        .await
        .unwrap();
    for (conn, state, other) in [
        (&mut dst, "IMPORTING", &source_id),
        (&mut src, "MIGRATING", &target_id),
    ] {
        let _: () = redis::cmd("CLUSTER")
            .arg("SETSLOT")
            .arg(slot)
            .arg(state)
            .arg(other)
            .query_async(conn)
            .await
            .unwrap();
    }
    (source, target)
}

/// Mid-migration, a slot's keys are split between its source and its
/// target; a prefix delete finds them on both (the source scanned first,
/// the target's keys reached through `ASK`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prefix_delete_during_a_slot_migration_clears_both_sides() {
    let Some(cluster) = RedisCluster::start() else {
        return;
    };
    let cache = patient(&cluster).await;
    // One hash tag: every key in one slot.
    let keys: Vec<String> = (0..100).map(|i| format!("moving:{{m}}:{i}")).collect();
    for key in &keys {
        cache
            .set(key, &1u32, Duration::from_secs(600))
            .await
            .unwrap();
    }
    let (source, target) = begin_migration(&cluster, &keys[0]).await;
    let mut src = cluster.node(&source).await;
    let (host, port) = target.rsplit_once(':').unwrap();
    let moved: Vec<String> = keys[..50].iter().map(|k| cluster.stored_key(k)).collect();
    let _: String = redis::cmd("MIGRATE")
        .arg(host)
        .arg(port)
        .arg("")
        .arg(0)
        .arg(5_000)
        .arg("KEYS")
        .arg(&moved)
        .query_async(&mut src)
        .await
        .unwrap();
    let split = cluster.keys_on_each_primary("moving:*").await;
    let on = |addr: &str| {
        split
            .iter()
            .find(|(a, _)| a == addr)
            .map(|(_, n)| *n)
            .unwrap()
    };
    assert_eq!((on(&source), on(&target)), (50, 50), "{split:?}");

    assert_eq!(cache.delete_pattern("moving:*").await.unwrap(), 100);
    let left = cluster.keys_on_each_primary("moving:*").await;
    assert!(left.iter().all(|(_, n)| *n == 0), "{left:?}");
    assert_eq!(cache.stats().invalidations_queued, 0);
}

/// A prefix invalidation that no replica acknowledged has not landed (a
/// failover could bring the old entry back): it is queued, the handle
/// bypasses the cache, its replays do not count while no replica has it,
/// and once the replica answers it lands and caching resumes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalidation_no_replica_acknowledged_is_replayed() {
    let Some(cluster) = RedisCluster::start() else {
        return;
    };
    let cache = cluster.cache().await;
    let loads = Arc::new(AtomicU64::new(0));
    read(&cache, "acked:1", 1, &loads).await;
    let primary = cluster.primary_for("acked:1").await;
    let (replica, _) = cluster
        .replicas()
        .await
        .into_iter()
        .find(|(_, p)| *p == primary)
        .expect("the primary has a replica");
    cluster.pause(&replica);
    assert!(
        cache.delete_pattern("acked:*").await.is_err(),
        "no replica acknowledged it"
    );
    let stats = cache.stats();
    assert_eq!(stats.invalidations_queued, 1, "{stats:?}");
    // Its replays find nothing left to delete on the primary, and still
    // must not count as landed while no replica has the first `UNLINK`.
    // (A window for something that must not happen; the replica is marked
    // failed only after the 1 s node timeout.)
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(cache.stats().invalidations_replayed, 0);
    // Bypassed: the body runs although the key was just deleted on the primary.
    read(&cache, "acked:1", 2, &loads).await;
    read(&cache, "acked:1", 2, &loads).await;
    assert_eq!(
        loads.load(SeqCst),
        3,
        "bypassed while the invalidation is queued"
    );
    cluster.resume(&replica);
    eventually("the invalidation is replayed", async || {
        cache.stats().invalidations_replayed >= 1
    })
    .await;
    read(&cache, "acked:1", 3, &loads).await;
    assert_eq!(
        read(&cache, "acked:1", 4, &loads).await,
        3,
        "caching resumed"
    );
}

/// SIGKILL one primary while four tasks read: no call fails, its replica
/// takes over and serves hits, and invalidations issued while the primary
/// was down (of a key, and of a prefix whose scan it fails) are not lost:
/// their keys read the new rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_primary_killed_under_load_fails_over_without_losing_an_invalidation() {
    let Some(cluster) = RedisCluster::start() else {
        return;
    };
    let cache = cluster.cache().await;
    // The row behind `item:<i>`, bumped by writes.
    let rows: Arc<Vec<AtomicU64>> = Arc::new((0..100).map(|_| AtomicU64::new(1)).collect());
    let loads = Arc::new(AtomicU64::new(0));
    let read_row = |cache: Cache, rows: Arc<Vec<AtomicU64>>, loads: Arc<AtomicU64>, i: usize| async move {
        cache
            .get_or_load(&format!("item:{i}"), &options(), move || async move {
                loads.fetch_add(1, SeqCst);
                Ok::<_, String>(rows[i].load(SeqCst))
            })
            .await
    };
    for i in 0..100 {
        read_row(cache.clone(), rows.clone(), loads.clone(), i)
            .await
            .unwrap();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let mut readers = Vec::new();
    for t in 0..4 {
        let (cache, rows, loads, stop) = (cache.clone(), rows.clone(), loads.clone(), stop.clone());
        readers.push(tokio::spawn(async move {
            let mut calls = 0u64;
            while !stop.load(SeqCst) {
                let i = (calls as usize * 7 + t) % 100;
                let value = read_row(cache.clone(), rows.clone(), loads.clone(), i)
                    .await
                    .expect("a call never fails");
                assert!(value >= 1);
                calls += 1;
                tokio::task::yield_now().await;
            }
            calls
        }));
    }
    let victim_key = "item:42";
    let primary = cluster.primary_for(victim_key).await;
    // A prefix with a key on the doomed primary: `item:<d>*` for the
    // first digit of one of its keys (other than 42).
    let mut digit = None;
    for i in (0..100).filter(|&i| i != 42) {
        if cluster.primary_for(&format!("item:{i}")).await == primary {
            digit = i.to_string().chars().next();
            break;
        }
    }
    let digit = digit.expect("the primary holds more than one of 100 keys");
    let by_prefix: Vec<usize> = (0..100)
        .filter(|i| i.to_string().starts_with(digit) && *i != 42)
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    cluster.kill(&primary);
    // Writes while the primary is down: rows change, then their keys are
    // invalidated, one exactly and the rest by prefix; neither can land now.
    rows[42].store(2, SeqCst);
    assert!(
        cache.delete(victim_key).await.is_err(),
        "its primary is down"
    );
    for &i in &by_prefix {
        rows[i].store(2, SeqCst);
    }
    assert!(
        cache
            .delete_pattern(&format!("item:{digit}*"))
            .await
            .is_err(),
        "one primary cannot be scanned"
    );
    cluster.wait_for_failover().await;
    eventually(
        "the invalidations land on the promoted replica",
        async || {
            let s = cache.stats();
            s.invalidations_replayed >= s.invalidations_queued
        },
    )
    .await;
    eventually("hits resume on the promoted replica", async || {
        let before = cache.stats().hits;
        read_row(cache.clone(), rows.clone(), loads.clone(), 42)
            .await
            .unwrap();
        read_row(cache.clone(), rows.clone(), loads.clone(), 42)
            .await
            .unwrap();
        cache.stats().hits > before
    })
    .await;
    stop.store(true, SeqCst);
    let mut calls = 0;
    for reader in readers {
        calls += reader.await.expect("no reader panicked");
    }
    assert!(calls > 100, "the readers kept going ({calls} calls)");
    for i in by_prefix.into_iter().chain([42]) {
        assert_eq!(
            read_row(cache.clone(), rows.clone(), loads.clone(), i)
                .await
                .unwrap(),
            2,
            "item:{i}: an invalidation issued during the failover was lost"
        );
    }
}

/// A paused primary (SIGSTOP: connections open, nothing answers) costs
/// the calls on its keys one operation timeout each, never a hang; keys on
/// the other primaries keep hitting meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_primary_times_out_and_the_others_keep_hitting() {
    let Some(cluster) = RedisCluster::start() else {
        return;
    };
    let cache = cluster.cache().await;
    let loads = Arc::new(AtomicU64::new(0));
    let keys: Vec<String> = (0..30).map(|i| format!("part:{i}")).collect();
    for (i, key) in keys.iter().enumerate() {
        read(&cache, key, i as u64, &loads).await;
    }
    let paused = cluster.primary_for(&keys[0]).await;
    let mut elsewhere = Vec::new();
    for key in &keys {
        if cluster.primary_for(key).await != paused {
            elsewhere.push(key.clone());
        }
    }
    assert!(!elsewhere.is_empty());
    cluster.pause(&paused);
    let guard = Duration::from_secs(10);
    let value = tokio::time::timeout(guard, read(&cache, &keys[0], 0, &loads))
        .await
        .expect("the call came back instead of hanging");
    assert_eq!(value, 0, "the body's value");
    // If the paused primary carried this instance's subscription, the
    // instance refills once what it could no longer vouch for (it may have
    // missed announcements), after subscribing on another node; keys on the
    // live primaries then hit while the paused one still hangs.
    eventually("every key on a live primary hits", async || {
        let hits = cache.stats().hits;
        for key in &elsewhere {
            tokio::time::timeout(guard, read(&cache, key, 99, &loads))
                .await
                .expect("no hang");
        }
        cache.stats().hits - hits == elsewhere.len() as u64
    })
    .await;
    let health = cache.health();
    let suspect = health.announcements.map_or(0, |a| a.suspect_shards);
    assert!(
        (1..16_384).contains(&suspect),
        "only the paused primary's slots are suspect: {suspect}"
    );
    cluster.resume(&paused);
}

#[cachemacro_runtime::cached(key = "user:{<user_id>}:collections", ttl = "1h", cache = cache)]
async fn collections(cache: &Cache, user_id: u64) -> Vec<String> {
    vec![format!("collections of {user_id}")]
}

#[cachemacro_runtime::cached(key = "user:{<user_id>}:profile", ttl = "1h", cache = cache)]
async fn profile(cache: &Cache, user_id: u64) -> String {
    format!("profile of {user_id}")
}

/// A hash tag in a template puts one user's keys in one slot (so on one
/// primary), and users still spread over the primaries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hash_tags_in_templates_keep_a_users_keys_together() {
    let Some(shared) = RedisCluster::shared() else {
        return;
    };
    let cluster = shared.in_fresh_namespace();
    let cache = patient(&cluster).await;
    let mut homes = std::collections::BTreeSet::new();
    for user in 0..30 {
        collections(&cache, user).await;
        profile(&cache, user).await;
        assert_eq!(profile(&cache, user).await, format!("profile of {user}"));
        let placed: Vec<(String, usize)> = cluster
            .keys_on_each_primary(&format!("user:{{{user}}}:*"))
            .await
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .collect();
        assert_eq!(placed.len(), 1, "user {user}: {placed:?}");
        assert_eq!(placed[0].1, 2, "user {user}: both keys");
        homes.insert(placed[0].0.clone());
    }
    assert_eq!(homes.len(), 3, "30 users spread over every primary");
    assert_eq!(cache.stats().hits, 30);
}

/// An invalidation whose primary dies before any replica has it did not
/// land, even if the primary had run its `UNLINK`: the `WAIT` that follows
/// it cannot be answered by another node or another connection. It is
/// queued, and replayed on the promoted replica.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalidation_lost_with_its_primary_is_replayed() {
    let Some(cluster) = RedisCluster::start() else {
        return;
    };
    let cache = patient(&cluster).await;
    let loads = Arc::new(AtomicU64::new(0));
    read(&cache, "{v}victim", 1, &loads).await;
    let primary = cluster.primary_for("{v}victim").await;
    let (replica, _) = cluster
        .replicas()
        .await
        .into_iter()
        .find(|(_, p)| *p == primary)
        .expect("the primary has a replica");
    eventually("the entry reached the replica", async || {
        let mut r = cluster.node(&replica).await;
        let _: () = redis::cmd("READONLY").query_async(&mut r).await.unwrap();
        let v: Option<Vec<u8>> = redis::cmd("GET")
            .arg("{v}victim")
            .query_async(&mut r)
            .await
            .unwrap();
        v.is_some()
    })
    .await;
    cluster.pause(&replica);
    // Fill the replication link, so the `UNLINK` stays in the primary's
    // buffers and dies with it, as in a crash.
    let mut raw = cluster.raw().await;
    let _: () = redis::cmd("SET")
        .arg("{v}filler")
        .arg(vec![b'x'; 24 << 20])
        .query_async(&mut raw)
        .await
        .unwrap();
    let deleting = tokio::spawn({
        let cache = cache.clone();
        async move { cache.delete("{v}victim").await }
    });
    tokio::time::sleep(Duration::from_millis(400)).await;
    cluster.kill(&primary);
    let result = deleting.await.unwrap();
    assert!(result.is_err(), "landed without a replica: {result:?}");
    cluster.resume(&replica);
    cluster.wait_for_failover().await;
    eventually("the invalidation is replayed", async || {
        let s = cache.stats();
        s.invalidations_replayed >= s.invalidations_queued
    })
    .await;
    let fresh = patient(&cluster).await;
    assert_eq!(
        read(&fresh, "{v}victim", 2, &loads).await,
        2,
        "not the old entry"
    );
}

/// While a tag's slot migrates, fills that carry the tag still store: every
/// command of a batch touches one key, so the client can follow `ASK`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fills_with_a_tag_in_a_migrating_slot_still_store() {
    let Some(cluster) = RedisCluster::start() else {
        return;
    };
    let cache = patient(&cluster).await;
    let tag_key = "__cachemacro:tag:{m}t";
    begin_migration(&cluster, tag_key).await;
    let tagged = options().tags(["{m}t"]);
    let loads = Arc::new(AtomicU64::new(0));
    for _ in 0..3 {
        let loads = loads.clone();
        let v: u64 = cache
            .get_or_load("page:1", &tagged, move || async move {
                loads.fetch_add(1, SeqCst);
                Ok::<_, String>(1)
            })
            .await
            .unwrap();
        assert_eq!(v, 1);
    }
    let s = cache.stats();
    assert_eq!((loads.load(SeqCst), s.hits, s.errors), (1, 2, 0), "{s:?}");
}
