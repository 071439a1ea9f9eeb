//! Profile and settings, and credits.

use cachemacro_runtime::{Cache, invalidates};

use crate::db::models::UserLogin;
use crate::db::{Conn, now_ms, queries};
use crate::error::{AppError, AppResult};

/// Credits a new user starts with.
pub const WELCOME_CREDITS: i64 = 10;

/// A new user. Nothing cached can show a user that did not exist (a miss
/// on an unknown id is a 404, which is not cached), so nothing is cleared.
pub async fn create_user(
    conn: &mut Conn,
    username: &str,
    bio: &str,
    avatar_url: Option<&str>,
) -> AppResult<UserLogin> {
    let sql =
        "INSERT INTO users (username, bio, avatar_url, credits, created_at) VALUES (?, ?, ?, ?, ?)";
    let done = sqlx::query(sql)
        .bind(username)
        .bind(bio)
        .bind(avatar_url)
        .bind(WELCOME_CREDITS)
        .bind(now_ms())
        .execute(&mut *conn)
        .await
        .map_err(|e| taken(e, username))?;
    login(conn, done.last_insert_rowid()).await
}

fn taken(e: sqlx::Error, username: &str) -> AppError {
    if super::is_unique_violation(&e) {
        AppError::Conflict(format!("username {username:?} is taken"))
    } else {
        AppError::Db(e)
    }
}

async fn login(conn: &mut Conn, user_id: i64) -> AppResult<UserLogin> {
    let user = queries::user_login(conn, user_id).await?;
    user.ok_or_else(|| AppError::not_found("user", user_id))
}

async fn update(
    conn: &mut Conn,
    user_id: i64,
    sql: &str,
    value: Option<&str>,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(sql)
        .bind(value)
        .bind(user_id)
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected())
}

/// Seed: "Update username" (`user-profile` was the missing one).
#[invalidates("user-login:<user_id>", tag = "profile:<user_id>", cache = cache)]
pub async fn update_username(
    cache: &Cache,
    conn: &mut Conn,
    user_id: i64,
    username: &str,
) -> AppResult<UserLogin> {
    let sql = "UPDATE users SET username = ? WHERE id = ?";
    update(conn, user_id, sql, Some(username))
        .await
        .map_err(|e| taken(e, username))?;
    login(conn, user_id).await
}

/// Seed: "Update avatar".
#[invalidates("user-login:<user_id>", tag = "profile:<user_id>", cache = cache)]
pub async fn update_avatar(
    cache: &Cache,
    conn: &mut Conn,
    user_id: i64,
    avatar_url: Option<&str>,
) -> AppResult<UserLogin> {
    update(
        conn,
        user_id,
        "UPDATE users SET avatar_url = ? WHERE id = ?",
        avatar_url,
    )
    .await?;
    login(conn, user_id).await
}

/// Seed: "Update bio" (the login header does not show the bio).
#[invalidates(tag = "profile:<user_id>", cache = cache)]
pub async fn update_bio(
    cache: &Cache,
    conn: &mut Conn,
    user_id: i64,
    bio: &str,
) -> AppResult<UserLogin> {
    update(
        conn,
        user_id,
        "UPDATE users SET bio = ? WHERE id = ?",
        Some(bio),
    )
    .await?;
    login(conn, user_id).await
}

/// Seed: "Purchase credits".
#[invalidates("user-login:<user_id>", cache = cache)]
pub async fn purchase_credits(
    cache: &Cache,
    conn: &mut Conn,
    user_id: i64,
    amount: i64,
) -> AppResult<UserLogin> {
    sqlx::query("UPDATE users SET credits = credits + ? WHERE id = ?")
        .bind(amount)
        .bind(user_id)
        .execute(&mut *conn)
        .await?;
    login(conn, user_id).await
}

/// Seed: "Use credits": 409 when the balance is short.
#[invalidates("user-login:<user_id>", cache = cache)]
pub async fn use_credits(
    cache: &Cache,
    conn: &mut Conn,
    user_id: i64,
    amount: i64,
) -> AppResult<UserLogin> {
    spend(conn, user_id, amount).await?;
    login(conn, user_id).await
}

/// Takes `amount` credits, or fails with 409 leaving the balance as it was.
pub(crate) async fn spend(conn: &mut Conn, user_id: i64, amount: i64) -> AppResult<()> {
    let done =
        sqlx::query("UPDATE users SET credits = credits - ?1 WHERE id = ?2 AND credits >= ?1")
            .bind(amount)
            .bind(user_id)
            .execute(&mut *conn)
            .await?;
    if done.rows_affected() == 0 {
        let user = login(conn, user_id).await?;
        let message = format!("{amount} credits needed, {} available", user.credits);
        return Err(AppError::Conflict(message));
    }
    Ok(())
}
