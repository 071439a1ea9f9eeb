//! What the reads return: each struct is both the cached value and the
//! JSON body of its route (and of the `/db/snapshot` oracle).
//!
//! Which write must clear which read follows from what each shows, so the
//! shapes are kept deliberately narrow: a username appears only in
//! [`UserLogin`] and [`Profile`]; other reads name users by id.

use serde::{Deserialize, Serialize};

/// `user-login:<user_id>`: the signed-in user's own header.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct UserLogin {
    pub id: i64,
    pub username: String,
    pub avatar_url: Option<String>,
    pub credits: i64,
}

/// The user part of a profile page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct ProfileUser {
    pub id: i64,
    pub username: String,
    pub bio: String,
    pub avatar_url: Option<String>,
}

/// An image in a list (profile, feed, likes): no counts, so likes and
/// comments need not clear those lists.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct ImageCard {
    pub id: i64,
    pub owner_id: i64,
    pub prompt: String,
    pub model: String,
    pub created_at: i64,
}

/// `user-profile:<user_id>:<page>:<page_size>`: the user, their follow
/// counts, and one page of their public images, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    pub user: ProfileUser,
    pub followers: i64,
    pub following: i64,
    pub page: u32,
    pub page_size: u32,
    pub images: Vec<ImageCard>,
}

/// `user-follow-stats:<user_id>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FollowStats {
    pub user_id: i64,
    pub followers: i64,
    pub following: i64,
}

/// `following-feed:<user_id>:<page>:<page_size>`: public images of the
/// users `user_id` follows, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Feed {
    pub user_id: i64,
    pub page: u32,
    pub page_size: u32,
    pub images: Vec<ImageCard>,
}

/// An image in the explore grid, with its counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct ExploreCard {
    pub id: i64,
    pub owner_id: i64,
    pub prompt: String,
    pub model: String,
    pub like_count: i64,
    pub comment_count: i64,
    pub created_at: i64,
}

/// `explore-images?q=<q:hash>&page=<page>`: public images matching the
/// search (prompt contains `q`), newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Explore {
    pub q: Option<String>,
    pub page: u32,
    pub page_size: u32,
    pub images: Vec<ExploreCard>,
}

/// An image row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct Image {
    pub id: i64,
    pub owner_id: i64,
    pub set_id: i64,
    pub prompt: String,
    pub model: String,
    pub public: bool,
    pub created_at: i64,
}

/// A comment, with its likes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct Comment {
    pub id: i64,
    pub image_id: i64,
    pub user_id: i64,
    pub body: String,
    pub like_count: i64,
    pub created_at: i64,
}

/// `image-details:<image_id>`: the image, its like count and its comments
/// (oldest first).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageDetails {
    pub image: Image,
    pub like_count: i64,
    pub liked_by: Vec<i64>,
    pub comments: Vec<Comment>,
}

/// `liked-images:user:<user_id>`: what a user liked, most recent like first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LikedImages {
    pub user_id: i64,
    pub images: Vec<ImageCard>,
}

/// A collection with the images saved in it (by id, in the order added).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Collection {
    pub id: i64,
    pub user_id: i64,
    pub name: String,
    pub description: String,
    pub image_ids: Vec<i64>,
}

/// A collection row, without its images.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct CollectionRow {
    pub id: i64,
    pub user_id: i64,
    pub name: String,
    pub description: String,
}

/// `user-collections:<user_id>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserCollections {
    pub user_id: i64,
    pub collections: Vec<Collection>,
}

/// A set in a user's list of sets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct SetSummary {
    pub id: i64,
    pub prompt: String,
    pub model: String,
    pub image_count: i64,
    pub created_at: i64,
}

/// `sets:user:<user_id>:<prompt>:<model>`: a user's sets, newest first,
/// filtered by prompt (contains) and model (equals) when given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserSets {
    pub user_id: i64,
    pub prompt: Option<String>,
    pub model: Option<String>,
    pub sets: Vec<SetSummary>,
}

/// A set row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct SetRow {
    pub id: i64,
    pub user_id: i64,
    pub request_id: i64,
    pub prompt: String,
    pub model: String,
    pub created_at: i64,
}

/// `set:<set_id>`: a set and its images.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SetDetails {
    pub set: SetRow,
    pub images: Vec<Image>,
}

/// `processing:<request_id>`: a generation request's progress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct Processing {
    pub id: i64,
    pub user_id: i64,
    pub prompt: String,
    pub model: String,
    pub image_count: i64,
    pub status: String,
    pub progress: i64,
    pub set_id: Option<i64>,
    pub created_at: i64,
}
