//! What the macros register at link time, read back as [`CachedFamily`]
//! and [`Invalidator`] values.

use std::time::Duration;

use super::matching::{pattern_matches, tag_matches};
use crate::__private::{InvalidationSite, Site};

/// One attributed function, as the macro registered it.
#[doc(hidden)]
pub enum Registration {
    /// A `#[cached]` function.
    Cached(&'static Site),
    /// An `#[invalidates]` function.
    Invalidates(&'static InvalidationSite),
}

inventory::collect!(Registration);

/// A `#[cached]` function: one key family.
///
/// ```standalone_crate
/// use cachemacro_runtime::{cached, registry};
///
/// #[cached(key = "user:<id>", ttl = "1h")]
/// async fn user(id: u64) -> String {
///     format!("user {id}")
/// }
///
/// let family = registry::cached_families()
///     .find(|f| f.function().ends_with("::user"))
///     .unwrap();
/// assert_eq!(family.template(), "user:<id>");
/// assert_eq!(family.ttl().as_secs(), 3600);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CachedFamily {
    function: &'static str,
    template: &'static str,
    file: &'static str,
    line: u32,
    ttl: Duration,
    none_ttl: Option<Duration>,
    tags: &'static [&'static str],
}

impl CachedFamily {
    fn from_site(site: &'static Site) -> Self {
        CachedFamily {
            function: site.function,
            template: site.template,
            file: site.file,
            line: site.line,
            ttl: site.options.ttl,
            none_ttl: site.options.none_ttl,
            tags: site.tags,
        }
    }

    /// The function's path: `my_crate::users::user_collections`.
    pub fn function(&self) -> &'static str {
        self.function
    }

    /// The key template, as written: `user-collections:<user_id>`.
    pub fn template(&self) -> &'static str {
        self.template
    }

    /// The source file of the attribute, as `file!()` gives it.
    pub fn file(&self) -> &'static str {
        self.file
    }

    /// The line of the `#[cached]` attribute.
    pub fn line(&self) -> u32 {
        self.line
    }

    /// How long a value is kept.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// How long a `None` is kept, when it is (`none_ttl = "…"`).
    pub fn none_ttl(&self) -> Option<Duration> {
        self.none_ttl
    }

    /// The tag templates, as written: `["user:<user_id>"]`.
    pub fn tags(&self) -> &'static [&'static str] {
        self.tags
    }

    /// The longest an entry of this family can live: what the TTL warning
    /// compares with its threshold.
    pub(super) fn lifetime(&self) -> Duration {
        self.ttl.max(self.none_ttl.unwrap_or_default())
    }

    fn sort_key(&self) -> (&'static str, &'static str, u32, &'static str) {
        (self.function, self.file, self.line, self.template)
    }
}

/// An `#[invalidates]` function: the key patterns and tags it clears.
///
/// ```standalone_crate
/// use cachemacro_runtime::{cached, invalidates, registry};
///
/// #[cached(key = "user:<id>", ttl = "1h")]
/// async fn user(id: u64) -> String {
///     format!("user {id}")
/// }
///
/// #[invalidates("user:<id>")]
/// async fn rename_user(id: u64, name: &str) {}
///
/// let rename = registry::invalidators()
///     .find(|i| i.function().ends_with("::rename_user"))
///     .unwrap();
/// assert_eq!(rename.patterns(), ["user:<id>"]);
/// let user = registry::cached_families().find(|f| f.template() == "user:<id>").unwrap();
/// assert!(rename.clears(&user));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Invalidator {
    function: &'static str,
    file: &'static str,
    line: u32,
    patterns: &'static [&'static str],
    tags: &'static [&'static str],
    before: bool,
}

impl Invalidator {
    fn from_site(site: &'static InvalidationSite) -> Self {
        Invalidator {
            function: site.function,
            file: site.file,
            line: site.line,
            patterns: site.patterns,
            tags: site.tags,
            before: site.before,
        }
    }

