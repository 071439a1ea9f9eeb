//! Two tiers: the in-process tier in front of Redis, kept coherent across
//! instances by announcements. Two `Cache` handles with connections of
//! their own stand for two instances (tests/tiers_processes.rs runs two OS
//! processes).

use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::time::Duration;

use cachemacro_runtime::{Cache, cached, invalidates};
use cachemacro_tests::{Proxy, RedisCluster, RedisServer, eventually};

/// The "database": one row per user.
static ROWS: [AtomicU64; 64] = [const { AtomicU64::new(1) }; 64];

#[cached(key = "profile:<user>", ttl = "1h", tags = ["user:<user>"], cache = cache)]
async fn profile(cache: &Cache, user: usize) -> u64 {
    ROWS[user].load(SeqCst)
}

#[cached(key = "sets:user:<user>:<filter>", ttl = "1h", cache = cache)]
async fn sets(cache: &Cache, user: usize, filter: &str) -> String {
    format!("{filter} v{}", ROWS[user].load(SeqCst))
}

#[invalidates("profile:<user>", cache = cache)]
async fn edit_profile(cache: &Cache, user: usize) {
    ROWS[user].fetch_add(1, SeqCst);
}

#[invalidates("sets:user:<user>:*", cache = cache)]
async fn delete_set(cache: &Cache, user: usize) {
    ROWS[user].fetch_add(1, SeqCst);
}

#[invalidates(tag = "user:<user>", cache = cache)]
async fn rename(cache: &Cache, user: usize) {
    ROWS[user].fetch_add(1, SeqCst);
}

#[cached(key = "balance:<user>", ttl = "1h", local = false, cache = cache)]
async fn balance(cache: &Cache, user: usize) -> u64 {
    ROWS[user].load(SeqCst)
}

#[cached(key = "feed:<user>", ttl = "1h", local_ttl = "100ms", cache = cache)]
async fn feed(cache: &Cache, user: usize) -> u64 {
    ROWS[user].load(SeqCst)
}

/// An instance with the local tier on.
async fn instance(url: &str, namespace: &str) -> Cache {
    let cache = Cache::builder()
        .url(url)
        .namespace(namespace)
        .operation_timeout(Duration::from_millis(200))
        .local_capacity(10_000)
        .connect()
        .await
        .expect("connect");
    eventually("the instance hears announcements", async || {
        cache.health().local.coherent
    })
    .await;
    cache
}

fn namespace(server: &RedisServer) -> String {
    server.stored_key("")
}

/// The check: A caches, B invalidates a key, a prefix and a tag;
/// A's next reads are fresh within a bounded wait; A's own invalidation is
/// visible to A at once.
#[tokio::test]
async fn an_invalidation_on_one_instance_reaches_the_other() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    reaches_the_other(&server.url(), &namespace(&server), 1).await;
}

/// The same on a Redis Cluster: announcements published on one node reach
/// a subscriber on another.
#[tokio::test]
async fn on_a_cluster_too() {
    let Some(cluster) = RedisCluster::shared() else {
        return;
    };
    let cluster = cluster.in_fresh_namespace();
    reaches_the_other(&cluster.url(), cluster.namespace(), 40).await;
}

async fn reaches_the_other(url: &str, ns: &str, first_user: usize) {
    let a = instance(url, ns).await;
    let b = instance(url, ns).await;
    let (key_user, prefix_user, tag_user) = (first_user, first_user + 1, first_user + 2);

    for _ in 0..3 {
        profile(&a, key_user).await;
        sets(&a, prefix_user, "cats").await;
        profile(&a, tag_user).await;
    }
    let warm = a.stats();
    // A miss fills Redis, the next read fills the local tier from it.
    assert_eq!(
        (warm.local_hits, warm.hits),
        (3, 6),
        "the third round is served in process: {warm:?}"
    );

    edit_profile(&b, key_user).await;
    delete_set(&b, prefix_user).await;
    rename(&b, tag_user).await;
    let want = (
        ROWS[key_user].load(SeqCst),
        format!("cats v{}", ROWS[prefix_user].load(SeqCst)),
        ROWS[tag_user].load(SeqCst),
    );
    eventually("A reads what B wrote", async || {
        (
            profile(&a, key_user).await,
            sets(&a, prefix_user, "cats").await,
            profile(&a, tag_user).await,
        ) == want
    })
    .await;

    // Read-your-writes: A's own invalidation, then A's very next read.
    for round in 0..20 {
        profile(&a, key_user).await;
        edit_profile(&a, key_user).await;
        assert_eq!(
            profile(&a, key_user).await,
            ROWS[key_user].load(SeqCst),
            "round {round}: A's own write is visible to A at once"
        );
    }
}

