//! The `metrics` feature: what cached calls and invalidations report to the
//! `metrics` facade, read back from `metrics-util`'s `DebuggingRecorder`
//! set as this thread's local recorder (no test installs a global one).
//!
//! `cargo test --test metrics --features metrics`.

use cachemacro_runtime::{Cache, cached, invalidates};
use cachemacro_tests::{RedisServer, eventually};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use metrics_util::{CompositeKey, MetricKind};

const FAMILY: &str = "metric-user:<id>";

#[cached(key = "metric-user:<id>", ttl = "1h", cache = cache)]
async fn user(cache: &Cache, id: u64) -> String {
    format!("user {id}")
}

#[invalidates("metric-user:<id>", cache = cache)]
async fn rename(cache: &Cache, id: u64) {
    let _ = id;
}

#[invalidates("metric-user:*", cache = cache)]
async fn rename_all(cache: &Cache) {}

/// What the recorder was given, accumulated over its snapshots (each
/// snapshot drains it: counters and gauges are swapped to zero, histograms
/// emptied). Counters and gauges are summed, so a gauge moved by increments
/// and decrements reads as its value; one that is `set` reads as its last
/// value if nothing moved it since.
struct Seen<'a> {
    snapshotter: &'a Snapshotter,
    entries: Vec<(
        CompositeKey,
        Option<metrics::Unit>,
        Option<String>,
        DebugValue,
    )>,
}

impl<'a> Seen<'a> {
    fn new(snapshotter: &'a Snapshotter) -> Seen<'a> {
        Seen {
            snapshotter,
            entries: Vec::new(),
        }
    }

    /// Takes a snapshot and adds it to what was seen.
    fn refresh(&mut self) -> &Self {
        for (key, unit, doc, value) in self.snapshotter.snapshot().into_vec() {
            let doc = doc.map(|d| d.to_string());
            match self.entries.iter_mut().find(|(k, ..)| *k == key) {
                None => self.entries.push((key, unit, doc, value)),
                Some((_, _, _, old)) => match (old, value) {
                    (DebugValue::Counter(a), DebugValue::Counter(b)) => *a += b,
                    (DebugValue::Gauge(a), DebugValue::Gauge(b)) => {
                        *a = (a.into_inner() + b.into_inner()).into()
                    }
                    (DebugValue::Histogram(a), DebugValue::Histogram(b)) => a.extend(b),
                    (old, new) => *old = new,
                },
            }
        }
        self
    }

    fn find(&self, kind: MetricKind, name: &str, labels: &[(&str, &str)]) -> Option<&DebugValue> {
        self.entries.iter().find_map(|(key, _, _, value)| {
            let same_labels = key.key().labels().count() == labels.len()
                && labels
                    .iter()
                    .all(|(k, v)| key.key().labels().any(|l| l.key() == *k && l.value() == *v));
            (key.kind() == kind && key.key().name() == name && same_labels).then_some(value)
        })
    }

    fn counter(&self, name: &str, family: &str) -> u64 {
        match self.find(MetricKind::Counter, name, &[("family", family)]) {
            Some(DebugValue::Counter(n)) => *n,
            other => panic!("{name}{{family={family:?}}}: {other:?}"),
        }
    }

    fn samples(&self, name: &str, labels: &[(&str, &str)]) -> Vec<f64> {
        match self.find(MetricKind::Histogram, name, labels) {
            Some(DebugValue::Histogram(values)) => values.iter().map(|v| v.into_inner()).collect(),
            other => panic!("{name}{labels:?}: {other:?}"),
        }
    }

    fn gauge(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        match self.find(MetricKind::Gauge, name, labels) {
            Some(DebugValue::Gauge(v)) => Some(v.into_inner()),
            _ => None,
        }
    }

    fn description(&self, name: &str) -> Option<(Option<metrics::Unit>, String)> {
        self.entries
            .iter()
            .find(|(key, _, d, _)| key.key().name() == name && d.is_some())
            .map(|(_, unit, d, _)| (*unit, d.clone().unwrap_or_default()))
    }
}

#[tokio::test]
async fn cached_calls_and_invalidations_report_per_family() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _local = metrics::set_default_local_recorder(&recorder);
    let cache = Cache::memory();

