//! The wiring check: [`verify`] and what it returns.
//!
//! How the results read is in `checklist.rs`.

use std::time::Duration;

use super::families::{CachedFamily, Invalidator, cached_families, invalidators};
use super::matching::{Kind, Shape, nearest, pattern_matches, tag_matches};

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
/// Its `Display` is a checklist naming each `function (file:line)`. Its
/// `Debug` is the same checklist, not a dump of these fields, because
/// `verify().unwrap()` and `.expect(…)` print the error with `Debug`: a
/// failing wiring test then says what to fix.
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
#[derive(Clone, PartialEq, Eq)]
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
/// the [module documentation](super) for what it checks and where to put it.
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

/// [`verify_with`] over given families and invalidators (sorted, deduplicated).
fn check(
    families: &[CachedFamily],
    invalidators: &[Invalidator],
    threshold: Duration,
) -> Result<Report, VerifyError> {
    let mut problems = Vec::new();
    for inv in invalidators {
        for &pattern in inv.patterns() {
            if !families
                .iter()
                .any(|f| pattern_matches(pattern, f.template()))
            {
                let nearest = nearest(
                    pattern,
                    Kind::Pattern,
                    families.iter().map(|f| f.template()),
                );
                problems.push(Problem::PatternMatchesNothing {
                    invalidator: *inv,
                    pattern,
                    nearest,
                });
            }
        }
        for &tag in inv.tags() {
            let cached_tags = || families.iter().flat_map(|f| f.tags().iter().copied());
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
        .map(|f| Shape::parse(f.template(), Kind::Exact))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::families::fixtures::{family, invalidator};

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
        let cached = family("app::profile", "profile:<id>", 3600).with_tags(&["user:<user_id>"]);
        let typo = invalidator("app::rename", &[]).with_tags(&["usr:<user.id>"]);
        let err = check(&[cached], &[typo], DEFAULT_TTL_THRESHOLD).unwrap_err();
        assert_eq!(
            err.problems,
            [Problem::TagMatchesNothing {
                invalidator: typo,
                tag: "usr:<user.id>",
                nearest: Some("user:<user_id>"),
            }]
        );
        let fixed = typo.with_tags(&["user:<user.id>"]);
        assert!(check(&[cached], &[fixed], DEFAULT_TTL_THRESHOLD).is_ok());
    }

    #[test]
    fn none_ttl_counts_toward_the_threshold() {
        let cached =
            family("app::maybe", "maybe:<id>", 60).with_none_ttl(Duration::from_secs(3600));
        let report = check(&[cached], &[], DEFAULT_TTL_THRESHOLD).unwrap();
        assert_eq!(report.warnings, [Warning::NotInvalidated(cached)]);
    }
}
