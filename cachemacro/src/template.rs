//! Key templates: `"sets:user:<set.user_id>:*"` → literal and placeholder
//! segments. Syntax errors are reported on the template's string literal.

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

fn parse_placeholder(text: &str, lit: &LitStr) -> syn::Result<Placeholder> {
    let err = |msg: String| syn::Error::new(lit.span(), msg);
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
    })
}

/// Parses a template, checking its syntax for `kind`.
pub fn parse(lit: &LitStr, kind: Kind) -> syn::Result<Template> {
    let value = lit.value();
    let err = |msg: String| syn::Error::new(lit.span(), msg);
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
    if body.contains('*') {
        return Err(err(match kind {
            Kind::Key => format!(
                "`*` in the cached key `{value}`: a cached key names one entry; patterns belong in `#[invalidates]`"
            ),
            Kind::Pattern => format!(
                "`*` in `{value}` can only end a pattern (\"everything under this prefix\")"
            ),
            Kind::Tag => format!(
                "`*` in the tag `{value}`: a tag names one group of entries; invalidating it clears them all"
            ),
        }));
    }
    let mut segments = Vec::new();
    let mut rest = body;
    while !rest.is_empty() {
        match rest.find(['<', '>']) {
            None => {
                segments.push(Segment::Lit(rest.to_owned()));
                break;
            }
            Some(at) if rest.as_bytes()[at] == b'>' => {
                return Err(err(format!(
                    "unmatched `>` in `{value}`: placeholders are written `<name>`"
                )));
            }
            Some(at) => {
                if at > 0 {
                    segments.push(Segment::Lit(rest[..at].to_owned()));
                }
                let after = &rest[at + 1..];
                let close = after
                    .find(['>', '<'])
                    .filter(|&c| after.as_bytes()[c] == b'>');
                let Some(close) = close else {
                    return Err(err(format!(
                        "unclosed `<` in `{value}`: placeholders are written `<name>`"
                    )));
                };
                segments.push(Segment::Placeholder(parse_placeholder(
                    &after[..close],
                    lit,
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
