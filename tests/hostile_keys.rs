//! Property: no placeholder value, however hostile, can forge another
//! value's key or widen a pattern to reach another value's entries. Checked
//! through the generated code against real Redis (SCAN MATCH) and memory.

use cachemacro_runtime::{Cache, cached, invalidates};
use cachemacro_tests::{RedisCluster, RedisServer};
use proptest::prelude::*;

#[cached(key = "doc:<owner>:<name>", ttl = 60, cache = cache)]
async fn doc(cache: &Cache, owner: &str, name: &str) -> String {
    format!("{owner}/{name}")
}

#[invalidates("doc:<owner>:*", cache = cache)]
async fn clear_owner(cache: &Cache, owner: &str) {
    let _ = owner;
}

fn hostile() -> impl Strategy<Value = String> {
    prop_oneof![
        "[:*?\\[\\]\\\\~%{} a-z0-9\n-]{0,12}",
        ".{0,40}",
        Just("*".to_string()),
        Just(String::new()),
    ]
}

/// Two different owners, often one a prefix of the other plus hostile
/// characters: the pairs a missing escape would let collide.
fn owners() -> impl Strategy<Value = (String, String)> {
    let tail = "[:*?\\[\\]\\\\%~a-z]{1,4}";
    prop_oneof![
        (hostile(), hostile()),
        (hostile(), tail).prop_map(|(a, t)| (a.clone(), format!("{a}{t}"))),
        (hostile(), tail).prop_map(|(a, t)| (format!("{a}{t}"), a)),
    ]
    .prop_filter("distinct owners", |(a, b)| a != b)
}

/// Fills entries for two owners, clears one, and checks exactly its entries went.
async fn check(cache: &Cache, a: &str, b: &str, names: &[String]) -> Result<(), TestCaseError> {
    for n in names {
        prop_assert_eq!(doc(cache, a, n).await, format!("{a}/{n}"));
        prop_assert_eq!(
            doc(cache, b, n).await,
            format!("{b}/{n}"),
            "b never reads a's entry"
        );
    }
    clear_owner(cache, a).await;
    let before = cache.stats().loads;
    for n in names {
        doc(cache, b, n).await;
    }
    prop_assert_eq!(
        cache.stats().loads,
        before,
        "clearing {:?} left {:?} alone",
        a,
        b
    );
    for n in names {
        doc(cache, a, n).await;
    }
    prop_assert_eq!(
        cache.stats().loads,
        before + names.len() as u64,
        "every entry of {:?} went",
        a
    );
    Ok(())
}

fn run(make: impl Fn(&tokio::runtime::Runtime) -> Cache) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let config = ProptestConfig {
        cases: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |((a, b) in owners(), names in proptest::collection::hash_set(hostile(), 1..4))| {
        let names: Vec<String> = names.into_iter().collect();
        let cache = make(&rt);
        rt.block_on(check(&cache, &a, &b, &names))?;
    });
}

#[test]
fn hostile_values_stay_in_their_own_entries_on_memory() {
    run(|_| Cache::memory());
}

#[test]
fn hostile_values_stay_in_their_own_entries_on_redis() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let round = std::sync::atomic::AtomicU32::new(0);
    run(|rt| {
        // A namespace per case, so cases never see each other's entries.
        let case = round.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let namespace = server.stored_key(&format!("case{case}"));
        rt.block_on(
            Cache::builder()
                .url(server.url())
                .namespace(namespace)
                .connect(),
        )
        .unwrap()
    });
}

#[test]
fn hostile_values_stay_in_their_own_entries_on_a_cluster() {
    let Some(cluster) = RedisCluster::shared() else {
        return;
    };
    run(|rt| {
        // A namespace per case, so cases never see each other's entries.
        let case = cluster.in_fresh_namespace();
        rt.block_on(
            case.builder()
                .operation_timeout(std::time::Duration::from_secs(2))
                .connect(),
        )
        .unwrap()
    });
}
