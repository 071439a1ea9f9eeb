//! Image generation, its progress, and deleting an image.

use cachemacro_runtime::{Cache, invalidates};
use serde::{Deserialize, Serialize};

use super::fanout;
use crate::db::models::{Image, Processing};
use crate::db::{Conn, now_ms, queries};
use crate::error::{AppError, AppResult};

/// Credits one generated image costs.
pub const CREDITS_PER_IMAGE: i64 = 1;

/// A checked generation request.
#[derive(Debug, Clone)]
pub struct Generate {
    pub user_id: i64,
    pub prompt: String,
    pub model: String,
    pub count: i64,
    pub public: bool,
}

/// What a generation made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Generated {
    pub request: Processing,
    pub set_id: i64,
    pub image_ids: Vec<i64>,
}

/// Seed: "Generate new image" / "Create set" / "Create public image" /
/// "Use credits": one request (complete at once: generation itself is out
/// of scope), one set, `count` images, `count` credits. Clears the owner's
/// header (credits), profile and sets, explore, and every follower's feed
/// (seed issue 5, found in this transaction: no scan).
#[invalidates(
    "user-login:<req.user_id>",
    tag = "profile:<req.user_id>",
    tag = "sets:<req.user_id>",
    tag = "explore",
    cache = cache
)]
pub async fn generate_images(
    cache: &Cache,
    conn: &mut Conn,
    req: &Generate,
) -> AppResult<Generated> {
    super::users::spend(conn, req.user_id, req.count * CREDITS_PER_IMAGE).await?;
    let now = now_ms();
    let sql = "INSERT INTO processing_requests (user_id, prompt, model, image_count, status, progress, created_at)
               VALUES (?, ?, ?, ?, 'complete', 100, ?)";
    let done = sqlx::query(sql)
        .bind(req.user_id)
        .bind(&req.prompt)
        .bind(&req.model)
        .bind(req.count)
        .bind(now);
    let request_id = done.execute(&mut *conn).await?.last_insert_rowid();
    let sql =
        "INSERT INTO sets (user_id, request_id, prompt, model, created_at) VALUES (?, ?, ?, ?, ?)";
    let done = sqlx::query(sql)
        .bind(req.user_id)
        .bind(request_id)
        .bind(&req.prompt)
        .bind(&req.model)
        .bind(now);
    let set_id = done.execute(&mut *conn).await?.last_insert_rowid();
    sqlx::query("UPDATE processing_requests SET set_id = ? WHERE id = ?")
        .bind(set_id)
        .bind(request_id)
        .execute(&mut *conn)
        .await?;
    let mut image_ids = Vec::new();
    for _ in 0..req.count {
        let sql = "INSERT INTO images (user_id, set_id, prompt, model, public, created_at) VALUES (?, ?, ?, ?, ?, ?)";
        let done = sqlx::query(sql)
            .bind(req.user_id)
            .bind(set_id)
            .bind(&req.prompt)
            .bind(&req.model);
        let done = done.bind(req.public).bind(now).execute(&mut *conn).await?;
        image_ids.push(done.last_insert_rowid());
    }
    for follower in queries::follower_ids(conn, req.user_id).await? {
        fanout::feed_changed(cache, follower).await;
    }
    let request = queries::processing(conn, request_id).await?;
    let request = request.ok_or_else(|| AppError::not_found("processing request", request_id))?;
    Ok(Generated {
        request,
        set_id,
        image_ids,
    })
}

/// Seed: processing status updates (`processing:<request_id>`).
#[invalidates("processing:<request_id>", cache = cache)]
pub async fn update_processing(
    cache: &Cache,
    conn: &mut Conn,
    request_id: i64,
    status: &str,
    progress: i64,
) -> AppResult<Processing> {
    let sql = "UPDATE processing_requests SET status = ?, progress = ? WHERE id = ?";
    sqlx::query(sql)
        .bind(status)
        .bind(progress)
        .bind(request_id)
        .execute(&mut *conn)
        .await?;
    let request = queries::processing(conn, request_id).await?;
    request.ok_or_else(|| AppError::not_found("processing request", request_id))
}

/// Seed: "Delete image": its details, its set (and the owner's set list,
/// which counts images), the owner's profile, explore; and, found in this
/// transaction before the rows go, every liker's likes, every collection
/// owner's collections, every follower's feed (the seed's "complex" row).
#[invalidates(
    "image-details:<image.id>",
    "set:<image.set_id>",
    tag = "sets:<image.owner_id>",
    tag = "profile:<image.owner_id>",
    tag = "explore",
    cache = cache
)]
pub async fn delete_image(cache: &Cache, conn: &mut Conn, image: &Image) -> AppResult<()> {
    let likers: Vec<i64> =
        sqlx::query_scalar("SELECT user_id FROM image_likes WHERE image_id = ? ORDER BY user_id")
            .bind(image.id)
            .fetch_all(&mut *conn)
            .await?;
    let owners: Vec<i64> = sqlx::query_scalar(
        "SELECT DISTINCT c.user_id FROM collection_images ci JOIN collections c ON c.id = ci.collection_id
         WHERE ci.image_id = ? ORDER BY c.user_id",
    )
    .bind(image.id)
    .fetch_all(&mut *conn)
    .await?;
    let followers = queries::follower_ids(conn, image.owner_id).await?;
    sqlx::query("DELETE FROM images WHERE id = ?")
        .bind(image.id)
        .execute(&mut *conn)
        .await?;
    for user_id in likers {
        fanout::likes_changed(cache, user_id).await;
    }
    for user_id in owners {
        fanout::collections_changed(cache, user_id).await;
    }
    for user_id in followers {
        fanout::feed_changed(cache, user_id).await;
    }
    Ok(())
}
