//! The reads, uncached: each takes one connection (a read transaction, in
//! practice) and returns what its route shows, `None` when the entity it
//! is about does not exist.
//!
//! These are the database oracle: `crate::reads` wraps each in `#[cached]`,
//! and `/db/snapshot` runs them directly. Every list has a total `ORDER BY`.

use sqlx::Row;

use super::Conn;
use super::models::*;

/// The page size of the explore grid (its key has no page size).
pub const EXPLORE_PAGE_SIZE: u32 = 20;

fn offset(page: u32, page_size: u32) -> i64 {
    i64::from(page.saturating_sub(1)) * i64::from(page_size)
}

async fn user_exists(conn: &mut Conn, user_id: i64) -> sqlx::Result<bool> {
    let found: Option<i64> = sqlx::query_scalar("SELECT id FROM users WHERE id = ?")
        .bind(user_id)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(found.is_some())
}

pub async fn user_login(conn: &mut Conn, user_id: i64) -> sqlx::Result<Option<UserLogin>> {
    sqlx::query_as("SELECT id, username, avatar_url, credits FROM users WHERE id = ?")
        .bind(user_id)
        .fetch_optional(&mut *conn)
        .await
}

pub async fn follow_stats(conn: &mut Conn, user_id: i64) -> sqlx::Result<Option<FollowStats>> {
    if !user_exists(conn, user_id).await? {
        return Ok(None);
    }
    let row = sqlx::query(
        "SELECT (SELECT COUNT(*) FROM follows WHERE followee_id = ?1) AS followers,
                (SELECT COUNT(*) FROM follows WHERE follower_id = ?1) AS following",
    )
    .bind(user_id)
    .fetch_one(&mut *conn)
    .await?;
    Ok(Some(FollowStats {
        user_id,
        followers: row.get("followers"),
        following: row.get("following"),
    }))
}

pub async fn user_profile(
    conn: &mut Conn,
    user_id: i64,
    page: u32,
    page_size: u32,
) -> sqlx::Result<Option<Profile>> {
    let user: Option<ProfileUser> =
        sqlx::query_as("SELECT id, username, bio, avatar_url FROM users WHERE id = ?")
            .bind(user_id)
            .fetch_optional(&mut *conn)
            .await?;
    let Some(user) = user else { return Ok(None) };
    let Some(stats) = follow_stats(conn, user_id).await? else {
        return Ok(None);
    };
    let images = sqlx::query_as(
        "SELECT id, user_id AS owner_id, prompt, model, created_at FROM images
         WHERE user_id = ? AND public = 1 ORDER BY id DESC LIMIT ? OFFSET ?",
    )
    .bind(user_id)
    .bind(i64::from(page_size))
    .bind(offset(page, page_size))
    .fetch_all(&mut *conn)
    .await?;
    Ok(Some(Profile {
        user,
        followers: stats.followers,
        following: stats.following,
        page,
        page_size,
        images,
    }))
}

pub async fn following_feed(
    conn: &mut Conn,
    user_id: i64,
    page: u32,
    page_size: u32,
) -> sqlx::Result<Option<Feed>> {
    if !user_exists(conn, user_id).await? {
        return Ok(None);
    }
    let images = sqlx::query_as(
        "SELECT i.id, i.user_id AS owner_id, i.prompt, i.model, i.created_at FROM images i
         JOIN follows f ON f.followee_id = i.user_id
         WHERE f.follower_id = ? AND i.public = 1 ORDER BY i.id DESC LIMIT ? OFFSET ?",
    )
    .bind(user_id)
    .bind(i64::from(page_size))
    .bind(offset(page, page_size))
    .fetch_all(&mut *conn)
    .await?;
    Ok(Some(Feed {
        user_id,
        page,
        page_size,
        images,
    }))
}

