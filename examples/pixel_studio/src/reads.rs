//! Every read of the seed's "Cache Key Reference", `#[cached]` with the
//! seed's key family and its recommended TTL.
//!
//! Each runs its queries (`crate::db::queries`, the uncached oracle) inside
//! one read transaction, so a cached value is one database state. Lists
//! whose variants a write must clear together carry a tag:
//!
//! | tag | on | cleared by |
//! |---|---|---|
//! | `profile:<user_id>` | every page of a profile | profile edits, follows, new and deleted images |
//! | `feed:<user_id>` | every page of a feed | follows, new and deleted images of a followee |
//! | `explore` | every search and page of explore | new, deleted, liked and commented images |
//! | `sets:<user_id>` | every filter of a user's sets | new and deleted sets and images |

use cachemacro_runtime::cached;

use crate::app::App;
use crate::db::models::*;
use crate::db::{begin_read, queries};

/// Runs one uncached query in a read transaction of its own.
macro_rules! in_read_tx {
    ($app:expr, |$conn:ident| $body:expr) => {{
        let mut tx = begin_read(&$app.pool).await?;
        let $conn = &mut *tx;
        let out = $body.await?;
        tx.commit().await?;
        Ok(out)
    }};
}

/// The signed-in user's header: kept out of the in-process tier
/// (`local = false`), since it shows a balance.
#[cached(key = "user-login:<user_id>", ttl = "1h", local = false, cache = app.cache)]
pub async fn user_login(app: &App, user_id: i64) -> sqlx::Result<Option<UserLogin>> {
    in_read_tx!(app, |conn| queries::user_login(conn, user_id))
}

#[cached(
    key = "explore-images?q=<q:hash>&page=<page>",
    ttl = "5m",
    tags = ["explore"],
    cache = app.cache
)]
pub async fn explore(app: &App, q: Option<&str>, page: u32) -> sqlx::Result<Explore> {
    in_read_tx!(app, |conn| queries::explore(conn, q, page))
}

#[cached(
    key = "following-feed:<user_id>:<page>:<page_size>",
    ttl = "10m",
    tags = ["feed:<user_id>"],
    cache = app.cache
)]
pub async fn following_feed(
    app: &App,
    user_id: i64,
    page: u32,
    page_size: u32,
) -> sqlx::Result<Option<Feed>> {
    in_read_tx!(app, |conn| queries::following_feed(
        conn, user_id, page, page_size
    ))
}

#[cached(
    key = "user-profile:<user_id>:<page>:<page_size>",
    ttl = "30m",
    tags = ["profile:<user_id>"],
    cache = app.cache
)]
pub async fn user_profile(
    app: &App,
    user_id: i64,
    page: u32,
    page_size: u32,
) -> sqlx::Result<Option<Profile>> {
    in_read_tx!(app, |conn| queries::user_profile(
        conn, user_id, page, page_size
    ))
}

#[cached(key = "user-follow-stats:<user_id>", ttl = "1h", cache = app.cache)]
pub async fn follow_stats(app: &App, user_id: i64) -> sqlx::Result<Option<FollowStats>> {
    in_read_tx!(app, |conn| queries::follow_stats(conn, user_id))
}

#[cached(key = "image-details:<image_id>", ttl = "1h", cache = app.cache)]
pub async fn image_details(app: &App, image_id: i64) -> sqlx::Result<Option<ImageDetails>> {
    in_read_tx!(app, |conn| queries::image_details(conn, image_id))
}

#[cached(key = "liked-images:user:<user_id>", ttl = "1h", cache = app.cache)]
pub async fn liked_images(app: &App, user_id: i64) -> sqlx::Result<Option<LikedImages>> {
    in_read_tx!(app, |conn| queries::liked_images(conn, user_id))
}

#[cached(key = "user-collections:<user_id>", ttl = "1h", cache = app.cache)]
pub async fn user_collections(app: &App, user_id: i64) -> sqlx::Result<Option<UserCollections>> {
    in_read_tx!(app, |conn| queries::user_collections(conn, user_id))
}

#[cached(
    key = "sets:user:<user_id>:<prompt>:<model>",
    ttl = "1h",
    tags = ["sets:<user_id>"],
    cache = app.cache
)]
pub async fn user_sets(
    app: &App,
    user_id: i64,
    prompt: Option<&str>,
    model: Option<&str>,
) -> sqlx::Result<Option<UserSets>> {
    in_read_tx!(app, |conn| queries::user_sets(conn, user_id, prompt, model))
}

#[cached(key = "set:<set_id>", ttl = "1h", cache = app.cache)]
pub async fn set_details(app: &App, set_id: i64) -> sqlx::Result<Option<SetDetails>> {
    in_read_tx!(app, |conn| queries::set_details(conn, set_id))
}

#[cached(key = "processing:<request_id>", ttl = "1h", cache = app.cache)]
pub async fn processing(app: &App, request_id: i64) -> sqlx::Result<Option<Processing>> {
    in_read_tx!(app, |conn| queries::processing(conn, request_id))
}
