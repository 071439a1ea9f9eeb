//! Observability: `/metrics` (Prometheus text, when the binary installed a
//! recorder), `/cache/stats` (counters as JSON), `/health` (the cache's
//! health and the database's), `/cache` (an HTML page of hit rates and the
//! invalidation map).

use std::fmt::Write as _;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use cachemacro_runtime::{Health, Stats, registry};
use serde::Serialize;

use crate::app::AppState;
use crate::error::AppError;

/// `GET /metrics`: 404 when no recorder is installed (the library never
/// installs one: that is process-wide state, the binary's to choose).
pub async fn metrics(State(app): State<AppState>) -> Response {
    match &app.metrics {
        Some(handle) => {
            let content_type = [(header::CONTENT_TYPE, "text/plain; version=0.0.4")];
            (content_type, handle.render()).into_response()
        }
        None => AppError::NotFound("no metrics recorder installed".into()).into_response(),
    }
}

/// `/cache/stats`: which backend, and the cache's [`Stats`] as the library
/// serializes them (totals, `hit_ratio`, `manual`, and `families`: each
/// template with its `kind`, `cached` or `invalidation`, and figures).
#[derive(Serialize)]
pub struct StatsView {
    pub backend: String,
    #[serde(flatten)]
    pub stats: Stats,
}

/// `GET /cache/stats`.
pub async fn stats(State(app): State<AppState>) -> Json<StatsView> {
    Json(StatsView {
        backend: app.cache.describe(),
        stats: app.cache.stats(),
    })
}

/// `/health`: the cache's [`Health`] and whether the database answers.
#[derive(Serialize)]
pub struct HealthView {
    pub ok: bool,
    pub db: DbHealth,
    pub cache: Health,
}

#[derive(Serialize)]
pub struct DbHealth {
    pub ok: bool,
    pub error: Option<String>,
}

/// `GET /health`: 200 when the database answers, else 503. The cache being
/// unreachable is reported but is not unhealthy: requests run uncached.
pub async fn health(State(app): State<AppState>) -> (StatusCode, Json<HealthView>) {
    let db = match sqlx::query_scalar::<_, i64>("SELECT 1")
        .fetch_one(&app.pool)
        .await
    {
        Ok(_) => DbHealth {
            ok: true,
            error: None,
        },
        Err(e) => DbHealth {
            ok: false,
            error: Some(e.to_string()),
        },
    };
    let status = if db.ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(HealthView {
            ok: db.ok,
            db,
            cache: app.cache.health(),
        }),
    )
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

fn ratio(r: Option<f64>) -> String {
    r.map_or_else(|| "–".to_owned(), |r| format!("{:.1}%", 100.0 * r))
}

/// `GET /cache`: per-family hit rates, what each invalidation pattern
/// cleared, and the invalidation map.
pub async fn page(State(app): State<AppState>) -> Html<String> {
    let stats = app.cache.stats();
    let mut html = String::from(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Pixel Studio cache</title>\
         <style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}\
         td,th{border:1px solid #ccc;padding:.3em .6em;text-align:right}td:first-child{text-align:left}\
         pre{background:#f6f6f6;padding:1em;overflow:auto}</style></head><body>",
    );
    let _ = write!(
        html,
        "<h1>Cache</h1><p>Backend: <code>{}</code>, hit ratio {} over cached calls \
         (manual API apart: {} hits, {} misses)</p>",
        escape(&app.cache.describe()),
        ratio(stats.hit_ratio()),
        stats.manual.hits,
        stats.manual.misses,
    );
    html.push_str(
        "<h2>Cached families</h2><table><tr><th>family</th><th>TTL</th><th>hits</th><th>local hits</th>\
                   <th>misses</th><th>loads</th><th>invalidations</th><th>hit ratio</th></tr>",
    );
    // Every cached function the registry knows, served yet or not.
    let mut families: Vec<_> = registry::cached_families().collect();
    families.sort_by_key(|f| f.template());
    for family in families {
        let f = stats.family(family.template()).unwrap_or_default();
        let _ = write!(
            html,
            "<tr><td><code>{}</code></td><td>{}s</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(family.template()),
            family.ttl().as_secs(),
            f.hits,
            f.local_hits,
            f.misses,
            f.loads,
            f.invalidations,
            ratio(f.hit_ratio()),
        );
    }
    html.push_str(
        "</table><h2>Invalidation patterns</h2><table><tr><th>pattern or tag</th>\
         <th>invalidations</th><th>failed (queued, replayed)</th></tr>",
    );
    for (pattern, f) in stats.invalidation_patterns() {
        let _ = write!(
            html,
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
            escape(pattern),
            f.invalidations,
            f.invalidation_errors,
        );
    }
    html.push_str("</table><h2>Invalidation map</h2><pre>");
    html.push_str(&escape(&registry::invalidation_map()));
    html.push_str("</pre></body></html>");
    Html(html)
}
