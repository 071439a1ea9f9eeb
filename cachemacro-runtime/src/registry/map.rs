//! The invalidation map: which write clears which read, as a Markdown table.

use super::*;

/// A template in a Markdown table cell: code, with `|` escaped.
pub(super) fn code(text: &str) -> String {
    let text = text.replace('|', "\\|");
    if text.contains('`') {
        format!("`` {text} ``")
    } else {
        format!("`{text}`")
    }
}

/// Short names (last path segment) where no two functions share one.
pub(super) fn short_names(
    families: &[CachedFamily],
    invalidators: &[Invalidator],
) -> BTreeMap<&'static str, &'static str> {
    let paths: BTreeSet<&'static str> = families
        .iter()
        .map(|f| f.function)
        .chain(invalidators.iter().map(|i| i.function))
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

pub(super) fn render_map(families: &[CachedFamily], invalidators: &[Invalidator]) -> String {
    let names = short_names(families, invalidators);
    let name = |p: &'static str| names.get(p).copied().unwrap_or(p);
    let mut out = String::from("| Action | Clears | Cached functions affected |\n|---|---|---|\n");
    for inv in invalidators {
        let mut clears = Vec::new();
        for &pattern in inv.patterns {
            let mut cell = code(pattern);
            if !families
                .iter()
                .any(|f| pattern_matches(pattern, f.template))
            {
                cell.push_str(" **(matches nothing)**");
            }
            clears.push(cell);
        }
        for &tag in inv.tags {
            let mut cell = format!("tag {}", code(tag));
            if !families
                .iter()
                .any(|f| f.tags.iter().any(|c| tag_matches(tag, c)))
            {
                cell.push_str(" **(matches nothing)**");
            }
            clears.push(cell);
        }
        let affected: Vec<String> = families
            .iter()
            .filter(|f| inv.clears(f))
            .map(|f| format!("{} ({})", code(name(f.function)), code(f.template)))
            .collect();
        let affected = if affected.is_empty() {
            "none".to_owned()
        } else {
            affected.join(", ")
        };
        let when = if inv.before {
            " (before and after)"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "| {}{when} | {} | {affected} |",
            code(name(inv.function)),
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
            let mut ttl = format_duration(f.ttl);
            if let Some(none_ttl) = f.none_ttl {
                let _ = write!(ttl, " (`None`: {})", format_duration(none_ttl));
            }
            let _ = writeln!(
                out,
                "| {} | {} | {ttl} |",
                code(name(f.function)),
                code(f.template)
            );
        }
    }
    out
}
