//! The read routes and the `/db/snapshot` oracle, both answered by the
//! dispatcher in `crate::read` (same parsing, same shapes, same JSON).

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::extract::Body;
use crate::app::AppState;
use crate::db::begin_read;
use crate::error::{AppError, AppResult};
use crate::read::{Answer, Read};

/// Every `GET` read route: the path is parsed by [`Read::parse`] and
/// answered through the cache.
pub async fn read(State(app): State<AppState>, uri: Uri) -> Response {
    let path = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
    let answer = match Read::parse(path) {
        Ok(read) => Answer::of(read.cached(&app).await),
        Err(e) => Answer::of(Err(e)),
    };
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, Json(answer.body)).into_response()
}

/// `POST /db/snapshot` body: read route paths.
#[derive(Deserialize)]
pub struct SnapshotRequest {
    pub paths: Vec<String>,
}

/// `POST /db/snapshot` answer: for each path, the body its read route
/// would answer (`paths`) and the status (`status`), all computed without
/// the cache in one read transaction.
#[derive(Serialize)]
pub struct Snapshot {
    pub paths: BTreeMap<String, Value>,
    pub status: BTreeMap<String, u16>,
}

/// `POST /db/snapshot`: the database oracle. A path no read route serves
/// is a 400 naming it; a database failure is a 500 (never a partial
/// snapshot).
pub async fn snapshot(
    State(app): State<AppState>,
    Body(req): Body<SnapshotRequest>,
) -> AppResult<Json<Snapshot>> {
    let reads = req
        .paths
        .iter()
        .map(|path| Read::parse(path).map(|read| (path, read)))
        .collect::<AppResult<Vec<_>>>()?;
    let mut tx = begin_read(&app.pool).await?;
    let mut snapshot = Snapshot {
        paths: BTreeMap::new(),
        status: BTreeMap::new(),
    };
    for (path, read) in reads {
        let answer = match read.uncached(&mut tx).await {
            Err(AppError::Db(e)) => return Err(AppError::Db(e)),
            outcome => Answer::of(outcome),
        };
        snapshot.paths.insert(path.clone(), answer.body);
        snapshot.status.insert(path.clone(), answer.status);
    }
    tx.commit().await?;
    Ok(Json(snapshot))
}
