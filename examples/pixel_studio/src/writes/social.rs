//! Follows, likes and comments.

use cachemacro_runtime::{Cache, invalidates};

use crate::db::models::{Comment, FollowStats, Image, ImageDetails};
use crate::db::{Conn, now_ms, queries};
use crate::error::{AppError, AppResult};

async fn stats(conn: &mut Conn, user_id: i64) -> AppResult<FollowStats> {
    let stats = queries::follow_stats(conn, user_id).await?;
    stats.ok_or_else(|| AppError::not_found("user", user_id))
}

async fn details(conn: &mut Conn, image_id: i64) -> AppResult<ImageDetails> {
    let details = queries::image_details(conn, image_id).await?;
    details.ok_or_else(|| AppError::not_found("image", image_id))
}

/// Seed: "Follow user" (both profiles show follow counts; the follower's
/// feed gains the followee's images). Idempotent. Returns the followee's
/// figures.
#[invalidates(
    tag = "profile:<follower_id>",
    tag = "profile:<followee_id>",
    "user-follow-stats:<follower_id>",
    "user-follow-stats:<followee_id>",
    tag = "feed:<follower_id>",
    cache = cache
)]
pub async fn follow(
    cache: &Cache,
    conn: &mut Conn,
    follower_id: i64,
    followee_id: i64,
) -> AppResult<FollowStats> {
    let sql =
        "INSERT OR IGNORE INTO follows (follower_id, followee_id, created_at) VALUES (?, ?, ?)";
    sqlx::query(sql)
        .bind(follower_id)
        .bind(followee_id)
        .bind(now_ms())
        .execute(&mut *conn)
        .await?;
    stats(conn, followee_id).await
}

/// Seed: "Unfollow user": the same as following. Idempotent.
#[invalidates(
    tag = "profile:<follower_id>",
    tag = "profile:<followee_id>",
    "user-follow-stats:<follower_id>",
    "user-follow-stats:<followee_id>",
    tag = "feed:<follower_id>",
    cache = cache
)]
pub async fn unfollow(
    cache: &Cache,
    conn: &mut Conn,
    follower_id: i64,
    followee_id: i64,
) -> AppResult<FollowStats> {
    let sql = "DELETE FROM follows WHERE follower_id = ? AND followee_id = ?";
    sqlx::query(sql)
        .bind(follower_id)
        .bind(followee_id)
        .execute(&mut *conn)
        .await?;
    stats(conn, followee_id).await
}

/// Seed: "Like image" (explore shows like counts: seed issue 4). Idempotent.
#[invalidates("liked-images:user:<user_id>", "image-details:<image.id>", tag = "explore", cache = cache)]
pub async fn like_image(
    cache: &Cache,
    conn: &mut Conn,
    user_id: i64,
    image: &Image,
) -> AppResult<ImageDetails> {
    let sql = "INSERT OR IGNORE INTO image_likes (user_id, image_id, created_at) VALUES (?, ?, ?)";
    sqlx::query(sql)
        .bind(user_id)
        .bind(image.id)
        .bind(now_ms())
        .execute(&mut *conn)
        .await?;
    details(conn, image.id).await
}

/// Seed: "Unlike image". Idempotent.
#[invalidates("liked-images:user:<user_id>", "image-details:<image.id>", tag = "explore", cache = cache)]
pub async fn unlike_image(
    cache: &Cache,
    conn: &mut Conn,
    user_id: i64,
    image: &Image,
) -> AppResult<ImageDetails> {
    let sql = "DELETE FROM image_likes WHERE user_id = ? AND image_id = ?";
    sqlx::query(sql)
        .bind(user_id)
        .bind(image.id)
        .execute(&mut *conn)
        .await?;
    details(conn, image.id).await
}

/// Seed: "Add comment" (explore shows comment counts).
#[invalidates("image-details:<image.id>", tag = "explore", cache = cache)]
pub async fn add_comment(
    cache: &Cache,
    conn: &mut Conn,
    user_id: i64,
    image: &Image,
    body: &str,
) -> AppResult<Comment> {
    let sql = "INSERT INTO comments (image_id, user_id, body, created_at) VALUES (?, ?, ?, ?)";
    let done = sqlx::query(sql)
        .bind(image.id)
        .bind(user_id)
        .bind(body)
        .bind(now_ms())
        .execute(&mut *conn)
        .await?;
    let id = done.last_insert_rowid();
    queries::comment(conn, id)
        .await?
        .ok_or_else(|| AppError::not_found("comment", id))
}

/// Seed: "Delete comment" (its likes go with it).
#[invalidates("image-details:<comment.image_id>", tag = "explore", cache = cache)]
pub async fn delete_comment(
    cache: &Cache,
    conn: &mut Conn,
    comment: &Comment,
) -> AppResult<ImageDetails> {
    sqlx::query("DELETE FROM comments WHERE id = ?")
        .bind(comment.id)
        .execute(&mut *conn)
        .await?;
    details(conn, comment.image_id).await
}

/// Seed: "Like comment". Idempotent.
#[invalidates("image-details:<comment.image_id>", cache = cache)]
pub async fn like_comment(
    cache: &Cache,
    conn: &mut Conn,
    user_id: i64,
    comment: &Comment,
) -> AppResult<ImageDetails> {
    let sql = "INSERT OR IGNORE INTO comment_likes (user_id, comment_id) VALUES (?, ?)";
    sqlx::query(sql)
        .bind(user_id)
        .bind(comment.id)
        .execute(&mut *conn)
        .await?;
    details(conn, comment.image_id).await
}

/// Unliking a comment clears what liking it does. Idempotent.
#[invalidates("image-details:<comment.image_id>", cache = cache)]
pub async fn unlike_comment(
    cache: &Cache,
    conn: &mut Conn,
    user_id: i64,
    comment: &Comment,
) -> AppResult<ImageDetails> {
    let sql = "DELETE FROM comment_likes WHERE user_id = ? AND comment_id = ?";
    sqlx::query(sql)
        .bind(user_id)
        .bind(comment.id)
        .execute(&mut *conn)
        .await?;
    details(conn, comment.image_id).await
}
