//! The registry: every `#[cached]` and `#[invalidates]` in the program,
//! collected at link time, so that the wiring between writes and reads can
//! be printed and checked.
//!
//! Each attributed function registers its path, key template, tags, TTL and
//! `file:line` as static data when the program is linked: nothing runs at
//! startup and nothing is registered by calling the function.
//!
//! ## The wiring check
//!
//! Add one test to the crate that defines your cached functions:
//!
//! ```rust,standalone_crate
//! #[test]
//! fn cache_wiring() { cachemacro_runtime::registry::verify().unwrap(); }
//! # fn main() { cachemacro_runtime::registry::verify().unwrap(); }
//! ```
//!
//! [`verify`] fails, naming each `function (file:line)`, when
//!
//! * an `#[invalidates]` key pattern can clear no key that any `#[cached]`
//!   function builds, or an invalidated tag is carried by no `#[cached]`
//!   function: a typo such as `user-collection:<user_id>` for
//!   `user-collections:<user_id>` would otherwise serve stale data until the
//!   TTL runs out;
//! * two different `#[cached]` functions can build the same key: one would be
//!   served the other's value.
//!
//! It also lists, as warnings (in the [`Report`], and in the
//! [`VerifyError`] when there are errors too), every cached function that
//! nothing invalidates and whose TTL is longer than
//! [`DEFAULT_TTL_THRESHOLD`] (10 minutes): short-lived entries are often
//! meant to expire by time alone, an hour-long one rarely is. Choose your own
//! threshold with [`verify_with`].
//!
//! Put the test in the crate that defines the functions, as a unit test (in
//! `src/lib.rs` or `src/main.rs`): the registry holds what is linked into the
//! test binary, and a unit test links all of its crate, while a file under
//! `tests/` that calls nothing from the library links none of it. When reads
//! and writes live in different crates, put it in a crate that uses both.
//!
//! ## Behavior
//!
//! Templates are compared as the sets of keys they can build, not as text:
//!
//! * Placeholder names do not matter: `set:<set.id>` clears `set:<set_id>`.
//! * A placeholder stands for any encoded value: any run of ASCII letters,
//!   digits, `.`, `_`, `-`, `~` and `%` (escapes), possibly empty, and never
//!   a `:` or any other character the encoding escapes. A `<name:hash>` is
//!   exactly 16 lowercase hex digits.
//! * Every other character, `{`, `}` and `?` included, is itself.
//! * A pattern without `*` must build a whole key: `user:<id>` does not clear
//!   `user:<id>:profile`. A trailing `*` clears every key that starts with
//!   the rest: `user:<id>*` does.
//! * Tags match the same way, whole tag against whole tag.
//!
//! A placeholder is assumed to hold any encoded value, whatever its
//! parameter's type. So a pattern counts as matching a family when some
//! values would make it clear one of its keys, and two families collide when
//! some values would make their keys equal: `user:<id>` and `user:me`
//! collide, since `<id>` could be the string `me`; give one of them a prefix
//! of its own. Which [`Cache`](crate::Cache) each function uses (`cache =
//! …`) is not compared, only keys and tags.
//!
//! ## The invalidation map
//!
//! [`invalidation_map`] prints which write clears which read, as a Markdown
//! table to commit next to the code and review in diffs.

// The `#[test]` above is the line users copy; a hidden `main` runs the call.
#![allow(clippy::test_attr_in_doctest)]

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{self, Write as _};
use std::time::Duration;

use crate::__private::{InvalidationSite, Site};

mod map;
mod matching;

use map::render_map;
use matching::{Kind, Shape, nearest, pattern_matches, tag_matches};

