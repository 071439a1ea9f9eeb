//! How the results of [`verify`](super::verify) read: a `- [ ]` checklist
//! naming each `function (file:line)`, so a failing test says what to fix.

use std::fmt::{self, Write as _};
use std::time::Duration;

use super::verify::{Problem, Report, VerifyError, Warning};

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
                site(f, family.function(), family.file(), family.line())?;
                write!(
                    f,
                    ": `{}` is kept for {} and no #[invalidates] clears it",
                    family.template(),
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
                site(
                    f,
                    invalidator.function(),
                    invalidator.file(),
                    invalidator.line(),
                )?;
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
                site(
                    f,
                    invalidator.function(),
                    invalidator.file(),
                    invalidator.line(),
                )?;
                write!(f, ": tag `{tag}` is on no cached function")?;
                match nearest {
                    Some(n) => write!(f, "; did you mean `{n}`?"),
                    None => Ok(()),
                }
            }
            Problem::KeyCollision { first, second } => {
                site(f, first.function(), first.file(), first.line())?;
                f.write_str(" and ")?;
                site(f, second.function(), second.file(), second.line())?;
                write!(
                    f,
                    ": keys `{}` and `{}` can be the same key, so one would be served the other's value",
                    first.template(),
                    second.template()
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

// By hand rather than derived: `verify().unwrap()` prints the error with
// `Debug`, and a failing wiring test should print the checklist, not the
// fields.
impl fmt::Debug for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// `1h30m`, `5m`, `500ms`: the form `ttl = "…"` takes, so a TTL in a
/// warning or in the invalidation map reads as it was written.
pub(super) fn format_duration(d: Duration) -> String {
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
    use super::*;
    use crate::registry::families::fixtures::{family, invalidator};
    use crate::registry::verify::Problem;

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
    fn debug_is_the_checklist_so_unwrap_reads_well() {
        let err = VerifyError {
            problems: vec![Problem::PatternMatchesNothing {
                invalidator: invalidator("app::add_image", &["user-collection:<user_id>"]),
                pattern: "user-collection:<user_id>",
                nearest: Some("user-collections:<user_id>"),
            }],
            report: Report {
                cached: 1,
                invalidators: 1,
                threshold: Duration::from_secs(600),
                warnings: vec![Warning::NotInvalidated(family(
                    "app::user_collections",
                    "user-collections:<user_id>",
                    3600,
                ))],
            },
        };
        let debug = format!("{err:?}");
        assert_eq!(debug, err.to_string());
        assert!(debug.contains(
            "`app::add_image` (src/lib.rs:2): pattern `user-collection:<user_id>` \
             clears no cached key; did you mean `user-collections:<user_id>`?"
        ));
        assert_eq!(format!("{err:#?}"), debug);
        for field in [
            "VerifyError",
            "problems:",
            "PatternMatchesNothing",
            "nearest:",
        ] {
            assert!(!debug.contains(field), "{field} in {debug}");
        }
        // What a failing `verify().unwrap()` prints.
        let verify = move || -> Result<Report, VerifyError> { Err(err) };
        let panic = std::panic::catch_unwind(|| verify().unwrap()).unwrap_err();
        let message = panic.downcast_ref::<String>().unwrap();
        assert!(
            message.contains("did you mean `user-collections:<user_id>`?"),
            "{message}"
        );
    }
}
