//! One-target invalidations, called once per affected user by writes whose
//! effect reaches other users' lists (the users are found in the write's
//! own transaction).

use cachemacro_runtime::{Cache, invalidates};

/// Every page of `user_id`'s feed: a followee added or deleted an image.
#[invalidates(tag = "feed:<user_id>", cache = cache)]
pub async fn feed_changed(cache: &Cache, user_id: i64) {}

/// `user_id`'s likes page: an image they liked was deleted.
#[invalidates("liked-images:user:<user_id>", cache = cache)]
pub async fn likes_changed(cache: &Cache, user_id: i64) {}

/// `user_id`'s collections: an image saved in one was deleted.
#[invalidates("user-collections:<user_id>", cache = cache)]
pub async fn collections_changed(cache: &Cache, user_id: i64) {}