/// One attributed function, as the macro registered it.
#[doc(hidden)]
pub enum Registration {
    /// A `#[cached]` function.
    Cached(&'static Site),
    /// An `#[invalidates]` function.
    Invalidates(&'static InvalidationSite),
}

inventory::collect!(Registration);

/// The TTL above which [`verify`] warns about a cached function that nothing
/// invalidates: 10 minutes.
///
/// Entries that live a few minutes (a search page, an explore feed) are
/// often meant to go stale and expire by time alone; an entry kept for an
/// hour without any write clearing it is usually an invalidation someone
/// forgot.
///
/// ```standalone_crate
/// use std::time::Duration;
/// use cachemacro_runtime::registry::DEFAULT_TTL_THRESHOLD;
///
/// assert_eq!(DEFAULT_TTL_THRESHOLD, Duration::from_secs(600));
/// ```
pub const DEFAULT_TTL_THRESHOLD: Duration = Duration::from_secs(10 * 60);

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
            ttl: site.ttl,
            none_ttl: site.none_ttl,
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

    /// The longest an entry of this family can live.
    fn lifetime(&self) -> Duration {
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
    /// See the [module documentation](self#behavior) for how templates are
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

/// Something [`verify`] advises looking at; not an error.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Warning {
    /// A family cached for longer than the threshold that no pattern or tag
    /// of any `#[invalidates]` clears: a write may leave it stale for its
    /// whole TTL.
    NotInvalidated(CachedFamily),
}

/// A wiring mistake that [`verify`] reports as an error.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    /// A key pattern that can clear no key of any `#[cached]` function.
    #[non_exhaustive]
    PatternMatchesNothing {
        /// The function with the pattern.
        invalidator: Invalidator,
        /// The pattern, as written.
        pattern: &'static str,
        /// The cached key template closest to it, if one is close.
        nearest: Option<&'static str>,
    },
    /// An invalidated tag that no `#[cached]` function carries.
    #[non_exhaustive]
    TagMatchesNothing {
        /// The function with the tag.
        invalidator: Invalidator,
        /// The tag template, as written.
        tag: &'static str,
        /// The cached tag template closest to it, if one is close.
        nearest: Option<&'static str>,
    },
    /// Two `#[cached]` functions whose templates can build the same key: a
    /// value stored by one would be served by the other.
    #[non_exhaustive]
    KeyCollision {
        /// The first function, in path order.
        first: CachedFamily,
        /// The second function.
        second: CachedFamily,
    },
}

/// What [`verify`] found when nothing was wrong enough to fail.
///
/// Its `Display` is a checklist of the warnings.
///
/// ```standalone_crate
/// let report = cachemacro_runtime::registry::verify().unwrap();
/// for warning in &report.warnings {
///     println!("{warning:?}");
/// }
/// println!("{report}");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Report {
    /// How many `#[cached]` functions were checked.
    pub cached: usize,
    /// How many `#[invalidates]` functions were checked.
    pub invalidators: usize,
    /// The TTL above which a family nothing invalidates is a warning.
    pub threshold: Duration,
    /// Families to look at, sorted by function path.
    pub warnings: Vec<Warning>,
}

/// What [`verify`] found wrong: errors, plus the warnings of the [`Report`].
///
/// Its `Display` is a checklist naming each `function (file:line)`, so a
/// failing `verify().unwrap()` prints what to fix.
///
/// ```standalone_crate
/// use cachemacro_runtime::registry::{self, Problem};
///
/// match registry::verify() {
///     Ok(report) => println!("{report}"),
///     Err(e) => {
///         for problem in &e.problems {
///             if let Problem::PatternMatchesNothing { invalidator, pattern, .. } = problem {
///                 eprintln!("{} clears nothing with {pattern}", invalidator.function());
///             }
///         }
///         eprintln!("{} warnings", e.report.warnings.len());
///     }
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifyError {
    /// The errors: patterns and tags that match nothing, then collisions,
    /// each in function path order.
    pub problems: Vec<Problem>,
    /// The counts and warnings, as [`verify`] would have returned them.
    pub report: Report,
}

impl std::error::Error for VerifyError {}

/// Checks the wiring of every `#[cached]` and `#[invalidates]` linked into
/// the program, with [`DEFAULT_TTL_THRESHOLD`] (10 minutes) for warnings.
///
/// Meant for a one-line test in the crate that defines the functions; see
/// the [module documentation](self) for what it checks and where to put it.
///
/// ```standalone_crate
/// use cachemacro_runtime::{cached, invalidates, registry};
///
/// #[cached(key = "user-collections:<user_id>", ttl = "1h")]
/// async fn user_collections(user_id: u64) -> Vec<u64> {
///     vec![]
/// }
///
/// #[invalidates("user-collection:<user_id>")] // a typo: one `s` short
/// async fn add_image_to_collection(user_id: u64, image_id: u64) {}
///
/// let err = registry::verify().unwrap_err();
/// let text = err.to_string();
/// assert!(text.contains("pattern `user-collection:<user_id>` clears no cached key"));
/// assert!(text.contains("did you mean `user-collections:<user_id>`?"));
/// // Nothing else clears `user_collections` either, and it lives an hour:
/// assert_eq!(err.report.warnings.len(), 1);
/// ```
pub fn verify() -> Result<Report, VerifyError> {
    verify_with(DEFAULT_TTL_THRESHOLD)
}

