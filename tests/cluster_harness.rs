//! The cluster harness itself, through redis-rs alone (no cache): the
//! shape of the cluster, keys spread over its primaries, a failover, and
//! namespaces on the shared cluster.

use std::time::Instant;

use cachemacro_tests::{RedisCluster, Server};

const KEYS: usize = 300;

/// Three primaries with a replica each; keys written through `raw` land on
/// every primary; when one primary dies its replica takes over its slots,
/// with the keys it had.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_primary_dies_and_its_replica_serves_its_keys() {
    let started = Instant::now();
    let Some(cluster) = RedisCluster::start() else {
        return;
    };
    eprintln!("cluster started in {:?}", started.elapsed());
    let primaries = cluster.primaries().await;
    let replicas = cluster.replicas().await;
    assert_eq!(primaries.len(), 3, "{primaries:?}");
    assert_eq!(replicas.len(), 3, "{replicas:?}");
    for primary in &primaries {
        let followers = replicas.iter().filter(|(_, of)| of == primary).count();
        assert_eq!(followers, 1, "{primary} has one replica: {replicas:?}");
        assert!(
            cluster.url().contains(primary.as_str()),
            "{}",
            cluster.url()
        );
    }

    let mut raw = cluster.raw().await;
    for i in 0..KEYS {
        let _: () = redis::cmd("SET")
            .arg(format!("harness:{i}"))
            .arg(i)
            .query_async(&mut raw)
            .await
            .unwrap();
    }
    // Replication is asynchronous: make sure every replica has the keys
    // (WAIT goes to every primary; the reply is the fewest replicas that
    // acknowledged).
    let acked: i64 = redis::cmd("WAIT")
        .arg(1)
        .arg(1000)
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(acked, 1, "every primary's replica has its keys");
    let counts = cluster.keys_on_each_primary("harness:*").await;
    assert_eq!(counts.len(), 3, "{counts:?}");
    assert!(counts.iter().all(|&(_, n)| n > 0), "{counts:?}");
    assert_eq!(counts.iter().map(|&(_, n)| n).sum::<usize>(), KEYS);

    let victim = cluster.primary_for("harness:0").await;
    let (heir, _) = replicas
        .iter()
        .find(|(_, of)| *of == victim)
        .cloned()
        .unwrap();
    cluster.kill(&victim);
    let killed = Instant::now();
    cluster.wait_for_failover().await;
    eprintln!("failed over in {:?}", killed.elapsed());
    let now = cluster.primaries().await;
    assert!(
        now.contains(&heir) && !now.contains(&victim),
        "{heir} replaced {victim}: {now:?}"
    );
    assert_eq!(cluster.primary_for("harness:0").await, heir);
    assert!(!cluster.url().contains(&victim), "{}", cluster.url());

    let mut raw = cluster.raw().await;
    let value: Option<String> = redis::cmd("GET")
        .arg("harness:0")
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(value.as_deref(), Some("0"));
    let counts = cluster.keys_on_each_primary("harness:*").await;
    assert_eq!(counts.iter().map(|&(_, n)| n).sum::<usize>(), KEYS);
}

/// Each handle on the shared cluster has a namespace of its own, which
/// `stored_key`, `plant` and `keys_on_each_primary` apply; a [`Server`]
/// on it reads single keys wherever they live.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handles_on_the_shared_cluster_keep_apart() {
    let Some(shared) = RedisCluster::shared() else {
        return;
    };
    let (a, b) = (shared.in_fresh_namespace(), shared.in_fresh_namespace());
    assert!(!a.namespace().is_empty());
    assert_ne!(a.namespace(), b.namespace());
    assert_eq!(a.stored_key("k:1"), format!("{}:k:1", a.namespace()));
    for i in 0..30 {
        a.plant(&format!("k:{i}"), b"a", 60_000).await;
    }
    b.plant("k:0", b"b", 60_000).await;
    let count = |counts: Vec<(String, usize)>| counts.into_iter().map(|(_, n)| n).sum::<usize>();
    assert_eq!(count(a.keys_on_each_primary("k:*").await), 30);
    assert_eq!(count(b.keys_on_each_primary("k:*").await), 1);

    let server = Server::Cluster(b);
    let mut raw = server.raw().await;
    let value: Vec<u8> = redis::cmd("GET")
        .arg(server.stored_key("k:0"))
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(value, b"b");
    let ms: i64 = redis::cmd("PTTL")
        .arg(server.stored_key("k:0"))
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!(ms > 0 && ms <= 60_000, "{ms}");
    assert!(
        server.url().starts_with("redis+cluster://127.0.0.1:"),
        "{}",
        server.url()
    );
}
