//! Follows, likes and comments.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;

use super::extract::{self, Body, id};
use cachemacro_runtime::Pending;

use crate::app::AppState;
use crate::db::begin_write;
use crate::db::models::{Comment, FollowStats, ImageDetails};
use crate::error::{AppError, AppResult};
use crate::writes::{social, text};

const MAX_COMMENT: usize = 2_000;

#[derive(Deserialize)]
pub struct Follower {
    pub follower_id: i64,
}

#[derive(Deserialize)]
pub struct UserRef {
    pub user_id: i64,
}

/// Checks a follow: both users exist, and they are two.
async fn follow_pair(tx: &mut crate::db::Conn, user: &str, b: &Follower) -> AppResult<(i64, i64)> {
    let followee = id("user", user)?;
    let follower = id("follower", &b.follower_id.to_string())?;
    if follower == followee {
        return Err(AppError::BadRequest(
            "a user cannot follow themselves".into(),
        ));
    }
    extract::user(tx, followee).await?;
    extract::user(tx, follower).await?;
    Ok((follower, followee))
}

/// `POST /users/{id}/follow` `{"follower_id"}` → the followee's follow stats.
pub async fn follow(
    State(app): State<AppState>,
    Path(user): Path<String>,
    Body(b): Body<Follower>,
) -> AppResult<Json<FollowStats>> {
    let (pending, mut tx) = (Pending::new(), begin_write(&app.pool).await?);
    let (follower, followee) = follow_pair(&mut tx, &user, &b).await?;
    let out = pending
        .scope(social::follow(&app.cache, &mut tx, follower, followee))
        .await?;
    pending.commit(tx.commit()).await?;
    Ok(Json(out))
}

/// `DELETE /users/{id}/follow` `{"follower_id"}` → the followee's follow stats.
pub async fn unfollow(
    State(app): State<AppState>,
    Path(user): Path<String>,
    Body(b): Body<Follower>,
) -> AppResult<Json<FollowStats>> {
    let (pending, mut tx) = (Pending::new(), begin_write(&app.pool).await?);
    let (follower, followee) = follow_pair(&mut tx, &user, &b).await?;
    let out = pending
        .scope(social::unfollow(&app.cache, &mut tx, follower, followee))
        .await?;
    pending.commit(tx.commit()).await?;
    Ok(Json(out))
}

/// `POST /images/{id}/like` `{"user_id"}` → the image's details.
pub async fn like(
    State(app): State<AppState>,
    Path(image): Path<String>,
    Body(b): Body<UserRef>,
) -> AppResult<Json<ImageDetails>> {
    let image_id = id("image", &image)?;
    let (pending, mut tx) = (Pending::new(), begin_write(&app.pool).await?);
    let image = extract::image(&mut tx, image_id).await?;
    extract::user(&mut tx, b.user_id).await?;
    let cache = crate::fault::cache_for(&app.cache, "like_image");
    let out = pending
        .scope(social::like_image(cache, &mut tx, b.user_id, &image))
        .await?;
    pending.commit(tx.commit()).await?;
    Ok(Json(out))
}

/// `DELETE /images/{id}/like` `{"user_id"}` → the image's details.
pub async fn unlike(
    State(app): State<AppState>,
    Path(image): Path<String>,
    Body(b): Body<UserRef>,
) -> AppResult<Json<ImageDetails>> {
    let image_id = id("image", &image)?;
    let (pending, mut tx) = (Pending::new(), begin_write(&app.pool).await?);
    let image = extract::image(&mut tx, image_id).await?;
    extract::user(&mut tx, b.user_id).await?;
    let out = pending
        .scope(social::unlike_image(&app.cache, &mut tx, b.user_id, &image))
        .await?;
    pending.commit(tx.commit()).await?;
    Ok(Json(out))
}

#[derive(Deserialize)]
pub struct NewComment {
    pub user_id: i64,
    pub body: String,
}

/// `POST /images/{id}/comments` `{"user_id","body"}` → 201 and the comment.
pub async fn comment(
    State(app): State<AppState>,
    Path(image): Path<String>,
    Body(b): Body<NewComment>,
) -> AppResult<(StatusCode, Json<Comment>)> {
    let image_id = id("image", &image)?;
    let body = text("body", &b.body, MAX_COMMENT)?;
    let (pending, mut tx) = (Pending::new(), begin_write(&app.pool).await?);
    let image = extract::image(&mut tx, image_id).await?;
    extract::user(&mut tx, b.user_id).await?;
    let out = pending
        .scope(social::add_comment(
            &app.cache, &mut tx, b.user_id, &image, &body,
        ))
        .await?;
    pending.commit(tx.commit()).await?;
    Ok((StatusCode::CREATED, Json(out)))
}

/// `DELETE /comments/{id}` → the image's details.
pub async fn delete_comment(
    State(app): State<AppState>,
    Path(comment): Path<String>,
) -> AppResult<Json<ImageDetails>> {
    let comment_id = id("comment", &comment)?;
    let (pending, mut tx) = (Pending::new(), begin_write(&app.pool).await?);
    let comment = extract::comment(&mut tx, comment_id).await?;
    let out = pending
        .scope(social::delete_comment(&app.cache, &mut tx, &comment))
        .await?;
    pending.commit(tx.commit()).await?;
    Ok(Json(out))
}

/// `POST /comments/{id}/like` `{"user_id"}` → the image's details.
pub async fn like_comment(
    State(app): State<AppState>,
    Path(comment): Path<String>,
    Body(b): Body<UserRef>,
) -> AppResult<Json<ImageDetails>> {
    let comment_id = id("comment", &comment)?;
    let (pending, mut tx) = (Pending::new(), begin_write(&app.pool).await?);
    let comment = extract::comment(&mut tx, comment_id).await?;
    extract::user(&mut tx, b.user_id).await?;
    let out = pending
        .scope(social::like_comment(
            &app.cache, &mut tx, b.user_id, &comment,
        ))
        .await?;
    pending.commit(tx.commit()).await?;
    Ok(Json(out))
}

/// `DELETE /comments/{id}/like` `{"user_id"}` → the image's details.
pub async fn unlike_comment(
    State(app): State<AppState>,
    Path(comment): Path<String>,
    Body(b): Body<UserRef>,
) -> AppResult<Json<ImageDetails>> {
    let comment_id = id("comment", &comment)?;
    let (pending, mut tx) = (Pending::new(), begin_write(&app.pool).await?);
    let comment = extract::comment(&mut tx, comment_id).await?;
    extract::user(&mut tx, b.user_id).await?;
    let out = pending
        .scope(social::unlike_comment(
            &app.cache, &mut tx, b.user_id, &comment,
        ))
        .await?;
    pending.commit(tx.commit()).await?;
    Ok(Json(out))
}
