//! Collections and the images saved in them.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::extract::{self, Body, id};
use crate::app::AppState;
use crate::db::begin_write;
use crate::db::models::Collection;
use crate::error::{AppError, AppResult};
use crate::writes::{collections, text};

const MAX_NAME: usize = 100;
const MAX_DESCRIPTION: usize = 1_000;

fn description(value: Option<&str>) -> AppResult<Option<String>> {
    let Some(value) = value.map(str::trim) else {
        return Ok(None);
    };
    if value.chars().count() > MAX_DESCRIPTION {
        return Err(AppError::BadRequest(format!(
            "description must be at most {MAX_DESCRIPTION} characters"
        )));
    }
    Ok(Some(value.to_owned()))
}

#[derive(Deserialize)]
pub struct NewCollection {
    pub user_id: i64,
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
}

/// `POST /collections` `{"user_id","name","description"?}` → 201 and the collection.
pub async fn create(
    State(app): State<AppState>,
    Body(b): Body<NewCollection>,
) -> AppResult<(StatusCode, Json<Collection>)> {
    let name = text("name", &b.name, MAX_NAME)?;
    let description = description(b.description.as_deref())?.unwrap_or_default();
    let mut tx = begin_write(&app.pool).await?;
    extract::user(&mut tx, b.user_id).await?;
    let out =
        collections::create_collection(&app.cache, &mut tx, b.user_id, &name, &description).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(out)))
}

#[derive(Deserialize)]
pub struct CollectionChange {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
}

/// `PUT /collections/{id}` `{"name"?, "description"?}` → the collection.
pub async fn update(
    State(app): State<AppState>,
    Path(collection): Path<String>,
    Body(b): Body<CollectionChange>,
) -> AppResult<Json<Collection>> {
    let collection_id = id("collection", &collection)?;
    let name = b
        .name
        .as_deref()
        .map(|n| text("name", n, MAX_NAME))
        .transpose()?;
    let description = description(b.description.as_deref())?;
    let mut tx = begin_write(&app.pool).await?;
    let row = extract::collection(&mut tx, collection_id).await?;
    let out = collections::update_collection(
        &app.cache,
        &mut tx,
        &row,
        name.as_deref(),
        description.as_deref(),
    );
    let out = out.await?;
    tx.commit().await?;
    Ok(Json(out))
}

/// `DELETE /collections/{id}` → `{"deleted": id}`.
pub async fn delete(
    State(app): State<AppState>,
    Path(collection): Path<String>,
) -> AppResult<Json<Value>> {
    let collection_id = id("collection", &collection)?;
    let mut tx = begin_write(&app.pool).await?;
    let row = extract::collection(&mut tx, collection_id).await?;
    collections::delete_collection(&app.cache, &mut tx, &row).await?;
    tx.commit().await?;
    Ok(Json(json!({ "deleted": collection_id })))
}

#[derive(Deserialize)]
pub struct ImageRef {
    pub image_id: i64,
}

/// `POST /collections/{id}/images` `{"image_id"}` → the collection.
pub async fn add_image(
    State(app): State<AppState>,
    Path(collection): Path<String>,
    Body(b): Body<ImageRef>,
) -> AppResult<Json<Collection>> {
    let collection_id = id("collection", &collection)?;
    let mut tx = begin_write(&app.pool).await?;
    let row = extract::collection(&mut tx, collection_id).await?;
    let image = extract::image(&mut tx, b.image_id).await?;
    let out = collections::add_image_to_collection(&app.cache, &mut tx, &row, image.id).await?;
    tx.commit().await?;
    Ok(Json(out))
}

/// `DELETE /collections/{id}/images/{image_id}` → the collection.
pub async fn remove_image(
    State(app): State<AppState>,
    Path((collection, image)): Path<(String, String)>,
) -> AppResult<Json<Collection>> {
    let collection_id = id("collection", &collection)?;
    let image_id = id("image", &image)?;
    let mut tx = begin_write(&app.pool).await?;
    let row = extract::collection(&mut tx, collection_id).await?;
    let out =
        collections::remove_image_from_collection(&app.cache, &mut tx, &row, image_id).await?;
    tx.commit().await?;
    Ok(Json(out))
}
