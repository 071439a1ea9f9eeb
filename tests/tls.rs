//! `rediss://`: a TLS-only redis-server whose certificate comes from a
//! throwaway CA that the client trusts through `SSL_CERT_FILE` (read by
//! rustls-native-certs).

use cachemacro_runtime::{Cache, Error, cached};
use cachemacro_tests::RedisServer;

#[cached(key = "tls-greeting:<name>", ttl = 60, cache = cache)]
async fn greeting(cache: &Cache, name: &str) -> String {
    format!("hello {name}")
}

#[tokio::test]
async fn rediss_urls_connect_over_tls_and_verify_the_server() {
    let Some(server) = RedisServer::start_tls() else {
        return;
    };
    let url = server.url();
    assert!(url.starts_with("rediss://localhost:"));

    // Not trusted yet: a certificate from an unknown CA is rejected.
    let err = Cache::connect(&url).await.unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err}");

    // SAFETY: this binary's only test; set before any TLS client is built.
    unsafe { std::env::set_var("SSL_CERT_FILE", server.ca_certificate().unwrap()) };
    let cache = Cache::connect(&url)
        .await
        .expect("a verified TLS connection");
    assert_eq!(greeting(&cache, "tls").await, "hello tls");
    assert_eq!(greeting(&cache, "tls").await, "hello tls");
    assert_eq!(cache.stats().hits, 1);

    // Plain redis:// against the TLS-only port does not get through.
    let plain = url.replace("rediss://", "redis://");
    assert!(Cache::connect(&plain).await.is_err());
}