/// Warm local hits send nothing to Redis: the server's command counters do
/// not move (its background probes, `TIME` and `PING`, aside).
#[tokio::test]
async fn warm_local_hits_send_nothing_to_redis() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let a = instance(&server.url(), &namespace(&server)).await;
    profile(&a, 10).await;
    profile(&a, 10).await; // now held in process
    let before = data_commands(&server).await;
    for _ in 0..1_000 {
        assert_eq!(profile(&a, 10).await, ROWS[10].load(SeqCst));
    }
    let after = data_commands(&server).await;
    assert_eq!(before, after, "1 000 local hits sent no data command");
    assert!(a.stats().local_hits >= 1_000);
}

/// Every command the server ran, but the probes' `TIME`, the heartbeat's
/// `PING` and this `INFO`.
async fn data_commands(server: &RedisServer) -> u64 {
    let mut raw = server.raw().await;
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut raw)
        .await
        .unwrap();
    info.lines()
        .filter(|l| l.starts_with("cmdstat_"))
        .filter(|l| {
            !["cmdstat_time:", "cmdstat_ping:", "cmdstat_info:"]
                .iter()
                .any(|p| l.starts_with(p))
        })
        .filter_map(|l| {
            let calls = l.split("calls=").nth(1)?.split(',').next()?;
            calls.parse::<u64>().ok()
        })
        .sum()
}

/// A's connections cut by the proxy: what B invalidates meanwhile is never
/// served stale by A, during the cut or after it.
#[tokio::test]
async fn a_cut_instance_never_serves_what_it_missed() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let ns = namespace(&server);
    let proxy = Proxy::start(server.url().trim_start_matches("redis://").parse().unwrap());
    let a = instance(&proxy.url(), &ns).await;
    let b = instance(&server.url(), &ns).await;
    let user = 20;
    for _ in 0..3 {
        profile(&a, user).await;
    }
    assert!(a.stats().local_hits >= 1);

    proxy.cut();
    eventually("A notices it is deaf", async || !a.health().local.coherent).await;
    edit_profile(&b, user).await;
    for _ in 0..20 {
        assert_eq!(
            profile(&a, user).await,
            ROWS[user].load(SeqCst),
            "cut off, A runs the body"
        );
    }
    proxy.restore();
    eventually("A hears announcements again", async || {
        a.health().local.coherent
    })
    .await;
    for _ in 0..50 {
        assert_eq!(
            profile(&a, user).await,
            ROWS[user].load(SeqCst),
            "after the cut, A never serves the entry B invalidated"
        );
    }
}

/// `CLIENT KILL TYPE pubsub` drops only the subscription: the local tier is
/// flushed, and what B invalidates before A listens again is not served.
#[tokio::test]
async fn a_killed_subscription_flushes_the_local_tier() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let ns = namespace(&server);
    let a = instance(&server.url(), &ns).await;
    let b = instance(&server.url(), &ns).await;
    let user = 30;
    for _ in 0..3 {
        profile(&a, user).await;
    }
    let flushes = a.health().local.flushes;
    let mut raw = server.raw().await;
    let _: redis::Value = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("pubsub")
        .query_async(&mut raw)
        .await
        .unwrap();
    eventually("A notices and flushes", async || {
        a.health().local.flushes > flushes
    })
    .await;
    edit_profile(&b, user).await;
    assert_eq!(profile(&a, user).await, ROWS[user].load(SeqCst));
    eventually("A listens again", async || a.health().local.coherent).await;
    for _ in 0..20 {
        assert_eq!(profile(&a, user).await, ROWS[user].load(SeqCst));
    }
}

/// `local = false` keeps a function out of the in-process tier; `local_ttl`
/// shortens its stay there.
#[tokio::test]
async fn per_function_local_settings() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let a = instance(&server.url(), &namespace(&server)).await;
    for _ in 0..5 {
        balance(&a, 50).await;
        feed(&a, 51).await;
    }
    let s = a.stats();
    let family = |name: &str| s.family(name).expect("a family");
    assert_eq!(
        (
            family("balance:<user>").local_hits,
            family("balance:<user>").hits
        ),
        (0, 4),
        "local = false: every hit is a Redis hit"
    );
    assert_eq!(family("feed:<user>").local_hits, 3, "{s:?}");
    tokio::time::sleep(Duration::from_millis(150)).await;
    feed(&a, 51).await;
    let later = a.stats();
    let feed_family = later.family("feed:<user>").expect("a family");
    assert_eq!(
        (feed_family.local_hits, feed_family.hits),
        (3, 5),
        "past its local_ttl the entry is read from Redis again"
    );
}