pub async fn explore(conn: &mut Conn, q: Option<&str>, page: u32) -> sqlx::Result<Explore> {
    let images = sqlx::query_as(
        "SELECT i.id, i.user_id AS owner_id, i.prompt, i.model, i.created_at,
                (SELECT COUNT(*) FROM image_likes l WHERE l.image_id = i.id) AS like_count,
                (SELECT COUNT(*) FROM comments c WHERE c.image_id = i.id) AS comment_count
         FROM images i
         WHERE i.public = 1 AND (?1 IS NULL OR instr(lower(i.prompt), lower(?1)) > 0)
         ORDER BY i.id DESC LIMIT ?2 OFFSET ?3",
    )
    .bind(q)
    .bind(i64::from(EXPLORE_PAGE_SIZE))
    .bind(offset(page, EXPLORE_PAGE_SIZE))
    .fetch_all(&mut *conn)
    .await?;
    Ok(Explore {
        q: q.map(str::to_owned),
        page,
        page_size: EXPLORE_PAGE_SIZE,
        images,
    })
}

/// The image row alone (writes use it to know whose caches to clear).
pub async fn image(conn: &mut Conn, image_id: i64) -> sqlx::Result<Option<Image>> {
    sqlx::query_as(
        "SELECT id, user_id AS owner_id, set_id, prompt, model, public, created_at
         FROM images WHERE id = ?",
    )
    .bind(image_id)
    .fetch_optional(&mut *conn)
    .await
}

pub async fn image_details(conn: &mut Conn, image_id: i64) -> sqlx::Result<Option<ImageDetails>> {
    let Some(image) = image(conn, image_id).await? else {
        return Ok(None);
    };
    let liked_by: Vec<i64> =
        sqlx::query_scalar("SELECT user_id FROM image_likes WHERE image_id = ? ORDER BY user_id")
            .bind(image_id)
            .fetch_all(&mut *conn)
            .await?;
    let comments = sqlx::query_as(
        "SELECT c.id, c.image_id, c.user_id, c.body, c.created_at,
                (SELECT COUNT(*) FROM comment_likes l WHERE l.comment_id = c.id) AS like_count
         FROM comments c WHERE c.image_id = ? ORDER BY c.id",
    )
    .bind(image_id)
    .fetch_all(&mut *conn)
    .await?;
    let like_count = i64::try_from(liked_by.len()).unwrap_or(i64::MAX);
    Ok(Some(ImageDetails {
        image,
        like_count,
        liked_by,
        comments,
    }))
}

pub async fn liked_images(conn: &mut Conn, user_id: i64) -> sqlx::Result<Option<LikedImages>> {
    if !user_exists(conn, user_id).await? {
        return Ok(None);
    }
    let images = sqlx::query_as(
        "SELECT i.id, i.user_id AS owner_id, i.prompt, i.model, i.created_at FROM image_likes l
         JOIN images i ON i.id = l.image_id WHERE l.user_id = ?
         ORDER BY l.created_at DESC, i.id DESC",
    )
    .bind(user_id)
    .fetch_all(&mut *conn)
    .await?;
    Ok(Some(LikedImages { user_id, images }))
}

/// A collection row alone (writes use it to know whose caches to clear).
pub async fn collection(
    conn: &mut Conn,
    collection_id: i64,
) -> sqlx::Result<Option<CollectionRow>> {
    sqlx::query_as("SELECT id, user_id, name, description FROM collections WHERE id = ?")
        .bind(collection_id)
        .fetch_optional(&mut *conn)
        .await
}

