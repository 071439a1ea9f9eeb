//! What a running instance shows about its cache: `/metrics` (Prometheus,
//! the runtime's `metrics` feature), `/cache/stats` (the library's `Stats`
//! as JSON), `/health`, and the `/cache` page, after real traffic on a real
//! redis-server.

mod support;

use cachemacro_tests::RedisServer;
use serde_json::json;
use support::{Instance, TempDb, namespace};

const COLLECTIONS: &str = "user-collections:<user_id>";

async fn text(instance: &Instance, path: &str) -> (u16, String) {
    let response = reqwest::get(format!("{}{path}", instance.base))
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    let status = response.status().as_u16();
    (status, response.text().await.expect("a text body"))
}

/// The value of the Prometheus sample `name{labels}`, if present.
fn sample(metrics: &str, name: &str, labels: &str) -> Option<f64> {
    let wanted = format!("{name}{{{labels}}} ");
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(&wanted))
        .and_then(|value| value.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_shows_its_cache_as_metrics_stats_health_and_a_page() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let url = format!(
        "{}?local_capacity=1000&namespace={}",
        server.url(),
        namespace()
    );
    let db = TempDb::new();
    let app = Instance::start(&db, &url).await;
    let me = app.user("watcher").await;
    let collections = format!("/users/{me}/collections");
    app.warm(&collections, COLLECTIONS).await;
    app.act(
        "POST",
        "/collections",
        json!({ "user_id": me, "name": "favourites" }),
    )
    .await;
    app.get(&collections).await;
    // A manual-API read elsewhere (none here) would count apart; the
    // family's figures are the cached calls'.

    let (status, metrics) = text(&app, "/metrics").await;
    assert_eq!(status, 200);
    let family = format!("family=\"{COLLECTIONS}\"");
    let hits = sample(&metrics, "cachemacro_hits_total", &family);
    assert!(
        hits.is_some_and(|h| h >= 1.0),
        "hits of {COLLECTIONS} in:\n{metrics}"
    );
    let misses = sample(&metrics, "cachemacro_misses_total", &family);
    assert!(
        misses.is_some_and(|m| m >= 2.0),
        "a miss before and after the write"
    );
    assert!(
        sample(&metrics, "cachemacro_invalidations_total", &family).is_some_and(|n| n >= 1.0),
        "the collection's creation invalidated the family"
    );
    assert!(
        metrics.contains("cachemacro_load_duration_seconds"),
        "load durations are exported"
    );
    assert!(
        metrics.contains("cachemacro_backend_duration_seconds"),
        "Redis round trips are timed"
    );
    assert!(
        !metrics.contains(&format!("/users/{me}/"))
            && !metrics.contains(&format!("collections:{me}\"")),
        "metrics name families, never keys"
    );

    let stats = app.get("/cache/stats").await;
    let figures = &stats["families"][COLLECTIONS];
    assert_eq!(figures["kind"], "cached", "{stats}");
    assert!(figures["hits"].as_u64().unwrap_or(0) >= 1, "{figures}");
    let ratio = figures["hit_ratio"].as_f64().expect("a hit ratio");
    assert!(
        ratio > 0.0 && ratio < 1.0,
        "some hits, some misses: {ratio}"
    );
    assert!(
        stats["backend"]
            .as_str()
            .is_some_and(|b| b.starts_with("redis://"))
    );
    assert_eq!(stats["manual"]["hits"], 0, "no manual-API reads: {stats}");

    let (status, health) = app.get_status("/health").await;
    assert_eq!(status, 200, "{health}");
    assert_eq!(health["db"]["ok"], true);
    assert_eq!(health["cache"]["reachable"], true, "{health}");
    assert_eq!(health["cache"]["local"]["enabled"], true, "{health}");

    let (status, page) = text(&app, "/cache").await;
    assert_eq!(status, 200);
    assert!(page.contains("<h2>Cached families</h2>"), "{page}");
    assert!(page.contains("<code>user-collections:&lt;user_id&gt;</code>"));
    assert!(page.contains("<h2>Invalidation map</h2>"));
    assert!(
        page.contains("create_collection"),
        "the map names the writes"
    );
}
