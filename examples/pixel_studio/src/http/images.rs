//! Generation, processing status, deleting images and sets.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::extract::{self, Body, id};
use crate::app::AppState;
use crate::db::begin_write;
use crate::db::models::Processing;
use crate::error::{AppError, AppResult};
use crate::writes::images::{self, Generate, Generated};
use crate::writes::{sets, text};

const MAX_PROMPT: usize = 1_000;
const MAX_MODEL: usize = 100;
const MAX_IMAGES: i64 = 4;
/// What a processing request's status may be set to.
const STATUSES: &[&str] = &["queued", "processing", "complete", "failed"];

fn yes() -> bool {
    true
}

fn one() -> i64 {
    1
}

#[derive(Deserialize)]
pub struct GenerateBody {
    pub user_id: i64,
    pub prompt: String,
    pub model: String,
    #[serde(default = "one")]
    pub count: i64,
    #[serde(default = "yes")]
    pub public: bool,
}

/// `POST /images/generate` `{"user_id","prompt","model","count"?: 1,"public"?: true}`
/// → 201 `{"request": Processing, "set_id", "image_ids"}`; 409 when credits are short.
pub async fn generate(
    State(app): State<AppState>,
    Body(b): Body<GenerateBody>,
) -> AppResult<(StatusCode, Json<Generated>)> {
    if !(1..=MAX_IMAGES).contains(&b.count) {
        return Err(AppError::BadRequest(format!(
            "count must be from 1 to {MAX_IMAGES}"
        )));
    }
    let req = Generate {
        user_id: b.user_id,
        prompt: text("prompt", &b.prompt, MAX_PROMPT)?,
        model: text("model", &b.model, MAX_MODEL)?,
        count: b.count,
        public: b.public,
    };
    let mut tx = begin_write(&app.pool).await?;
    extract::user(&mut tx, req.user_id).await?;
    let out = images::generate_images(&app.cache, &mut tx, &req).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(out)))
}

#[derive(Deserialize)]
pub struct StatusBody {
    pub status: String,
    pub progress: i64,
}

/// `POST /processing/{id}/status` `{"status","progress"}` → the request.
pub async fn status(
    State(app): State<AppState>,
    Path(request): Path<String>,
    Body(b): Body<StatusBody>,
) -> AppResult<Json<Processing>> {
    let request_id = id("processing request", &request)?;
    if !STATUSES.contains(&b.status.as_str()) {
        return Err(AppError::BadRequest(format!(
            "status must be one of {STATUSES:?}"
        )));
    }
    if !(0..=100).contains(&b.progress) {
        return Err(AppError::BadRequest(
            "progress must be from 0 to 100".into(),
        ));
    }
    let mut tx = begin_write(&app.pool).await?;
    extract::processing(&mut tx, request_id).await?;
    let out =
        images::update_processing(&app.cache, &mut tx, request_id, &b.status, b.progress).await?;
    tx.commit().await?;
    Ok(Json(out))
}

/// `DELETE /images/{id}` → `{"deleted": id}`.
pub async fn delete_image(
    State(app): State<AppState>,
    Path(image): Path<String>,
) -> AppResult<Json<Value>> {
    let image_id = id("image", &image)?;
    let mut tx = begin_write(&app.pool).await?;
    let image = extract::image(&mut tx, image_id).await?;
    images::delete_image(&app.cache, &mut tx, &image).await?;
    tx.commit().await?;
    Ok(Json(json!({ "deleted": image_id })))
}

/// `DELETE /sets/{id}` → `{"deleted": id}` (its images go with it).
pub async fn delete_set(
    State(app): State<AppState>,
    Path(set): Path<String>,
) -> AppResult<Json<Value>> {
    let set_id = id("set", &set)?;
    let mut tx = begin_write(&app.pool).await?;
    let set = extract::set(&mut tx, set_id).await?;
    sets::delete_set(&app.cache, &mut tx, &set).await?;
    tx.commit().await?;
    Ok(Json(json!({ "deleted": set_id })))
}