pub async fn user_collections(
    conn: &mut Conn,
    user_id: i64,
) -> sqlx::Result<Option<UserCollections>> {
    if !user_exists(conn, user_id).await? {
        return Ok(None);
    }
    let rows: Vec<CollectionRow> = sqlx::query_as(
        "SELECT id, user_id, name, description FROM collections WHERE user_id = ? ORDER BY id",
    )
    .bind(user_id)
    .fetch_all(&mut *conn)
    .await?;
    let mut collections = Vec::with_capacity(rows.len());
    for row in rows {
        let image_ids = sqlx::query_scalar(
            "SELECT image_id FROM collection_images WHERE collection_id = ?
             ORDER BY added_at, image_id",
        )
        .bind(row.id)
        .fetch_all(&mut *conn)
        .await?;
        let CollectionRow {
            id,
            user_id,
            name,
            description,
        } = row;
        collections.push(Collection {
            id,
            user_id,
            name,
            description,
            image_ids,
        });
    }
    Ok(Some(UserCollections {
        user_id,
        collections,
    }))
}

pub async fn user_sets(
    conn: &mut Conn,
    user_id: i64,
    prompt: Option<&str>,
    model: Option<&str>,
) -> sqlx::Result<Option<UserSets>> {
    if !user_exists(conn, user_id).await? {
        return Ok(None);
    }
    let sets = sqlx::query_as(
        "SELECT s.id, s.prompt, s.model, s.created_at,
                (SELECT COUNT(*) FROM images i WHERE i.set_id = s.id) AS image_count
         FROM sets s WHERE s.user_id = ?1
           AND (?2 IS NULL OR instr(lower(s.prompt), lower(?2)) > 0)
           AND (?3 IS NULL OR s.model = ?3)
         ORDER BY s.id DESC",
    )
    .bind(user_id)
    .bind(prompt)
    .bind(model)
    .fetch_all(&mut *conn)
    .await?;
    let (prompt, model) = (prompt.map(str::to_owned), model.map(str::to_owned));
    Ok(Some(UserSets {
        user_id,
        prompt,
        model,
        sets,
    }))
}

/// A set row alone (writes use it to know whose caches to clear).
pub async fn set_row(conn: &mut Conn, set_id: i64) -> sqlx::Result<Option<SetRow>> {
    sqlx::query_as(
        "SELECT id, user_id, request_id, prompt, model, created_at FROM sets WHERE id = ?",
    )
    .bind(set_id)
    .fetch_optional(&mut *conn)
    .await
}

pub async fn set_details(conn: &mut Conn, set_id: i64) -> sqlx::Result<Option<SetDetails>> {
    let Some(set) = set_row(conn, set_id).await? else {
        return Ok(None);
    };
    let images = sqlx::query_as(
        "SELECT id, user_id AS owner_id, set_id, prompt, model, public, created_at
         FROM images WHERE set_id = ? ORDER BY id",
    )
    .bind(set_id)
    .fetch_all(&mut *conn)
    .await?;
    Ok(Some(SetDetails { set, images }))
}

pub async fn processing(conn: &mut Conn, request_id: i64) -> sqlx::Result<Option<Processing>> {
    sqlx::query_as(
        "SELECT id, user_id, prompt, model, image_count, status, progress, set_id, created_at
         FROM processing_requests WHERE id = ?",
    )
    .bind(request_id)
    .fetch_optional(&mut *conn)
    .await
}

/// A comment row (writes use it to know which image's details to clear).
pub async fn comment(conn: &mut Conn, comment_id: i64) -> sqlx::Result<Option<Comment>> {
    sqlx::query_as(
        "SELECT c.id, c.image_id, c.user_id, c.body, c.created_at,
                (SELECT COUNT(*) FROM comment_likes l WHERE l.comment_id = c.id) AS like_count
         FROM comments c WHERE c.id = ?",
    )
    .bind(comment_id)
    .fetch_optional(&mut *conn)
    .await
}

/// Ids of the users who follow `user_id` (whose feeds show its images).
pub async fn follower_ids(conn: &mut Conn, user_id: i64) -> sqlx::Result<Vec<i64>> {
    sqlx::query_scalar("SELECT follower_id FROM follows WHERE followee_id = ? ORDER BY follower_id")
        .bind(user_id)
        .fetch_all(&mut *conn)
        .await
}
