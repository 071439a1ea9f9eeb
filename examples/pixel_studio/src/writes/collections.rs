//! Collections: every operation clears its owner's `user-collections`
//! (all five were missing in the seed: its critical issue 1).

use cachemacro_runtime::{Cache, invalidates};

use crate::db::models::{Collection, CollectionRow};
use crate::db::{Conn, now_ms};
use crate::error::{AppError, AppResult};

/// The collection as `user-collections` shows it.
async fn collection(conn: &mut Conn, id: i64) -> AppResult<Collection> {
    let row: Option<CollectionRow> =
        sqlx::query_as("SELECT id, user_id, name, description FROM collections WHERE id = ?")
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?;
    let row = row.ok_or_else(|| AppError::not_found("collection", id))?;
    let sql = "SELECT image_id FROM collection_images WHERE collection_id = ? ORDER BY added_at, image_id";
    let image_ids = sqlx::query_scalar(sql)
        .bind(id)
        .fetch_all(&mut *conn)
        .await?;
    let CollectionRow {
        id,
        user_id,
        name,
        description,
    } = row;
    Ok(Collection {
        id,
        user_id,
        name,
        description,
        image_ids,
    })
}

/// Seed: "Create collection".
#[invalidates("user-collections:<user_id>", cache = cache)]
pub async fn create_collection(
    cache: &Cache,
    conn: &mut Conn,
    user_id: i64,
    name: &str,
    description: &str,
) -> AppResult<Collection> {
    let sql =
        "INSERT INTO collections (user_id, name, description, created_at) VALUES (?, ?, ?, ?)";
    let done = sqlx::query(sql)
        .bind(user_id)
        .bind(name)
        .bind(description)
        .bind(now_ms())
        .execute(&mut *conn)
        .await?;
    collection(conn, done.last_insert_rowid()).await
}

/// Seed: "Update collection" (name and/or description).
#[invalidates("user-collections:<row.user_id>", cache = cache)]
pub async fn update_collection(
    cache: &Cache,
    conn: &mut Conn,
    row: &CollectionRow,
    name: Option<&str>,
    description: Option<&str>,
) -> AppResult<Collection> {
    let sql = "UPDATE collections SET name = COALESCE(?, name), description = COALESCE(?, description) WHERE id = ?";
    sqlx::query(sql)
        .bind(name)
        .bind(description)
        .bind(row.id)
        .execute(&mut *conn)
        .await?;
    collection(conn, row.id).await
}

/// Seed: "Delete collection" (its saved images go with it).
#[invalidates("user-collections:<row.user_id>", cache = cache)]
pub async fn delete_collection(
    cache: &Cache,
    conn: &mut Conn,
    row: &CollectionRow,
) -> AppResult<()> {
    sqlx::query("DELETE FROM collections WHERE id = ?")
        .bind(row.id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Seed: "Add image to collection". Idempotent.
#[invalidates("user-collections:<row.user_id>", cache = cache)]
pub async fn add_image_to_collection(
    cache: &Cache,
    conn: &mut Conn,
    row: &CollectionRow,
    image_id: i64,
) -> AppResult<Collection> {
    let sql = "INSERT OR IGNORE INTO collection_images (collection_id, image_id, added_at) VALUES (?, ?, ?)";
    sqlx::query(sql)
        .bind(row.id)
        .bind(image_id)
        .bind(now_ms())
        .execute(&mut *conn)
        .await?;
    collection(conn, row.id).await
}

/// Seed: "Remove image from collection". Idempotent.
#[invalidates("user-collections:<row.user_id>", cache = cache)]
pub async fn remove_image_from_collection(
    cache: &Cache,
    conn: &mut Conn,
    row: &CollectionRow,
    image_id: i64,
) -> AppResult<Collection> {
    let sql = "DELETE FROM collection_images WHERE collection_id = ? AND image_id = ?";
    sqlx::query(sql)
        .bind(row.id)
        .bind(image_id)
        .execute(&mut *conn)
        .await?;
    collection(conn, row.id).await
}
