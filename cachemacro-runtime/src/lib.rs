//! Application-level caching for async Rust services, written as attributes
//! on the functions that read and write data.
//!
//! ```
//! use cachemacro_runtime::{cached, invalidates};
//! # #[derive(Debug)] struct DbError;
//! # struct Db;
//!
//! #[cached(key = "user-collections:<user_id>", ttl = "1h")]
//! async fn user_collections(db: &Db, user_id: u64) -> Result<Vec<String>, DbError> {
//!     Ok(vec![format!("favourites of {user_id}")])
//! }
//!
//! #[invalidates("user-collections:<user_id>")]
//! async fn add_image_to_collection(db: &Db, user_id: u64, image_id: u64) -> Result<(), DbError> {
//!     Ok(())
//! }
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! # let db = Db;
//! user_collections(&db, 42).await.unwrap(); // miss: runs the body, stores
//! user_collections(&db, 42).await.unwrap(); // hit
//! add_image_to_collection(&db, 42, 7).await.unwrap(); // deletes `user-collections:42`
//! # let stats = cachemacro_runtime::default_cache().stats();
//! # assert_eq!((stats.hits, stats.misses, stats.invalidations), (1, 1, 1));
//! # }
//! ```
//!
//! The attributes are documented on [`cached`] and [`invalidates`]; the
//! engine behind them is [`Cache::get_or_load`] with [`EntryOptions`], for
//! keys known only at run time; the handle, its backends and the manual API
//! on [`Cache`]; key encoding on
//! [`KeyPart`]; stored bytes on [`Codec`].
#![warn(missing_docs)]

mod cache;
mod codec;
mod default;
mod engine;
mod error;
mod invalidation;
mod key;
mod namespace;
pub mod registry;
mod stats;
mod store;

#[doc(hidden)]
pub mod __private;

pub use cachemacro::{cached, invalidates};

pub use crate::cache::{AnnouncementHealth, Cache, CacheBuilder, Health, LocalHealth};
pub use crate::codec::{Bincode, Cacheable, Codec, CodecError};
pub use crate::default::{default_cache, set_default};
pub use crate::engine::EntryOptions;
pub use crate::error::{BoxError, Error, LoadTimeout};
pub use crate::invalidation::{Pending, after_commit};
pub use crate::key::{Hashable, KeyPart, KeyWriter, encode_key_part, hash_key_part};
pub use crate::stats::{FamilyKind, FamilyStats, ManualStats, Stats};
pub use crate::store::{BreakerHealth, BreakerState, Problem};

#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;