/// [`verify`], warning about families nothing invalidates only when their
/// TTL (or `none_ttl`, if longer) is over `threshold`.
///
/// `Duration::ZERO` warns about every family nothing invalidates;
/// `Duration::MAX` about none.
///
/// ```standalone_crate
/// use std::time::Duration;
/// use cachemacro_runtime::{cached, registry};
///
/// #[cached(key = "explore:<page>", ttl = "5m")]
/// async fn explore(page: u32) -> Vec<u64> {
///     vec![]
/// }
///
/// // Five minutes is under the default threshold: expiring by time is the plan.
/// assert!(registry::verify().unwrap().warnings.is_empty());
/// // Stricter: every family must be invalidated by some write.
/// assert_eq!(registry::verify_with(Duration::ZERO).unwrap().warnings.len(), 1);
/// ```
pub fn verify_with(threshold: Duration) -> Result<Report, VerifyError> {
    let families: Vec<CachedFamily> = cached_families().collect();
    let invalidators: Vec<Invalidator> = invalidators().collect();
    check(&families, &invalidators, threshold)
}

/// Which write clears which read, as a Markdown table to commit and diff.
///
/// One row per `#[invalidates]` function, sorted by path: the patterns and
/// tags it clears (marked when one matches nothing) and the `#[cached]`
/// functions whose entries they can clear. Then the cached functions that
/// nothing invalidates, with their TTL. Functions are named by their last
/// path segment unless two share it. File and line numbers are left out, so
/// the text changes only when the wiring does.
///
/// ```standalone_crate
/// use cachemacro_runtime::{cached, invalidates, registry};
///
/// #[cached(key = "user-collections:<user_id>", ttl = "1h")]
/// async fn user_collections(user_id: u64) -> Vec<u64> {
///     vec![]
/// }
///
/// #[invalidates("user-collections:<user_id>")]
/// async fn add_image_to_collection(user_id: u64, image_id: u64) {}
///
/// assert_eq!(
///     registry::invalidation_map(),
///     "\
/// | Action | Clears | Cached functions affected |
/// |---|---|---|
/// | `add_image_to_collection` | `user-collections:<user_id>` | `user_collections` (`user-collections:<user_id>`) |
///
/// Every cached function is cleared by some `#[invalidates]`.
/// "
/// );
/// ```
pub fn invalidation_map() -> String {
    let families: Vec<CachedFamily> = cached_families().collect();
    let invalidators: Vec<Invalidator> = invalidators().collect();
    render_map(&families, &invalidators)
}

// ---------------------------------------------------------------------------
// Checking

