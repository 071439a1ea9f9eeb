//! The HTTP API: JSON routes for every read and every action, the
//! `/db/snapshot` oracle, and the observability pages.

mod collections;
mod extract;
mod images;
mod reads;
mod social;
mod users;

use axum::Router;
use axum::routing::{delete, get, post, put};

use crate::app::AppState;
use crate::observe;

/// Every read route's path pattern (each is served by [`reads::read`]).
pub const READ_ROUTES: &[&str] = &[
    "/users/{id}/login",
    "/users/{id}/profile",
    "/users/{id}/follow-stats",
    "/users/{id}/feed",
    "/explore",
    "/images/{id}",
    "/users/{id}/likes",
    "/users/{id}/collections",
    "/users/{id}/sets",
    "/sets/{id}",
    "/processing/{id}",
];

/// The app's routes over `app`.
pub fn router(app: AppState) -> Router {
    let mut router = Router::new();
    for path in READ_ROUTES {
        router = router.route(path, get(reads::read));
    }
    router
        .route("/db/snapshot", post(reads::snapshot))
        .route("/users", post(users::create))
        .route("/users/{id}/username", put(users::username))
        .route("/users/{id}/avatar", put(users::avatar))
        .route("/users/{id}/bio", put(users::bio))
        .route("/users/{id}/credits/purchase", post(users::purchase))
        .route("/users/{id}/credits/use", post(users::spend))
        .route(
            "/users/{id}/follow",
            post(social::follow).delete(social::unfollow),
        )
        .route(
            "/images/{id}/like",
            post(social::like).delete(social::unlike),
        )
        .route("/images/{id}/comments", post(social::comment))
        .route("/comments/{id}", delete(social::delete_comment))
        .route(
            "/comments/{id}/like",
            post(social::like_comment).delete(social::unlike_comment),
        )
        .route("/collections", post(collections::create))
        .route(
            "/collections/{id}",
            put(collections::update).delete(collections::delete),
        )
        .route("/collections/{id}/images", post(collections::add_image))
        .route(
            "/collections/{id}/images/{image_id}",
            delete(collections::remove_image),
        )
        .route("/images/generate", post(images::generate))
        .route("/processing/{id}/status", post(images::status))
        .route("/sets/{id}", delete(images::delete_set))
        .route("/images/{id}", delete(images::delete_image))
        .route("/metrics", get(observe::metrics))
        .route("/cache/stats", get(observe::stats))
        .route("/health", get(observe::health))
        .route("/cache", get(observe::page))
        .fallback(not_found)
        .with_state(app)
}

async fn not_found() -> crate::error::AppError {
    crate::error::AppError::NotFound("no such route".into())
}
