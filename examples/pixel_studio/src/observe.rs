//! Observability: `/metrics` (Prometheus text, when the binary installed a
//! recorder), `/cache/stats` (counters as JSON), `/health` (the cache's
//! health and the database's), `/cache` (an HTML page of hit rates and the
//! invalidation map).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use cachemacro_runtime::{FamilyStats, Health, Stats, registry};
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

/// One family's figures (and the totals), as `/cache/stats` shows them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FamilyView {
    pub hits: u64,
    pub local_hits: u64,
    pub misses: u64,
    pub loads: u64,
    pub stores: u64,
    pub errors: u64,
    pub invalidations: u64,
    pub invalidation_errors: u64,
    pub fills_dropped: u64,
    pub bypassed: u64,
    pub coalesced: u64,
    pub distrusted: u64,
    pub hit_ratio: Option<f64>,
}

impl FamilyView {
    fn new(f: &FamilyStats) -> FamilyView {
        let reads = f.hits + f.misses;
        FamilyView {
            hits: f.hits,
            local_hits: f.local_hits,
            misses: f.misses,
            loads: f.loads,
            stores: f.stores,
            errors: f.errors,
            invalidations: f.invalidations,
            invalidation_errors: f.invalidation_errors,
            fills_dropped: f.fills_dropped,
            bypassed: f.bypassed,
            coalesced: f.coalesced,
            distrusted: f.distrusted,
            // TODO(merge obs): `FamilyStats::hit_ratio()` once the obs branch lands.
            hit_ratio: (reads > 0).then(|| f.hits as f64 / reads as f64),
        }
    }
}

/// `/cache/stats`: the totals, and one entry per family by template.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatsView {
    pub backend: String,
    pub totals: FamilyView,
    pub families: BTreeMap<String, FamilyView>,
}

/// `cache.stats()` as [`StatsView`].
// TODO(merge obs): serialize `Stats` itself once it is `serde::Serialize`
// (keeping this shape's `families` map, which the checklist tests read).
pub fn stats_view(backend: String, stats: &Stats) -> StatsView {
    let mut totals = FamilyView::new(&FamilyStats::default());
    totals.hits = stats.hits;
    totals.local_hits = stats.local_hits;
    totals.misses = stats.misses;
    totals.loads = stats.loads;
    totals.stores = stats.stores;
    totals.errors = stats.errors;
    totals.invalidations = stats.invalidations;
    totals.invalidation_errors = stats.invalidation_errors;
    totals.fills_dropped = stats.fills_dropped;
    totals.bypassed = stats.bypassed;
    totals.coalesced = stats.coalesced;
    totals.distrusted = stats.distrusted;
    totals.hit_ratio = stats.hit_ratio();
    let families = stats
        .families()
        .map(|(name, f)| (name.to_owned(), FamilyView::new(f)))
        .collect();
    StatsView {
        backend,
        totals,
        families,
    }
}

/// `GET /cache/stats`.
pub async fn stats(State(app): State<AppState>) -> Json<StatsView> {
    Json(stats_view(app.cache.describe(), &app.cache.stats()))
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

/// `GET /cache`: per-family hit rates and the invalidation map.
pub async fn page(State(app): State<AppState>) -> Html<String> {
    let view = stats_view(app.cache.describe(), &app.cache.stats());
    let mut html = String::from(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Pixel Studio cache</title>\
         <style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}\
         td,th{border:1px solid #ccc;padding:.3em .6em;text-align:right}td:first-child{text-align:left}\
         pre{background:#f6f6f6;padding:1em;overflow:auto}</style></head><body>",
    );
    let _ = write!(
        html,
        "<h1>Cache</h1><p>Backend: <code>{}</code>, hit ratio {}</p>",
        escape(&view.backend),
        ratio(view.totals.hit_ratio)
    );
    html.push_str(
        "<h2>Families</h2><table><tr><th>family</th><th>TTL</th><th>hits</th><th>local hits</th>\
                   <th>misses</th><th>loads</th><th>invalidations</th><th>hit ratio</th></tr>",
    );
    // TODO(merge obs): `Stats::cached_families()` once the obs branch lands.
    let mut families: Vec<_> = registry::cached_families().collect();
    families.sort_by_key(|f| f.template());
    for family in families {
        let f = view.families.get(family.template());
        let cell = |n: fn(&FamilyView) -> u64| f.map_or(0, n);
        let _ = write!(
            html,
            "<tr><td><code>{}</code></td><td>{}s</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(family.template()),
            family.ttl().as_secs(),
            cell(|f| f.hits),
            cell(|f| f.local_hits),
            cell(|f| f.misses),
            cell(|f| f.loads),
            cell(|f| f.invalidations),
            ratio(f.and_then(|f| f.hit_ratio)),
        );
    }
    html.push_str("</table><h2>Invalidation map</h2><pre>");
    html.push_str(&escape(&registry::invalidation_map()));
    html.push_str("</pre></body></html>");
    Html(html)
}
