//! Key templates: `"sets:user:<set.user_id>:*"` → literal and placeholder
//! segments. Syntax errors are reported on the template's string literal,
//! at the offending placeholder or character where the compiler can point
//! inside a literal (see [`subspan`]).

use std::ops::Range;

use proc_macro2::Span;
use syn::LitStr;

/// What the template is for: a `#[cached]` key or an `#[invalidates]` pattern.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Key,
    Pattern,
    /// A tag: concrete like a key (`user:<user_id>`), no `*`.
    Tag,
}

pub enum Segment {
    Lit(String),
    Placeholder(Placeholder),
}

/// `<root.field.sub>` or `<root:hash>`.
pub struct Placeholder {
    pub root: String,
    /// Field names and tuple indices, checked so that expansion can always
    /// build them (`r#type` for a keyword).
    pub fields: Vec<syn::Member>,
    pub hash: bool,
    /// The placeholder as written, for messages: `<set.user_id>`.
    pub text: String,
    /// Where the placeholder is, `<` to `>`: its own part of the string
    /// literal where the compiler can point there, else the whole literal
    /// (see [`subspan`]). Errors about this placeholder go here.
    pub span: Span,
}

pub struct Template {
    pub lit: LitStr,
    pub segments: Vec<Segment>,
    /// The pattern ends in `*`: everything under the prefix.
    pub wildcard: bool,
}

impl Template {
    /// The template as written: the family name in stats and the registry.
    pub fn source(&self) -> String {
        self.lit.value()
    }

    pub fn placeholders(&self) -> impl Iterator<Item = &Placeholder> {
        self.segments.iter().filter_map(|s| match s {
            Segment::Placeholder(p) => Some(p),
            Segment::Lit(_) => None,
        })
    }

    /// Bytes of literal text: a capacity hint for the key buffer.
    pub fn literal_len(&self) -> usize {
        self.segments
            .iter()
            .map(|s| match s {
                Segment::Lit(l) => l.len(),
                Segment::Placeholder(_) => 8,
            })
            .sum()
    }
}

/// The span of bytes `range` of `lit`'s value: that part of the literal
/// where the compiler can point inside one, else the whole literal.
///
/// Only a nightly compiler makes sub-spans (`proc_macro::Literal::subspan`
/// is unstable; on stable `proc_macro2` returns `None`), and only a literal
/// written without escapes maps value bytes to source bytes one to one; in
/// every other case this is `lit.span()`.
pub fn subspan(lit: &LitStr, range: Range<usize>) -> Span {
    let token = lit.token();
    source_range(&token.to_string(), &lit.value(), range)
        .and_then(|r| token.subspan(r))
        .unwrap_or_else(|| lit.span())
}

/// Where bytes `range` of a string literal's `value` are in its `source`
/// (`"…"`, `r"…"`, `r#"…"#`, with or without a suffix), if the literal's
/// contents are its value byte for byte. Any escape makes the contents
/// differ from the value (each one changes its bytes), so this is `None`
/// for a literal with escapes.
fn source_range(source: &str, value: &str, range: Range<usize>) -> Option<Range<usize>> {
    let quote = source.find('"')?;
    let hashes = match &source[..quote] {
        "" => "",
        prefix => prefix
            .strip_prefix('r')
            .filter(|h| h.bytes().all(|b| b == b'#'))?,
    };
    let open = quote + 1;
    let close = format!("\"{hashes}");
    let rest = source[open..].strip_prefix(value)?;
    if !rest.starts_with(&close) || range.start > range.end || range.end > value.len() {
        return None;
    }
    Some(open + range.start..open + range.end)
}

/// Looks like an identifier; the lexer has the last word (see [`field`]).
fn is_ident(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_alphabetic())
        && chars.all(|c| c == '_' || c.is_alphanumeric())
}

/// `s` with every character outside printable ASCII escaped, so that a
/// stray combining mark or control character shows in a message.
fn visible(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            ' '..='~' => c.to_string(),
            _ => c.escape_unicode().to_string(),
        })
        .collect()
}

/// A field name (`user_id`, `type` as `r#type`) or tuple index (`0`).
fn field(s: &str) -> Option<syn::Member> {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        if s.len() > 1 && s.starts_with('0') {
            return None;
        }
        let index = s.parse::<u32>().ok()?;
        return Some(syn::Member::Unnamed(syn::Index::from(index as usize)));
    }
    if !is_ident(s) || s == "_" {
        return None;
    }
    // `is_alphabetic` admits characters identifiers do not (combining
    // marks), and keywords need `r#`: let the lexer decide, never panic.
    if let Ok(ident) = syn::parse_str::<syn::Ident>(s) {
        return Some(syn::Member::Named(ident));
    }
    syn::parse_str::<syn::Ident>(&format!("r#{s}"))
        .ok()
        .map(syn::Member::Named)
}