/// [`verify_with`] over given families and invalidators (sorted, deduplicated).
fn check(
    families: &[CachedFamily],
    invalidators: &[Invalidator],
    threshold: Duration,
) -> Result<Report, VerifyError> {
    let mut problems = Vec::new();
    for inv in invalidators {
        for &pattern in inv.patterns {
            if !families
                .iter()
                .any(|f| pattern_matches(pattern, f.template))
            {
                let nearest = nearest(pattern, Kind::Pattern, families.iter().map(|f| f.template));
                problems.push(Problem::PatternMatchesNothing {
                    invalidator: *inv,
                    pattern,
                    nearest,
                });
            }
        }
        for &tag in inv.tags {
            let cached_tags = || families.iter().flat_map(|f| f.tags.iter().copied());
            if !cached_tags().any(|c| tag_matches(tag, c)) {
                let nearest = nearest(tag, Kind::Exact, cached_tags());
                problems.push(Problem::TagMatchesNothing {
                    invalidator: *inv,
                    tag,
                    nearest,
                });
            }
        }
    }
    let shapes: Vec<Shape> = families
        .iter()
        .map(|f| Shape::parse(f.template, Kind::Exact))
        .collect();
    for (i, first) in families.iter().enumerate() {
        for (j, second) in families.iter().enumerate().skip(i + 1) {
            if shapes[i].intersects(&shapes[j]) {
                problems.push(Problem::KeyCollision {
                    first: *first,
                    second: *second,
                });
            }
        }
    }
    let warnings = families
        .iter()
        .filter(|f| f.lifetime() > threshold && !invalidators.iter().any(|i| i.clears(f)))
        .map(|f| Warning::NotInvalidated(*f))
        .collect();
    let report = Report {
        cached: families.len(),
        invalidators: invalidators.len(),
        threshold,
        warnings,
    };
    if problems.is_empty() {
        Ok(report)
    } else {
        Err(VerifyError { problems, report })
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `` `path::to::f` (src/lib.rs:12) ``
fn site(f: &mut fmt::Formatter<'_>, function: &str, file: &str, line: u32) -> fmt::Result {
    write!(f, "`{function}` ({file}:{line})")
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Warning::NotInvalidated(family) => {
                site(f, family.function, family.file, family.line)?;
                write!(
                    f,
                    ": `{}` is kept for {} and no #[invalidates] clears it",
                    family.template,
                    format_duration(family.lifetime())
                )
            }
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::PatternMatchesNothing {
                invalidator,
                pattern,
                nearest,
            } => {
                site(f, invalidator.function, invalidator.file, invalidator.line)?;
                write!(f, ": pattern `{pattern}` clears no cached key")?;
                match nearest {
                    Some(n) => write!(f, "; did you mean `{n}`?"),
                    None => Ok(()),
                }
            }
            Problem::TagMatchesNothing {
                invalidator,
                tag,
                nearest,
            } => {
                site(f, invalidator.function, invalidator.file, invalidator.line)?;
                write!(f, ": tag `{tag}` is on no cached function")?;
                match nearest {
                    Some(n) => write!(f, "; did you mean `{n}`?"),
                    None => Ok(()),
                }
            }
            Problem::KeyCollision { first, second } => {
                site(f, first.function, first.file, first.line)?;
                f.write_str(" and ")?;
                site(f, second.function, second.file, second.line)?;
                write!(
                    f,
                    ": keys `{}` and `{}` can be the same key, so one would be served the other's value",
                    first.template, second.template
                )
            }
        }
    }
}

/// The warnings section shared by [`Report`] and [`VerifyError`].
fn write_warnings(f: &mut fmt::Formatter<'_>, report: &Report) -> fmt::Result {
    if report.warnings.is_empty() {
        return Ok(());
    }
    write!(
        f,
        "\n\nwarnings: cached for more than {} and cleared by no #[invalidates]:",
        format_duration(report.threshold)
    )?;
    for warning in &report.warnings {
        write!(f, "\n- [ ] {warning}")?;
    }
    Ok(())
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cache wiring ok: {}, {}, {}",
            plural(self.cached, "cached function", "cached functions"),
            plural(
                self.invalidators,
                "invalidating function",
                "invalidating functions"
            ),
            plural(self.warnings.len(), "warning", "warnings"),
        )?;
        write_warnings(f, self)
    }
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cache wiring is broken: {}, {} ({}, {})\n\nerrors:",
            plural(self.problems.len(), "error", "errors"),
            plural(self.report.warnings.len(), "warning", "warnings"),
            plural(self.report.cached, "cached function", "cached functions"),
            plural(
                self.report.invalidators,
                "invalidating function",
                "invalidating functions"
            ),
        )?;
        for problem in &self.problems {
            write!(f, "\n- [ ] {problem}")?;
        }
        write_warnings(f, &self.report)
    }
}

