//! Request parts, checked: a JSON body whose errors are JSON 400s, ids from
//! path segments, and the entities writes are about (404 when missing).

use axum::Json;
use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;

use crate::db::models::{CollectionRow, Comment, Image, SetRow};
use crate::db::{Conn, queries};
use crate::error::{AppError, AppResult};

pub use crate::read::id;

/// A JSON request body; a missing, malformed or mistyped one is a 400
/// with a JSON error.
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, AppError> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(Body(value)),
            Err(rejection) => Err(AppError::BadRequest(rejection.body_text())),
        }
    }
}

/// 404 unless user `user_id` exists.
pub async fn user(conn: &mut Conn, user_id: i64) -> AppResult<()> {
    match queries::user_login(conn, user_id).await? {
        Some(_) => Ok(()),
        None => Err(AppError::not_found("user", user_id)),
    }
}

pub async fn image(conn: &mut Conn, image_id: i64) -> AppResult<Image> {
    queries::image(conn, image_id)
        .await?
        .ok_or_else(|| AppError::not_found("image", image_id))
}

pub async fn comment(conn: &mut Conn, comment_id: i64) -> AppResult<Comment> {
    queries::comment(conn, comment_id)
        .await?
        .ok_or_else(|| AppError::not_found("comment", comment_id))
}

pub async fn collection(conn: &mut Conn, collection_id: i64) -> AppResult<CollectionRow> {
    let row = queries::collection(conn, collection_id).await?;
    row.ok_or_else(|| AppError::not_found("collection", collection_id))
}

pub async fn set(conn: &mut Conn, set_id: i64) -> AppResult<SetRow> {
    queries::set_row(conn, set_id)
        .await?
        .ok_or_else(|| AppError::not_found("set", set_id))
}

pub async fn processing(conn: &mut Conn, request_id: i64) -> AppResult<()> {
    match queries::processing(conn, request_id).await? {
        Some(_) => Ok(()),
        None => Err(AppError::not_found("processing request", request_id)),
    }
}
