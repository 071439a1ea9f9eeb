//! The [`Cache`] handle: building it, the engine as methods
//! (`get_or_load`), the manual API and invalidation by key, prefix or tag.

mod builder;
mod cluster_url;
mod get_or_load;
mod handle;
mod health;
mod health_breaker;
mod manual;
mod startup;
mod url;

pub use builder::CacheBuilder;
pub use handle::Cache;
pub use health::{AnnouncementHealth, Health, LocalHealth};
