//! Pixel Studio rebuilt on cachemacro: the app of
//! `shared/reference/000_…` (an image-generation and sharing site whose
//! hand-written Redis cache served stale data), with every read of its
//! "Cache Key Reference" a `#[cached]` function and every write of its
//! "Required Invalidations" an `#[invalidates]` one.
//!
//! * [`db`]: schema, migrations, and the uncached queries (the oracle).
//! * [`reads`]: the `#[cached]` reads, one read transaction each.
//! * [`writes`]: the `#[invalidates]` writes, on a write transaction's connection.
//! * [`read`]: the read dispatcher shared by the routes and `/db/snapshot`.
//! * [`http`]: the routes; [`observe`]: the observability pages.

pub mod app;
pub mod checker;
pub mod db;
pub mod error;
pub mod fault;
pub mod http;
pub mod observe;
pub mod read;
pub mod reads;
pub mod writes;

pub use app::{App, AppState};
pub use http::router;

/// The invalidation map of this app, as committed in its README.
pub fn invalidation_map() -> String {
    cachemacro_runtime::registry::invalidation_map()
}

#[cfg(test)]
mod wiring {
    /// Every pattern and tag clears some cached family, no two families
    /// share a key, and every family is cleared by some write.
    #[test]
    fn cache_wiring() {
        let report = cachemacro_runtime::registry::verify().unwrap();
        assert!(report.warnings.is_empty(), "{report}");
        assert_eq!((report.cached, report.invalidators), (11, 25), "{report}");
    }

    /// The map committed in README.md is the one the code produces.
    /// `PIXEL_STUDIO_BLESS=1 cargo test -p pixel_studio map` rewrites it.
    #[test]
    fn committed_map_is_current() {
        let readme_path = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
        let readme = std::fs::read_to_string(readme_path).unwrap_or_default();
        let (begin, end) = (
            "<!-- invalidation-map:begin -->\n",
            "<!-- invalidation-map:end -->",
        );
        let map = super::invalidation_map();
        let fresh = format!("{begin}```text\n{}\n```\n{end}", map.trim_end());
        let current = readme.find(begin).and_then(|start| {
            readme[start..]
                .find(end)
                .map(|len| &readme[start..start + len + end.len()])
        });
        if std::env::var_os("PIXEL_STUDIO_BLESS").is_some() {
            let updated = match current {
                Some(old) => readme.replace(old, &fresh),
                None => format!("{readme}\n{fresh}\n"),
            };
            std::fs::write(readme_path, updated).unwrap();
            return;
        }
        assert_eq!(
            current,
            Some(fresh.as_str()),
            "README.md's invalidation map is out of date: run PIXEL_STUDIO_BLESS=1 cargo test -p pixel_studio committed_map"
        );
    }
}
