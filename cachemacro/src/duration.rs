//! Duration strings: `"5m"`, `"1h30m"`, `"500ms"` (humantime's syntax
//! without months and years, whose `M` is too easily read as minutes).

use std::ops::Range;
use std::time::Duration;

use syn::LitStr;

use crate::template::subspan;

/// Every unit a duration string may use: humantime's, without months and
/// years (see [`refused_unit`]).
pub(crate) const UNITS: &[&str] = &[
    "ns", "nanos", "nsec", "us", "µs", "usec", "ms", "millis", "msec", "s", "sec", "secs",
    "second", "seconds", "m", "min", "mins", "minute", "minutes", "h", "hr", "hrs", "hour",
    "hours", "d", "day", "days", "w", "wk", "wks", "week", "weeks",
];

/// The units listed when one is unknown.
const UNITS_HELP: &str = "units: `ns`, `us`, `ms`, `s`, `m` (minutes), `h`, `d`, `w`; long forms such as `sec`, `min`, `hours`, `days` and `weeks` also work";

/// Each unit in `text` with the number before it, as byte ranges: the
/// letters humantime reads as a unit, with the digits (and `.`) before them.
pub(crate) fn units(text: &str) -> Vec<(Range<usize>, Range<usize>)> {
    let is_unit = |c: char| c.is_ascii_alphabetic() || c == 'µ';
    let mut out = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        if !is_unit(c) {
            continue;
        }
        let mut end = start + c.len_utf8();
        while let Some(&(at, c)) = chars.peek().filter(|(_, c)| is_unit(*c)) {
            end = at + c.len_utf8();
            chars.next();
        }
        let number = number_before(text, start);
        if !number.is_empty() {
            out.push((number, start..end));
        }
    }
    out
}

/// The number (digits and `.`) before byte `at`, spaces between allowed.
fn number_before(text: &str, at: usize) -> Range<usize> {
    let before = text[..at].trim_end();
    let start = before
        .trim_end_matches(|c: char| c.is_ascii_digit() || c == '.')
        .len();
    start..before.len()
}

/// A unit humantime reads but cachemacro refuses: `M` is months, one key
/// away from `m` for minutes, and a month or a year has no fixed length.
/// Weeks are exact and kept. The message and the bytes of `number` `unit`.
fn refused_unit(
    text: &str,
    (number, unit): (Range<usize>, Range<usize>),
) -> Option<(String, Range<usize>)> {
    let n = &text[number.clone()];
    let message = match &text[unit.clone()] {
        "M" => format!("`M` is months, which are not accepted; for minutes write `{n}m`"),
        u @ ("month" | "months") => format!(
            "`{u}` is not accepted, as a month has no fixed length; write days or weeks, as in `30d` or `4w`"
        ),
        u @ ("y" | "yr" | "yrs" | "year" | "years") => format!(
            "`{u}` (years) is not accepted, as a year has no fixed length; write days or weeks, as in `365d` or `52w`"
        ),
        _ => return None,
    };
    Some((message, number.start..unit.end))
}

/// Explains a humantime error in terms of the string the user wrote, with
/// the bytes it is about (`None`: the whole string).
fn duration_error(text: &str, e: &humantime::DurationError) -> (String, Option<Range<usize>>) {
    use humantime::DurationError as E;
    let rest = |at: usize| text.get(at..).unwrap_or_default().trim();
    let examples = "; write e.g. \"30s\", \"5m\", \"1h30m\", \"500ms\"";
    match e {
        E::InvalidCharacter(at) => (
            format!("unexpected `{}`{examples}", rest(*at)),
            Some(*at..text.len()),
        ),
        E::NumberExpected(at) => (
            format!("expected a number at `{}`{examples}", rest(*at)),
            Some(*at..text.len()),
        ),
        E::UnknownUnit { unit, value, .. } if unit.is_empty() => (
            format!("`{value}` needs a unit, as in `{value}s` or `{value}m`"),
            None,
        ),
        E::UnknownUnit {
            unit, start, end, ..
        } => {
            let lower = unit.to_lowercase();
            let message = if UNITS.contains(&lower.as_str()) {
                let number = &text[number_before(text, *start)];
                format!("unknown unit `{unit}`: units are lowercase, as in `{number}{lower}`")
            } else {
                format!("unknown unit `{unit}` ({UNITS_HELP})")
            };
            (message, Some(*start..*end))
        }
        E::NumberOverflow => ("the number is too large".into(), None),
        E::Empty => (format!("it is empty{examples}"), None),
    }
}

/// `"5m"`, `"1h30m"`, `"500ms"`: humantime's syntax without months and
/// years. Errors point at the part of the string they are about where the
/// compiler can (see [`subspan`]).
pub(crate) fn parse_duration(lit: &LitStr) -> syn::Result<Duration> {
    let text = lit.value();
    let invalid = |message: String, range: Option<Range<usize>>| {
        let span = range.map_or_else(|| lit.span(), |r| subspan(lit, r));
        syn::Error::new(span, format!("invalid duration `{text}`: {message}"))
    };
    // Before humantime: `"999999999y"` overflows, but the unit is the news.
    if let Some((message, range)) = units(&text)
        .into_iter()
        .find_map(|u| refused_unit(&text, u))
    {
        return Err(invalid(message, Some(range)));
    }
    humantime::parse_duration(&text).map_err(|e| {
        let (message, range) = duration_error(&text, &e);
        invalid(message, range)
    })
}