static PAGE_LOADS: AtomicU64 = AtomicU64::new(0);
static CATALOG: AtomicU64 = AtomicU64::new(1);

#[cached(key = "page:<n>", ttl = "1h", tags = ["catalog"], cache = cache)]
async fn page(cache: &Cache, n: u64) -> u64 {
    PAGE_LOADS.fetch_add(1, SeqCst);
    CATALOG.load(SeqCst) * 1000 + n
}

/// After a tag invalidation, a local entry recorded at the tag's old
/// version is dropped when read, not left to shadow the refilled entry in
/// Redis (which would load on every call).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tag_invalidation_does_not_leave_local_entries_shadowing_redis() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let a = instance(&server.url(), &server.stored_key("tagshadow")).await;
    for n in [1, 2] {
        page(&a, n).await; // fills Redis
        page(&a, n).await; // kept locally
    }
    a.invalidate_tag("catalog").await.unwrap();
    CATALOG.fetch_add(1, SeqCst);
    // Page 2 refills, and its next read keeps the tag's new version locally.
    page(&a, 2).await;
    page(&a, 2).await;
    assert_eq!(page(&a, 1).await, 2001, "page 1 refills");
    let before = PAGE_LOADS.load(SeqCst);
    for _ in 0..5 {
        assert_eq!(page(&a, 1).await, 2001);
    }
    assert_eq!(PAGE_LOADS.load(SeqCst), before, "a refilled key hits");
}

/// An instance whose runtime is not driven (so its listener cannot apply
/// announcements) stops serving from its local tier once no heartbeat has
/// been confirmed recently: it reads Redis instead.
#[test]
fn an_instance_whose_listener_cannot_run_stops_serving_locally() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let ns = server.stored_key("undriven");
    let driven_only_by_calls = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let other = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let user = 60;
    let b = driven_only_by_calls.block_on(async {
        let b = instance(&server.url(), &ns).await;
        profile(&b, user).await;
        profile(&b, user).await;
        let hits = b.stats().local_hits;
        profile(&b, user).await;
        assert_eq!(b.stats().local_hits, hits + 1, "held locally");
        b
    });
    other.block_on(async {
        let a = instance(&server.url(), &ns).await;
        edit_profile(&a, user).await;
        assert_eq!(a.stats().invalidation_errors, 0);
    });
    // Longer than a heartbeat and half the operation timeout (50 + 100 ms).
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(
        driven_only_by_calls.block_on(profile(&b, user)),
        ROWS[user].load(SeqCst),
        "B read Redis, not its unconfirmed local tier"
    );
}

/// Redis 7 ACL users get no pub/sub channels by default: the cache then
/// runs without announcements (and without a local tier) instead of
/// failing every invalidation, and `health()` says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_pubsub_rights_the_cache_still_works_and_says_so() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let mut conn = server.raw().await;
    let _: () = redis::cmd("ACL")
        .arg("SETUSER")
        .arg("app")
        .arg("on")
        .arg(">pw")
        .arg("~*")
        .arg("+@all")
        .arg("resetchannels")
        .query_async(&mut conn)
        .await
        .unwrap();
    let url = server.url().replace("redis://", "redis://app:pw@");
    let cache = Cache::builder()
        .url(&url)
        .namespace(server.stored_key("acl"))
        .operation_timeout(Duration::from_millis(200))
        .local_capacity(100)
        .connect()
        .await
        .expect("connect");
    let user = 61;
    profile(&cache, user).await;
    edit_profile(&cache, user).await;
    assert_eq!(
        cache.health().queued_invalidations,
        0,
        "the invalidation landed"
    );
    assert_eq!(profile(&cache, user).await, ROWS[user].load(SeqCst));
    let hits = cache.stats().hits;
    assert_eq!(profile(&cache, user).await, ROWS[user].load(SeqCst));
    assert_eq!(cache.stats().hits, hits + 1, "caching works");
    let health = cache.health();
    assert!(
        !health.local.coherent,
        "no local tier without announcements"
    );
    let why = health
        .announcements
        .and_then(|a| a.last_error)
        .unwrap_or_default();
    assert!(why.contains("pub/sub refused"), "health names it: {why}");
}
