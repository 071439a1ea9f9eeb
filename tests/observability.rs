//! What the cache tells `tracing`: a span per cached call and per
//! invalidation, with its family and outcome and no key; and one log line
//! when the backend stops answering, one when it answers again.
//!
//! Each test captures with a layer set as its thread's default subscriber
//! (a current-thread runtime's tasks included), never a global one.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cachemacro_runtime::{Cache, EntryOptions, cached, invalidates};
use cachemacro_tests::{RedisServer, eventually};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt as _};
use tracing_subscriber::registry::LookupSpan;

/// One span as captured: its name and fields.
#[derive(Debug, Clone, Default)]
struct Captured {
    name: String,
    fields: Vec<(String, String)>,
}

impl Captured {
    fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One event: its level, message, fields, and the span it was in.
#[derive(Debug, Clone)]
struct Line {
    level: Level,
    message: String,
    fields: Vec<(String, String)>,
    span: Option<String>,
}

#[derive(Clone, Default)]
struct Capture {
    spans: Arc<Mutex<Vec<(u64, Captured)>>>,
    events: Arc<Mutex<Vec<Line>>>,
}

struct Fields<'a>(&'a mut Vec<(String, String)>);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push((field.name().to_owned(), value.to_owned()));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push((field.name().to_owned(), format!("{value:?}")));
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, _: Context<'_, S>) {
        let mut span = Captured {
            name: attrs.metadata().name().to_owned(),
            fields: Vec::new(),
        };
        attrs.record(&mut Fields(&mut span.fields));
        self.spans.lock().unwrap().push((id.into_u64(), span));
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _: Context<'_, S>) {
        let mut spans = self.spans.lock().unwrap();
        if let Some((_, span)) = spans.iter_mut().rev().find(|(i, _)| *i == id.into_u64()) {
            values.record(&mut Fields(&mut span.fields));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = Vec::new();
        event.record(&mut Fields(&mut fields));
        let message = fields
            .iter()
            .find(|(k, _)| k == "message")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        let span = ctx.event_span(event).map(|s| s.name().to_owned());
        self.events.lock().unwrap().push(Line {
            level: *event.metadata().level(),
            message,
            fields,
            span,
        });
    }
}

impl Capture {
    /// Captures everything on this thread while the guard lives.
    fn start() -> (Capture, tracing::subscriber::DefaultGuard) {
        let capture = Capture::default();
        let subscriber = tracing_subscriber::registry().with(capture.clone());
        (capture, tracing::subscriber::set_default(subscriber))
    }

    fn spans(&self, name: &str) -> Vec<Captured> {
        self.spans
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, s)| s.name == name)
            .map(|(_, s)| s.clone())
            .collect()
    }

    fn lines(&self, level: Level, needle: &str) -> Vec<Line> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.level == level && l.message.contains(needle))
            .cloned()
            .collect()
    }
}

#[cached(key = "traced:<id>", ttl = "1h", cache = cache)]
async fn traced(cache: &Cache, id: u64) -> u64 {
    id * 10
}

#[invalidates("traced:<id>", cache = cache)]
async fn touch(cache: &Cache, id: u64) {
    let _ = id;
}

#[tokio::test(flavor = "current_thread")]
async fn cached_calls_and_invalidations_have_spans_with_family_and_outcome() {
    let (capture, _guard) = Capture::start();
    let cache = Cache::memory();

    assert_eq!(traced(&cache, 4).await, 40); // miss
    assert_eq!(traced(&cache, 4).await, 40); // hit
    touch(&cache, 4).await;
    let options = EntryOptions::new(Duration::from_secs(60)).family("page:<path>");
    let page: Result<String, String> = cache
        .get_or_load("page:%2F", &options, || async { Ok("<html>".into()) })
        .await;
    assert_eq!(page.unwrap(), "<html>");
    cache.delete("page:%2F").await.unwrap();

    let gets = capture.spans("cachemacro.get");
    let seen: Vec<(Option<&str>, Option<&str>)> = gets
        .iter()
        .map(|s| (s.field("family"), s.field("outcome")))
        .collect();
    assert_eq!(
        seen,
        [
            (Some("traced:<id>"), Some("miss")),
            (Some("traced:<id>"), Some("hit")),
            (Some("page:<path>"), Some("miss")),
        ]
    );
    let invalidations = capture.spans("cachemacro.invalidate");
    let seen: Vec<(Option<&str>, Option<&str>)> = invalidations
        .iter()
        .map(|s| (s.field("family"), s.field("outcome")))
        .collect();
    assert_eq!(
        seen,
        [(Some("traced:<id>"), Some("ok")), (Some(""), Some("ok"))]
    );
    assert_eq!(
        invalidations[0]
            .field("function")
            .map(|f| f.ends_with("touch")),
        Some(true)
    );
    assert_eq!(invalidations[1].field("target"), Some("key"));
    // No key in any span: templates only.
    for span in gets.iter().chain(&invalidations) {
        assert!(
            span.fields
                .iter()
                .all(|(_, v)| !v.contains("traced:4") && !v.contains("%2F")),
            "{span:?}"
        );
    }
    // One trace event per call, in its span.
    let hits = capture.lines(Level::TRACE, "cache hit");
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!(hits[0].span.as_deref(), Some("cachemacro.get"));
    assert_eq!(capture.lines(Level::TRACE, "cache miss").len(), 2);
}

#[tokio::test(flavor = "current_thread")]
async fn losing_and_regaining_redis_logs_one_warning_and_one_info() {
    let Some(mut server) = RedisServer::start_controllable() else {
        return;
    };
    let (capture, _guard) = Capture::start();
    let cache = server.cache().await;
    assert_eq!(traced(&cache, 1).await, 10);
    let lost = "the cache backend stopped answering";
    let back = "the cache backend answers again";

    server.stop();
    // Calls meanwhile run their bodies, each failure logged (throttled),
    // but the outage itself is said once.
    for _ in 0..3 {
        assert_eq!(traced(&cache, 1).await, 10);
    }
    eventually("the outage is logged", async || {
        !capture.lines(Level::WARN, lost).is_empty()
    })
    .await;
    let reported = capture.lines(Level::WARN, lost);
    assert!(
        reported[0]
            .fields
            .iter()
            .any(|(k, v)| k == "backend" && v.contains("redis://")),
        "{reported:?}"
    );

    server.restart();
    eventually("the recovery is logged", async || {
        !capture.lines(Level::INFO, back).is_empty()
    })
    .await;
    eventually("cached calls hit again", async || {
        let hits = cache.stats().hits;
        traced(&cache, 2).await;
        traced(&cache, 2).await;
        cache.stats().hits > hits
    })
    .await;
    assert_eq!(capture.lines(Level::WARN, lost).len(), 1, "once per outage");
    let recovered = capture.lines(Level::INFO, back);
    assert_eq!(recovered.len(), 1, "once per recovery: {recovered:?}");
    assert!(
        recovered[0].fields.iter().any(|(k, _)| k == "down_for"),
        "{recovered:?}"
    );
}
