//! The invalidation map: which write clears which read, as a Markdown table.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use super::checklist::format_duration;
use super::families::{CachedFamily, Invalidator, cached_families, invalidators};
use super::matching::{pattern_matches, tag_matches};

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

/// A template in a Markdown table cell: code, with `|` escaped.
fn code(text: &str) -> String {
    let text = text.replace('|', "\\|");
    if text.contains('`') {
        format!("`` {text} ``")
    } else {
        format!("`{text}`")
    }
}

/// Short names (last path segment) where no two functions share one.
fn short_names(
    families: &[CachedFamily],
    invalidators: &[Invalidator],
) -> BTreeMap<&'static str, &'static str> {
    let paths: BTreeSet<&'static str> = families
        .iter()
        .map(|f| f.function())
        .chain(invalidators.iter().map(|i| i.function()))
        .collect();
    let last = |p: &'static str| p.rsplit("::").next().unwrap_or(p);
    let mut uses: BTreeMap<&str, usize> = BTreeMap::new();
    for &p in &paths {
        *uses.entry(last(p)).or_default() += 1;
    }
    paths
        .into_iter()
        .map(|p| (p, if uses[last(p)] == 1 { last(p) } else { p }))
        .collect()
}

fn render_map(families: &[CachedFamily], invalidators: &[Invalidator]) -> String {
    let names = short_names(families, invalidators);
    let name = |p: &'static str| names.get(p).copied().unwrap_or(p);
    let mut out = String::from("| Action | Clears | Cached functions affected |\n|---|---|---|\n");
    for inv in invalidators {
        let mut clears = Vec::new();
        for &pattern in inv.patterns() {
            let mut cell = code(pattern);
            if !families
                .iter()
                .any(|f| pattern_matches(pattern, f.template()))
            {
                cell.push_str(" **(matches nothing)**");
            }
            clears.push(cell);
        }
        for &tag in inv.tags() {
            let mut cell = format!("tag {}", code(tag));
            if !families
                .iter()
                .any(|f| f.tags().iter().any(|c| tag_matches(tag, c)))
            {
                cell.push_str(" **(matches nothing)**");
            }
            clears.push(cell);
        }
        let affected: Vec<String> = families
            .iter()
            .filter(|f| inv.clears(f))
            .map(|f| format!("{} ({})", code(name(f.function())), code(f.template())))
            .collect();
        let affected = if affected.is_empty() {
            "none".to_owned()
        } else {
            affected.join(", ")
        };
        let when = if inv.before() {
            " (before and after)"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "| {}{when} | {} | {affected} |",
            code(name(inv.function())),
            clears.join(", ")
        );
    }
    let lonely: Vec<&CachedFamily> = families
        .iter()
        .filter(|f| !invalidators.iter().any(|i| i.clears(f)))
        .collect();
    if lonely.is_empty() {
        out.push_str("\nEvery cached function is cleared by some `#[invalidates]`.\n");
    } else {
        out.push_str(
            "\nCached functions nothing invalidates (they expire by TTL only):\n\n\
             | Cached function | Key | TTL |\n|---|---|---|\n",
        );
        for f in lonely {
            let mut ttl = format_duration(f.ttl());
            if let Some(none_ttl) = f.none_ttl() {
                let _ = write!(ttl, " (`None`: {})", format_duration(none_ttl));
            }
            let _ = writeln!(
                out,
                "| {} | {} | {ttl} |",
                code(name(f.function())),
                code(f.template())
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::families::fixtures::{family, invalidator};

    #[test]
    fn map_uses_short_names_unless_ambiguous() {
        let families = [
            family("app::sets::get", "set:<id>", 3600),
            family("app::users::get", "user:<id>", 3600),
            family("app::users::list", "users:<page>", 60),
        ];
        let invalidators =
            [invalidator("app::sets::delete", &["set:<set.id>", "sets:*"]).before_too()];
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
}