    /// The function's path: `my_crate::collections::add_image_to_collection`.
    pub fn function(&self) -> &'static str {
        self.function
    }

    /// The source file of the attribute, as `file!()` gives it.
    pub fn file(&self) -> &'static str {
        self.file
    }

    /// The line of the `#[invalidates]` attribute.
    pub fn line(&self) -> u32 {
        self.line
    }

    /// The key patterns, as written; a trailing `*` clears a prefix.
    pub fn patterns(&self) -> &'static [&'static str] {
        self.patterns
    }

    /// The tag templates, as written.
    pub fn tags(&self) -> &'static [&'static str] {
        self.tags
    }

    /// Whether it also invalidates before its body runs (`before = true`).
    pub fn before(&self) -> bool {
        self.before
    }

    /// Whether one of its patterns or tags can clear entries of `family`.
    ///
    /// See the [module documentation](super#behavior) for how templates are
    /// compared.
    pub fn clears(&self, family: &CachedFamily) -> bool {
        self.patterns
            .iter()
            .any(|p| pattern_matches(p, family.template))
            || self
                .tags
                .iter()
                .any(|t| family.tags.iter().any(|c| tag_matches(t, c)))
    }

    fn sort_key(&self) -> (&'static str, &'static str, u32) {
        (self.function, self.file, self.line)
    }
}

/// Every `#[cached]` function linked into the program, sorted by function
/// path.
///
/// ```standalone_crate
/// use cachemacro_runtime::{cached, registry};
///
/// #[cached(key = "user:<id>", ttl = "1h")]
/// async fn user(id: u64) -> String {
///     format!("user {id}")
/// }
///
/// for family in registry::cached_families() {
///     println!("{} caches {} for {:?}", family.function(), family.template(), family.ttl());
/// }
/// ```
pub fn cached_families() -> impl Iterator<Item = CachedFamily> {
    let mut families: Vec<CachedFamily> = inventory::iter::<Registration>
        .into_iter()
        .filter_map(|r| match r {
            Registration::Cached(site) => Some(CachedFamily::from_site(site)),
            Registration::Invalidates(_) => None,
        })
        .collect();
    families.sort_by_key(CachedFamily::sort_key);
    // One registration per function item, generic or not; guard anyway.
    families.dedup();
    families.into_iter()
}

/// Every `#[invalidates]` function linked into the program, sorted by
/// function path.
///
/// ```standalone_crate
/// use cachemacro_runtime::{invalidates, registry};
///
/// #[invalidates("user:<id>", tag = "team:<team>")]
/// async fn rename_user(id: u64, team: u64, name: &str) {}
///
/// for invalidator in registry::invalidators() {
///     println!("{} clears {:?} and tags {:?}", invalidator.function(), invalidator.patterns(), invalidator.tags());
/// }
/// ```
pub fn invalidators() -> impl Iterator<Item = Invalidator> {
    let mut invalidators: Vec<Invalidator> = inventory::iter::<Registration>
        .into_iter()
        .filter_map(|r| match r {
            Registration::Invalidates(site) => Some(Invalidator::from_site(site)),
            Registration::Cached(_) => None,
        })
        .collect();
    invalidators.sort_by_key(Invalidator::sort_key);
    invalidators.dedup();
    invalidators.into_iter()
}

/// Families and invalidators built by hand: the checks and renderings are
/// tested on these rather than on what happens to be linked into the test
/// binary.
#[cfg(test)]
pub(super) mod fixtures {
    use super::*;

    /// A family declared at `src/lib.rs:1`.
    pub(in crate::registry) fn family(
        function: &'static str,
        template: &'static str,
        ttl_secs: u64,
    ) -> CachedFamily {
        CachedFamily {
            function,
            template,
            file: "src/lib.rs",
            line: 1,
            ttl: Duration::from_secs(ttl_secs),
            none_ttl: None,
            tags: &[],
        }
    }

    /// An invalidator declared at `src/lib.rs:2`.
    pub(in crate::registry) fn invalidator(
        function: &'static str,
        patterns: &'static [&'static str],
    ) -> Invalidator {
        Invalidator {
            function,
            file: "src/lib.rs",
            line: 2,
            patterns,
            tags: &[],
            before: false,
        }
    }

    impl CachedFamily {
        pub(in crate::registry) fn with_tags(self, tags: &'static [&'static str]) -> Self {
            CachedFamily { tags, ..self }
        }

        pub(in crate::registry) fn with_none_ttl(self, none_ttl: Duration) -> Self {
            CachedFamily {
                none_ttl: Some(none_ttl),
                ..self
            }
        }
    }

    impl Invalidator {
        pub(in crate::registry) fn with_tags(self, tags: &'static [&'static str]) -> Self {
            Invalidator { tags, ..self }
        }

        /// As with `before = true`.
        pub(in crate::registry) fn before_too(self) -> Self {
            Invalidator {
                before: true,
                ..self
            }
        }
    }
}