/// `1h30m`, `5m`, `500ms`: the form `ttl = "…"` takes.
fn format_duration(d: Duration) -> String {
    if d == Duration::MAX {
        return "forever".into();
    }
    let ms = d.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    let parts = [
        (ms / 3_600_000, "h"),
        (ms / 60_000 % 60, "m"),
        (ms / 1000 % 60, "s"),
        (ms % 1000, "ms"),
    ];
    let mut out = String::new();
    for (n, unit) in parts {
        if n > 0 {
            let _ = write!(out, "{n}{unit}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::map::*;
    use super::matching::*;
    use super::*;

    fn family(function: &'static str, template: &'static str, ttl: u64) -> CachedFamily {
        CachedFamily {
            function,
            template,
            file: "src/lib.rs",
            line: 1,
            ttl: Duration::from_secs(ttl),
            none_ttl: None,
            tags: &[],
        }
    }

    fn invalidator(function: &'static str, patterns: &'static [&'static str]) -> Invalidator {
        Invalidator {
            function,
            file: "src/lib.rs",
            line: 2,
            patterns,
            tags: &[],
            before: false,
        }
    }

    #[test]
    fn prefix_pattern_matches_every_filter_variant() {
        assert!(pattern_matches(
            "sets:user:<set.user_id>:*",
            "sets:user:<user_id>:<prompt>:<model>"
        ));
        assert!(pattern_matches(
            "sets:user:*",
            "sets:user:<user_id>:<prompt>:<model>"
        ));
        assert!(pattern_matches("sets:*", "sets:user:<user_id>"));
        assert!(pattern_matches("*", "anything:<x>"));
    }

    #[test]
    fn a_typo_matches_nothing() {
        assert!(!pattern_matches(
            "user-collection:<user_id>",
            "user-collections:<user_id>"
        ));
        assert!(!pattern_matches(
            "set:user:<id>:*",
            "sets:user:<user_id>:<prompt>:<model>"
        ));
        assert!(!pattern_matches(
            "sets:users:<id>:*",
            "sets:user:<user_id>:<prompt>"
        ));
    }

    #[test]
    fn exact_pattern_matches_whole_keys_only() {
        assert!(!pattern_matches("user:<id>", "user:<id>:profile"));
        assert!(pattern_matches("user:<id>*", "user:<id>:profile"));
        assert!(pattern_matches("user:<id>:*", "user:<id>:profile"));
        // A value never contains `:`, so it cannot swallow the rest of the key.
        assert!(!pattern_matches("user:<id>", "user:<a>:<b>"));
        assert!(!pattern_matches("user:<id>:profile", "user:<id>"));
    }

    #[test]
    fn placeholder_names_do_not_matter() {
        assert!(pattern_matches("set:<id>", "set:<set_id>"));
        assert!(pattern_matches("set:<set.id>", "set:<id>"));
        assert!(pattern_matches("user:<user.profile.id>:x", "user:<uid>:x"));
    }

    #[test]
    fn placeholders_meet_literals() {
        // `<id>` may be `me`: the pattern can clear that key.
        assert!(pattern_matches("user:<id>", "user:me"));
        assert!(pattern_matches("user:me", "user:<id>"));
        assert!(pattern_matches("user:<id>", "user:"));
        assert!(pattern_matches("page:<a>-<b>", "page:<n>"));
        assert!(pattern_matches("page:<n>", "page:<a>-<b>"));
        // `~` (None) and `%XX` escapes are value characters.
        assert!(pattern_matches("f:~", "f:<filter>"));
        assert!(pattern_matches("f:a%3Ab", "f:<filter>"));
        // A `:` or `/` is never inside a value.
        assert!(!pattern_matches("f:a:b", "f:<filter>"));
        assert!(!pattern_matches("f:a/b", "f:<filter>"));
    }

    #[test]
    fn hash_placeholders_are_sixteen_hex_digits() {
        assert!(pattern_matches("search:<q:hash>", "search:<filters:hash>"));
        assert!(pattern_matches("search:<q>", "search:<filters:hash>"));
        assert!(pattern_matches(
            "search:0123456789abcdef",
            "search:<q:hash>"
        ));
        assert!(!pattern_matches(
            "search:0123456789ABCDEF",
            "search:<q:hash>"
        ));
        assert!(!pattern_matches(
            "search:0123456789abcde",
            "search:<q:hash>"
        ));
        assert!(!pattern_matches("search:latest", "search:<q:hash>"));
        assert!(pattern_matches("search:0123*", "search:<q:hash>:<page>"));
        assert!(!pattern_matches(
            "search:<q:hash>:<p:hash>",
            "search:<q:hash>"
        ));
    }

    #[test]
    fn braces_and_question_marks_are_literal() {
        assert!(pattern_matches("user:{<user_id>}:*", "user:{<id>}:feed"));
        assert!(!pattern_matches("user:<user_id>:*", "user:{<id>}:feed"));
        assert!(pattern_matches(
            "explore?q=<q>&page=<p>",
            "explore?q=<query>&page=<page>"
        ));
        assert!(!pattern_matches("explore?q=<q>", "explore-q=<q>"));
    }

    #[test]
    fn tags_match_whole_tags() {
        assert!(tag_matches("user:<user.id>", "user:<user_id>"));
        assert!(tag_matches("feed", "feed"));
        assert!(!tag_matches("user", "user:<user_id>"));
        assert!(!tag_matches("users:<id>", "user:<user_id>"));
        // `*` is literal in a tag.
        assert!(!tag_matches("user:*", "user:<user_id>"));
    }

    #[test]
    fn malformed_text_is_literal() {
        assert_eq!(Shape::parse("a<b", Kind::Exact).tokens.len(), 3);
        assert!(pattern_matches("a<b", "a<b"));
        assert!(!pattern_matches("a<b", "a<x>"));
        assert!(pattern_matches("a>b", "a>b"));
    }

    #[test]
    fn distance_finds_the_typo() {
        let d = |a, b| Shape::parse(a, Kind::Pattern).distance(&Shape::parse(b, Kind::Exact));
        assert_eq!(d("user-collection:<user_id>", "user-collections:<id>"), 1);
        assert_eq!(
            d("set:user:<id>:*", "sets:user:<user_id>:<prompt>:<model>"),
            1
        );
        assert_eq!(d("abc", "abc"), 0);
        assert_eq!(d("", "abc"), 3);
    }

    #[test]
    fn durations_read_like_ttl_arguments() {
        assert_eq!(format_duration(Duration::from_secs(3600)), "1h");
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(format_duration(Duration::from_secs(300)), "5m");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1s500ms");
        assert_eq!(format_duration(Duration::ZERO), "0s");
        assert_eq!(format_duration(Duration::from_secs(90_000)), "25h");
    }

    #[test]
    fn check_reports_typos_collisions_and_forgotten_families() {
        let families = [
            family("app::a_user", "user:<id>", 3600),
            family("app::b_user_by_name", "user:<name>", 60),
            family("app::explore", "explore:<page>", 300),
            family("app::user_collections", "user-collections:<user_id>", 3600),
        ];
        let invalidators = [invalidator(
            "app::add_image",
            &["user-collection:<user_id>"],
        )];
        let err = check(&families, &invalidators, DEFAULT_TTL_THRESHOLD).unwrap_err();
        assert_eq!(
            err.problems,
            [
                Problem::PatternMatchesNothing {
                    invalidator: invalidators[0],
                    pattern: "user-collection:<user_id>",
                    nearest: Some("user-collections:<user_id>"),
                },
                Problem::KeyCollision {
                    first: families[0],
                    second: families[1],
                },
            ]
        );
        assert_eq!(
            err.report.warnings,
            [
                Warning::NotInvalidated(families[0]),
                Warning::NotInvalidated(families[3]),
            ]
        );
        assert_eq!(
            err.to_string(),
            "\
cache wiring is broken: 2 errors, 2 warnings (4 cached functions, 1 invalidating function)

errors:
- [ ] `app::add_image` (src/lib.rs:2): pattern `user-collection:<user_id>` clears no cached key; did you mean `user-collections:<user_id>`?
- [ ] `app::a_user` (src/lib.rs:1) and `app::b_user_by_name` (src/lib.rs:1): keys `user:<id>` and `user:<name>` can be the same key, so one would be served the other's value

warnings: cached for more than 10m and cleared by no #[invalidates]:
- [ ] `app::a_user` (src/lib.rs:1): `user:<id>` is kept for 1h and no #[invalidates] clears it
- [ ] `app::user_collections` (src/lib.rs:1): `user-collections:<user_id>` is kept for 1h and no #[invalidates] clears it"
        );
    }

    #[test]
    fn check_passes_a_correct_wiring() {
        let families = [
            family("app::user_collections", "user-collections:<user_id>", 3600),
            family("app::explore", "explore:<page>", 300),
        ];
        let invalidators = [invalidator(
            "app::add_image",
            &["user-collections:<user_id>"],
        )];
        let report = check(&families, &invalidators, DEFAULT_TTL_THRESHOLD).unwrap();
        assert!(report.warnings.is_empty());
        assert_eq!(
            report.to_string(),
            "cache wiring ok: 2 cached functions, 1 invalidating function, 0 warnings"
        );
        let strict = check(&families, &invalidators, Duration::ZERO).unwrap();
        assert_eq!(strict.warnings, [Warning::NotInvalidated(families[1])]);
    }

    #[test]
    fn unmatched_tags_are_errors() {
        let mut cached = family("app::profile", "profile:<id>", 3600);
        cached.tags = &["user:<user_id>"];
        let mut inv = invalidator("app::rename", &[]);
        inv.tags = &["usr:<user.id>"];
        let err = check(&[cached], &[inv], DEFAULT_TTL_THRESHOLD).unwrap_err();
        assert_eq!(
            err.problems,
            [Problem::TagMatchesNothing {
                invalidator: inv,
                tag: "usr:<user.id>",
                nearest: Some("user:<user_id>"),
            }]
        );
        inv.tags = &["user:<user.id>"];
        assert!(check(&[cached], &[inv], DEFAULT_TTL_THRESHOLD).is_ok());
    }

    #[test]
    fn none_ttl_counts_toward_the_threshold() {
        let mut cached = family("app::maybe", "maybe:<id>", 60);
        cached.none_ttl = Some(Duration::from_secs(3600));
        let report = check(&[cached], &[], DEFAULT_TTL_THRESHOLD).unwrap();
        assert_eq!(report.warnings, [Warning::NotInvalidated(cached)]);
    }

    #[test]
    fn map_uses_short_names_unless_ambiguous() {
        let families = [
            family("app::sets::get", "set:<id>", 3600),
            family("app::users::get", "user:<id>", 3600),
            family("app::users::list", "users:<page>", 60),
        ];
        let mut delete = invalidator("app::sets::delete", &["set:<set.id>", "sets:*"]);
        delete.before = true;
        let invalidators = [delete];
        assert_eq!(
            render_map(&families, &invalidators),
            "\
| Action | Clears | Cached functions affected |
|---|---|---|
| `delete` (before and after) | `set:<set.id>`, `sets:*` **(matches nothing)** | `app::sets::get` (`set:<id>`) |

Cached functions nothing invalidates (they expire by TTL only):

| Cached function | Key | TTL |
|---|---|---|
| `app::users::get` | `user:<id>` | 1h |
| `list` | `users:<page>` | 1m |
"
        );
    }

    #[test]
    fn map_cells_escape_pipes_and_backticks() {
        assert_eq!(code("a|b"), "`a\\|b`");
        assert_eq!(code("a`b"), "`` a`b ``");
    }

    mod properties {
        use super::super::matching::*;
        use proptest::prelude::*;

        /// A concrete key, matched against a template by backtracking: an
        /// independent reference for `intersects`.
        fn builds(tokens: &[Token], key: &str, prefix: bool) -> bool {
            match tokens.split_first() {
                None => prefix || key.is_empty(),
                Some((Token::Lit(c), rest)) => key
                    .strip_prefix(*c)
                    .is_some_and(|key| builds(rest, key, prefix)),
                Some((Token::Value, rest)) => (0..=key.len())
                    .take_while(|&n| key[..n].chars().all(is_value_char))
                    .any(|n| builds(rest, &key[n..], prefix)),
                Some((Token::Hash, rest)) => {
                    key.len() >= 16
                        && key[..16].chars().all(is_hash_char)
                        && builds(rest, &key[16..], prefix)
                }
            }
        }

        fn template_text(tokens: &[Token]) -> String {
            tokens
                .iter()
                .map(|t| match t {
                    Token::Lit(c) => c.to_string(),
                    Token::Value => "<v>".into(),
                    Token::Hash => "<h:hash>".into(),
                })
                .collect()
        }

        fn small_token() -> impl Strategy<Value = Token> {
            prop_oneof![
                Just(Token::Lit('a')),
                Just(Token::Lit('b')),
                Just(Token::Lit(':')),
                Just(Token::Value),
            ]
        }

        fn token() -> impl Strategy<Value = Token> {
            prop_oneof![
                3 => "[a-z0-9:{}?~%-]".prop_map(|s| Token::Lit(s.chars().next().unwrap())),
                2 => Just(Token::Value),
                1 => Just(Token::Hash),
            ]
        }

        /// Every key over `{a, b, :}` with values of up to 3 characters.
        fn all_keys(tokens: &[Token]) -> Vec<String> {
            let values = [
                "", "a", "b", "aa", "ab", "ba", "bb", "aaa", "aab", "aba", "abb", "baa", "bab",
                "bba", "bbb",
            ];
            let mut keys = vec![String::new()];
            for token in tokens {
                keys = match *token {
                    Token::Lit(c) => keys.into_iter().map(|k| format!("{k}{c}")).collect(),
                    _ => keys
                        .into_iter()
                        .flat_map(|k| values.iter().map(move |v| format!("{k}{v}")))
                        .collect(),
                };
            }
            keys
        }

        proptest! {
            /// On small templates, `intersects` agrees with trying every key.
            #[test]
            fn agrees_with_brute_force(
                pattern in proptest::collection::vec(small_token(), 0..4),
                key in proptest::collection::vec(small_token(), 0..4),
                prefix in any::<bool>(),
            ) {
                let p = Shape { tokens: pattern.clone(), prefix };
                let k = Shape { tokens: key.clone(), prefix: false };
                let brute = all_keys(&key).iter().any(|s| builds(&pattern, s, prefix));
                prop_assert_eq!(p.intersects(&k), brute, "{:?} vs {:?}", pattern, key);
            }

            /// A pattern written from a real key of a template (some of its
            /// values turned back into placeholders, maybe cut short with
            /// `*`) always matches that template.
            #[test]
            fn patterns_of_real_keys_match(
                template in proptest::collection::vec(token(), 0..8),
                values in proptest::collection::vec("[a-zA-Z0-9._~%-]{0,5}", 8),
                hashes in proptest::collection::vec("[0-9a-f]{16}", 8),
                holes in proptest::collection::vec((0..40usize, 0..6usize), 0..3),
                cut in proptest::option::of(0..40usize),
            ) {
                // The key, and for each character whether it came from a value.
                let mut key: Vec<(char, bool)> = Vec::new();
                for (i, token) in template.iter().enumerate() {
                    match token {
                        Token::Lit(c) => key.push((*c, false)),
                        Token::Value => key.extend(values[i].chars().map(|c| (c, true))),
                        Token::Hash => key.extend(hashes[i].chars().map(|c| (c, true))),
                    }
                }
                // Turn runs of value characters back into placeholders.
                let mut pattern = Vec::new();
                let mut at = 0;
                let mut holes = holes.into_iter();
                let mut next_hole = holes.next();
                while at < key.len() {
                    if let Some((start, len)) = next_hole {
                        if at >= start % (key.len() + 1) && key[at].1 {
                            let run = key[at..]
                                .iter()
                                .take(len)
                                .take_while(|(c, _)| is_value_char(*c))
                                .count();
                            pattern.push(Token::Value);
                            at += run;
                            next_hole = holes.next();
                            continue;
                        }
                    }
                    pattern.push(Token::Lit(key[at].0));
                    at += 1;
                }
                let prefix = cut.is_some();
                if let Some(cut) = cut {
                    pattern.truncate(cut % (pattern.len() + 1));
                }
                let p = Shape { tokens: pattern.clone(), prefix };
                let k = Shape::parse(&template_text(&template), Kind::Exact);
                prop_assert_eq!(&k.tokens, &template);
                let (shown, of) = (template_text(&pattern), template_text(&template));
                prop_assert!(p.intersects(&k), "{} vs {}", shown, of);
            }

            /// Matching is symmetric for whole keys, and every template
            /// matches itself.
            #[test]
            fn exact_matching_is_symmetric(
                a in proptest::collection::vec(token(), 0..6),
                b in proptest::collection::vec(token(), 0..6),
            ) {
                let a = Shape { tokens: a, prefix: false };
                let b = Shape { tokens: b, prefix: false };
                prop_assert_eq!(a.intersects(&b), b.intersects(&a));
                prop_assert!(a.intersects(&a));
            }
        }
    }
}
