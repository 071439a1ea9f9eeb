//! Every write of the seed's "Required Invalidations by Feature Area",
//! `#[invalidates]`, each naming what it clears.
//!
//! A write takes this instance's cache and the connection of a write
//! transaction its handler opened: it does the SQL and, on `Ok`, clears
//! its targets. Writes that clear lists of *other* users (a followee's new
//! image in every follower's feed, a deleted image in every liker's
//! likes) find those users in the transaction and call the one-target
//! writes of [`fanout`] for each.
//!
//! The entity a write is about is loaded by the handler first (a 404 is
//! answered before anything is written), so templates can name its fields
//! (`<image.owner_id>`).

pub mod collections;
pub mod fanout;
pub mod images;
pub mod sets;
pub mod social;
pub mod users;

use crate::error::{AppError, AppResult};

/// Checks a text field: trimmed, not empty, at most `max` characters.
pub fn text(field: &str, value: &str, max: usize) -> AppResult<String> {
    let value = value.trim();
    if value.is_empty() {
        return Err(AppError::BadRequest(format!("{field} must not be empty")));
    }
    if value.chars().count() > max {
        return Err(AppError::BadRequest(format!(
            "{field} must be at most {max} characters"
        )));
    }
    Ok(value.to_owned())
}

/// Whether `e` is a violated UNIQUE constraint.
pub fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}
