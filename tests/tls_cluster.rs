//! `rediss+cluster://`: a Redis Cluster whose nodes take TLS (and talk to
//! each other over it), with a certificate from a throwaway CA that the
//! client trusts through `SSL_CERT_FILE` (read by rustls-native-certs).

use cachemacro_runtime::{Cache, Error, cached};
use cachemacro_tests::RedisCluster;

#[cached(key = "tls-cluster-greeting:<name>", ttl = 60, cache = cache)]
async fn greeting(cache: &Cache, name: &str) -> String {
    format!("hello {name}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rediss_cluster_urls_connect_over_tls_and_verify_the_nodes() {
    let Some(cluster) = RedisCluster::start_tls() else {
        return;
    };
    let url = cluster.tls_url();
    assert!(url.starts_with("rediss+cluster://127.0.0.1:"));

    // Not trusted yet: a certificate from an unknown CA is rejected.
    let err = Cache::connect(&url).await.unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err}");

    // SAFETY: this binary's only test; set before any TLS client is built.
    unsafe { std::env::set_var("SSL_CERT_FILE", cluster.ca_certificate().unwrap()) };
    let cache = Cache::connect(&url)
        .await
        .expect("verified TLS connections to every primary");
    for name in ["a", "b", "c", "d", "e", "f", "g", "h"] {
        assert_eq!(greeting(&cache, name).await, format!("hello {name}"));
        assert_eq!(greeting(&cache, name).await, format!("hello {name}"));
    }
    let stats = cache.stats();
    assert_eq!((stats.hits, stats.errors), (8, 0), "{stats:?}");
    assert_eq!(
        cache
            .delete_pattern("tls-cluster-greeting:*")
            .await
            .unwrap(),
        8
    );
    let left = cluster.keys_on_each_primary("tls-cluster-greeting:*").await;
    assert!(left.iter().all(|(_, n)| *n == 0), "{left:?}");
}