/// `text` is what is between `<` and `>`; `span` is where they are.
fn parse_placeholder(text: &str, span: Span) -> syn::Result<Placeholder> {
    let err = |msg: String| syn::Error::new(span, msg);
    if text.trim().is_empty() {
        return Err(err(
            "empty placeholder `<>`: name a parameter, as in `<user_id>`".into(),
        ));
    }
    let (path, modifier) = match text.split_once(':') {
        Some((path, m)) => (path, Some(m)),
        None => (text, None),
    };
    let hash = match modifier {
        None => false,
        Some("hash") => true,
        Some(other) => {
            return Err(err(format!(
                "unknown placeholder modifier `:{other}` in `<{text}>`; the only one is `:hash`"
            )));
        }
    };
    let mut parts = path.split('.');
    let root = parts.next().unwrap_or_default();
    if !is_ident(root) {
        return Err(err(format!(
            "`<{text}>` is not a placeholder: expected a parameter name such as `<user_id>` or `<set.id>`"
        )));
    }
    let mut fields = Vec::new();
    for part in parts {
        match field(part) {
            Some(member) => fields.push(member),
            None if part.is_empty() => {
                return Err(err(format!(
                    "`<{text}>`: empty field name; write `<name.field>`, as in `<set.id>`"
                )));
            }
            None => {
                return Err(err(format!(
                    "`<{}>`: `{}` is not a field name or tuple index",
                    visible(text),
                    visible(part)
                )));
            }
        }
    }
    Ok(Placeholder {
        root: root.to_owned(),
        fields,
        hash,
        text: format!("<{text}>"),
        span,
    })
}

/// Parses a template, checking its syntax for `kind`.
pub fn parse(lit: &LitStr, kind: Kind) -> syn::Result<Template> {
    let value = lit.value();
    let err = |msg: String| syn::Error::new(lit.span(), msg);
    let err_at = |range: Range<usize>, msg: String| syn::Error::new(subspan(lit, range), msg);
    if value.is_empty() {
        return Err(err(match kind {
            Kind::Key => {
                "empty cache key: write a key template such as `\"user:<user_id>\"`".into()
            }
            Kind::Pattern => {
                "empty invalidation pattern: write a key template such as `\"user:<user_id>\"`"
                    .into()
            }
            Kind::Tag => "empty tag: write a tag template such as `\"user:<user_id>\"`".into(),
        }));
    }
    let (body, wildcard) = match value.strip_suffix('*') {
        Some(body) if kind == Kind::Pattern => (body, true),
        _ => (value.as_str(), false),
    };
    if let Some(star) = body.find('*') {
        return Err(err_at(
            star..star + 1,
            match kind {
                Kind::Key => format!(
                    "`*` in the cached key `{value}`: a cached key names one entry; patterns belong in `#[invalidates]`"
                ),
                Kind::Pattern => format!(
                    "`*` in `{value}` can only end a pattern (\"everything under this prefix\")"
                ),
                Kind::Tag => format!(
                    "`*` in the tag `{value}`: a tag names one group of entries; invalidating it clears them all"
                ),
            },
        ));
    }
    let mut segments = Vec::new();
    let mut rest = body;
    while !rest.is_empty() {
        // `rest` is a suffix of `body`, itself a prefix of `value`.
        let offset = body.len() - rest.len();
        match rest.find(['<', '>']) {
            None => {
                segments.push(Segment::Lit(rest.to_owned()));
                break;
            }
            Some(at) if rest.as_bytes()[at] == b'>' => {
                let at = offset + at;
                return Err(err_at(
                    at..at + 1,
                    format!("unmatched `>` in `{value}`: placeholders are written `<name>`"),
                ));
            }
            Some(at) => {
                if at > 0 {
                    segments.push(Segment::Lit(rest[..at].to_owned()));
                }
                let after = &rest[at + 1..];
                let close = after
                    .find(['>', '<'])
                    .filter(|&c| after.as_bytes()[c] == b'>');
                let open = offset + at;
                let Some(close) = close else {
                    return Err(err_at(
                        open..body.len(),
                        format!("unclosed `<` in `{value}`: placeholders are written `<name>`"),
                    ));
                };
                // `<` and `>` are one byte each.
                let span = subspan(lit, open..open + close + 2);
                segments.push(Segment::Placeholder(parse_placeholder(
                    &after[..close],
                    span,
                )?));
                rest = &after[close + 1..];
            }
        }
    }
    Ok(Template {
        lit: lit.clone(),
        segments,
        wildcard,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_range_maps_value_bytes_to_source_bytes() {
        assert_eq!(source_range(r#""a:<b>""#, "a:<b>", 2..5), Some(3..6));
        assert_eq!(source_range(r#""a:<b>"sfx"#, "a:<b>", 2..5), Some(3..6));
        assert_eq!(source_range(r#"r"a:<b>""#, "a:<b>", 2..5), Some(4..7));
        assert_eq!(source_range(r##"r#"a"<b>"#"##, "a\"<b>", 2..5), Some(5..8));
        assert_eq!(source_range(r#""""#, "", 0..0), Some(1..1));
    }

    #[test]
    fn source_range_gives_up_on_escapes_and_bad_ranges() {
        assert_eq!(source_range(r#""a\n<b>""#, "a\n<b>", 2..5), None);
        assert_eq!(source_range(r#""a\"<b>""#, "a\"<b>", 2..5), None);
        assert_eq!(source_range(r#""\u{345}<b>""#, "\u{345}<b>", 2..5), None);
        assert_eq!(source_range(r#""a:<b>""#, "a:<b>", 2..6), None);
        assert_eq!(source_range(r#"b"a""#, "a", 0..1), None);
    }

    #[test]
    fn placeholders_keep_their_text() {
        let lit = LitStr::new("a:<b>:<c.d:hash>:<e.0>", Span::call_site());
        let template = parse(&lit, Kind::Key).unwrap_or_else(|e| panic!("{e}"));
        let texts: Vec<&str> = template.placeholders().map(|p| p.text.as_str()).collect();
        assert_eq!(texts, ["<b>", "<c.d:hash>", "<e.0>"]);
    }
}