    assert_eq!(user(&cache, 1).await, "user 1"); // miss, load, store
    assert_eq!(user(&cache, 1).await, "user 1"); // hit
    assert_eq!(user(&cache, 2).await, "user 2"); // miss
    rename(&cache, 1).await;
    rename_all(&cache).await;
    let _ = cache.get::<String>("health").await; // manual: reported apart

    let mut seen = Seen::new(&snapshotter);
    seen.refresh();
    assert_eq!(seen.counter("cachemacro_hits_total", FAMILY), 1);
    assert_eq!(seen.counter("cachemacro_misses_total", FAMILY), 2);
    assert_eq!(seen.counter("cachemacro_loads_total", FAMILY), 2);
    assert_eq!(seen.counter("cachemacro_stores_total", FAMILY), 2);
    assert_eq!(seen.counter("cachemacro_local_hits_total", FAMILY), 0);
    assert_eq!(seen.counter("cachemacro_invalidations_total", FAMILY), 1);
    assert_eq!(
        seen.counter("cachemacro_invalidations_total", "metric-user:*"),
        1
    );
    let loads = seen.samples("cachemacro_load_duration_seconds", &[("family", FAMILY)]);
    assert_eq!(loads.len(), 2, "one sample per load: {loads:?}");
    assert!(
        loads.iter().all(|s| (0.0..10.0).contains(s)),
        "seconds: {loads:?}"
    );
    // Labels carry templates, never keys; the manual read reports nothing.
    assert!(
        !seen.entries.iter().any(|(k, ..)| k
            .key()
            .labels()
            .any(|l| l.value().contains("metric-user:1") || l.value() == "health")),
        "no key in a label"
    );
    let (unit, doc) = seen
        .description("cachemacro_hits_total")
        .expect("described");
    assert_eq!(unit, Some(metrics::Unit::Count));
    assert!(doc.starts_with("Reads that found a usable value"), "{doc}");
    let (unit, _) = seen
        .description("cachemacro_load_duration_seconds")
        .expect("described");
    assert_eq!(unit, Some(metrics::Unit::Seconds));
}

#[tokio::test]
async fn redis_round_trips_are_timed_and_failed_invalidations_fill_the_queue_gauge() {
    let Some(server) = RedisServer::start_controllable() else {
        return;
    };
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _local = metrics::set_default_local_recorder(&recorder);
    let cache = server.cache().await;

    assert_eq!(user(&cache, 7).await, "user 7");
    assert_eq!(user(&cache, 7).await, "user 7");
    rename(&cache, 7).await;
    let mut seen = Seen::new(&snapshotter);
    seen.refresh();
    assert_eq!(seen.counter("cachemacro_hits_total", FAMILY), 1);
    assert_eq!(seen.counter("cachemacro_invalidations_total", FAMILY), 1);
    let op = "cachemacro_backend_duration_seconds";
    assert!(seen.samples(op, &[("op", "get")]).len() >= 2, "two reads");
    assert_eq!(seen.samples(op, &[("op", "lease")]).len(), 1);
    assert_eq!(seen.samples(op, &[("op", "store")]).len(), 1);
    assert_eq!(seen.samples(op, &[("op", "delete")]).len(), 1);
    assert!(
        !seen.samples(op, &[("op", "publish")]).is_empty(),
        "the delete is announced"
    );
    let backend = cache.describe();
    assert_eq!(
        seen.gauge("cachemacro_breaker_state", &[("backend", &backend)]),
        Some(0.0),
        "closed"
    );

    // A paused server: the invalidation fails, is counted and queued.
    server.pause();
    rename(&cache, 7).await;
    seen.refresh();
    assert_eq!(
        seen.counter("cachemacro_invalidation_errors_total", FAMILY),
        1
    );
    assert_eq!(
        seen.gauge("cachemacro_invalidation_queue_length", &[]),
        Some(1.0)
    );
    server.resume();
    eventually("the queued invalidation landed", async || {
        seen.refresh()
            .gauge("cachemacro_invalidation_queue_length", &[])
            == Some(0.0)
    })
    .await;
    assert_eq!(
        seen.counter("cachemacro_invalidations_replayed_total", ""),
        1
    );
}
