//! `POST /users`, profile settings and credits.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;

use super::extract::{self, Body, id};
use crate::app::AppState;
use crate::db::begin_write;
use crate::db::models::UserLogin;
use crate::error::{AppError, AppResult};
use crate::writes::{self, text, users};

const MAX_USERNAME: usize = 40;
const MAX_BIO: usize = 500;
const MAX_URL: usize = 500;
const MAX_CREDITS: i64 = 1_000_000;

#[derive(Deserialize)]
pub struct NewUser {
    pub username: String,
    #[serde(default)]
    pub bio: String,
    #[serde(default)]
    pub avatar_url: Option<String>,
}

/// `POST /users` → 201 and the new user's login header.
pub async fn create(
    State(app): State<AppState>,
    Body(new): Body<NewUser>,
) -> AppResult<(StatusCode, Json<UserLogin>)> {
    let username = text("username", &new.username, MAX_USERNAME)?;
    let bio = new.bio.trim().to_owned();
    if bio.chars().count() > MAX_BIO {
        return Err(AppError::BadRequest(format!(
            "bio must be at most {MAX_BIO} characters"
        )));
    }
    let avatar = new
        .avatar_url
        .as_deref()
        .map(|u| text("avatar_url", u, MAX_URL))
        .transpose()?;
    let mut tx = begin_write(&app.pool).await?;
    let user = users::create_user(&mut tx, &username, &bio, avatar.as_deref()).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(user)))
}

#[derive(Deserialize)]
pub struct Username {
    pub username: String,
}

/// `PUT /users/{id}/username`.
pub async fn username(
    State(app): State<AppState>,
    Path(user): Path<String>,
    Body(b): Body<Username>,
) -> AppResult<Json<UserLogin>> {
    let user_id = id("user", &user)?;
    let username = text("username", &b.username, MAX_USERNAME)?;
    let mut tx = begin_write(&app.pool).await?;
    extract::user(&mut tx, user_id).await?;
    let out = users::update_username(&app.cache, &mut tx, user_id, &username).await?;
    tx.commit().await?;
    Ok(Json(out))
}

#[derive(Deserialize)]
pub struct Avatar {
    pub avatar_url: Option<String>,
}

/// `PUT /users/{id}/avatar` (`null` removes it).
pub async fn avatar(
    State(app): State<AppState>,
    Path(user): Path<String>,
    Body(b): Body<Avatar>,
) -> AppResult<Json<UserLogin>> {
    let user_id = id("user", &user)?;
    let url = b
        .avatar_url
        .as_deref()
        .map(|u| text("avatar_url", u, MAX_URL))
        .transpose()?;
    let mut tx = begin_write(&app.pool).await?;
    extract::user(&mut tx, user_id).await?;
    let out = users::update_avatar(&app.cache, &mut tx, user_id, url.as_deref()).await?;
    tx.commit().await?;
    Ok(Json(out))
}

#[derive(Deserialize)]
pub struct Bio {
    pub bio: String,
}

/// `PUT /users/{id}/bio`.
pub async fn bio(
    State(app): State<AppState>,
    Path(user): Path<String>,
    Body(b): Body<Bio>,
) -> AppResult<Json<UserLogin>> {
    let user_id = id("user", &user)?;
    let bio = b.bio.trim();
    if bio.chars().count() > MAX_BIO {
        return Err(AppError::BadRequest(format!(
            "bio must be at most {MAX_BIO} characters"
        )));
    }
    let mut tx = begin_write(&app.pool).await?;
    extract::user(&mut tx, user_id).await?;
    let out = users::update_bio(&app.cache, &mut tx, user_id, bio).await?;
    tx.commit().await?;
    Ok(Json(out))
}

#[derive(Deserialize)]
pub struct Amount {
    pub amount: i64,
}

fn amount(b: &Amount) -> AppResult<i64> {
    if (1..=MAX_CREDITS).contains(&b.amount) {
        Ok(b.amount)
    } else {
        Err(AppError::BadRequest(format!(
            "amount must be from 1 to {MAX_CREDITS}"
        )))
    }
}

/// `POST /users/{id}/credits/purchase`.
pub async fn purchase(
    State(app): State<AppState>,
    Path(user): Path<String>,
    Body(b): Body<Amount>,
) -> AppResult<Json<UserLogin>> {
    let (user_id, amount) = (id("user", &user)?, amount(&b)?);
    let mut tx = begin_write(&app.pool).await?;
    extract::user(&mut tx, user_id).await?;
    let out = users::purchase_credits(&app.cache, &mut tx, user_id, amount).await?;
    tx.commit().await?;
    Ok(Json(out))
}

/// `POST /users/{id}/credits/use`: 409 when the balance is short.
pub async fn spend(
    State(app): State<AppState>,
    Path(user): Path<String>,
    Body(b): Body<Amount>,
) -> AppResult<Json<UserLogin>> {
    let (user_id, amount) = (id("user", &user)?, amount(&b)?);
    let mut tx = begin_write(&app.pool).await?;
    extract::user(&mut tx, user_id).await?;
    let out = writes::users::use_credits(&app.cache, &mut tx, user_id, amount).await?;
    tx.commit().await?;
    Ok(Json(out))
}
