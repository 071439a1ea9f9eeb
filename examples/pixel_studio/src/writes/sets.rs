//! Deleting a set.

use cachemacro_runtime::{Cache, invalidates};

use super::images::delete_image;
use crate::db::Conn;
use crate::db::models::{Image, SetRow};
use crate::error::AppResult;

/// Seed: "Delete set": every filter combination of the owner's sets (the
/// seed's `undefined:undefined` bug: one tag here, whatever the filters)
/// and the set itself; its images are deleted with [`delete_image`], which
/// clears everything each of them was shown in.
#[invalidates(tag = "sets:<set.user_id>", "set:<set.id>", cache = cache)]
pub async fn delete_set(cache: &Cache, conn: &mut Conn, set: &SetRow) -> AppResult<()> {
    let images: Vec<Image> = sqlx::query_as(
        "SELECT id, user_id AS owner_id, set_id, prompt, model, public, created_at
         FROM images WHERE set_id = ? ORDER BY id",
    )
    .bind(set.id)
    .fetch_all(&mut *conn)
    .await?;
    for image in &images {
        delete_image(cache, conn, image).await?;
    }
    sqlx::query("DELETE FROM sets WHERE id = ?")
        .bind(set.id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
