//! Attribute arguments: `key = "…"`, `ttl = …`, `cache = <expr>`, … each
//! stored with its span; every bad argument is reported, not just the first.
//!
//! Parsing never fails as a whole: what could be read is kept and the errors
//! travel in `errors`, so the model can add its own (an unknown placeholder,
//! a missing `async`) and the user sees all of them at once.

use std::time::Duration;

use proc_macro2::Span;
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::{Expr, Lit, LitBool, LitStr, Path, Token};

/// A duration argument.
pub struct Ttl {
    pub duration: Duration,
}

/// `#[cached(…)]`.
#[derive(Default)]
pub struct CachedArgs {
    pub key: Option<LitStr>,
    pub ttl: Option<Ttl>,
    /// With the span of the name, for "`none_ttl` needs `Option<T>`".
    pub none_ttl: Option<(Ttl, Span)>,
    pub cache: Option<Expr>,
    pub codec: Option<Path>,
    pub krate: Option<Path>,
    /// `tags = ["user:<user_id>", …]`.
    pub tags: Option<Vec<LitStr>>,
    /// `lock = true`: wait for another process's load instead of loading too.
    pub lock: Option<LitBool>,
    /// `jitter = "10%"`: each entry's TTL shortened by up to this fraction.
    pub jitter: Option<(f64, Span)>,
    /// `cache_if = |value| …`: store only values for which this holds.
    pub cache_if: Option<Expr>,
    /// `unless = |value| …`: do not store values for which this holds.
    pub unless: Option<Expr>,
    /// `beta = 1.0`: XFetch's β (0 turns early refresh off).
    pub beta: Option<(f64, Span)>,
    /// `stale = "10m"`: serve an expired entry this long while one
    /// background refresh runs. Each duration keeps the span of its name.
    pub stale: Option<(Ttl, Span)>,
    /// `fail_safe = "1h"`: serve an expired entry this long when the body fails.
    pub fail_safe: Option<(Ttl, Span)>,
    /// `timeout = "200ms"`: past it, serve an old value; the load goes on.
    pub timeout: Option<(Ttl, Span)>,
    /// `hard_timeout = "2s"`: past it, give the load up.
    pub hard_timeout: Option<(Ttl, Span)>,
    /// Every malformed, unknown or duplicate argument.
    pub errors: Option<syn::Error>,
}

/// `#[invalidates(…)]`.
#[derive(Default)]
pub struct InvalidatesArgs {
    pub patterns: Vec<LitStr>,
    /// `tag = "…"` (repeatable) and `tags = [...]`, in order.
    pub tags: Vec<LitStr>,
    /// `before = true`: also invalidate before the body runs.
    pub before: Option<LitBool>,
    pub cache: Option<Expr>,
    pub krate: Option<Path>,
    /// Every malformed, unknown or duplicate argument.
    pub errors: Option<syn::Error>,
}

/// Each argument with the example shown when its value is missing or wrong.
const CACHED_ARGS: &[(&str, &str)] = &[
    ("key", "key = \"user:<user_id>\""),
    ("ttl", "ttl = \"5m\""),
    ("none_ttl", "none_ttl = \"30s\""),
    ("cache", "cache = self.cache"),
    ("codec", "codec = my_codecs::Json"),
    ("tags", "tags = [\"user:<user_id>\"]"),
    ("lock", "lock = true"),
    ("jitter", "jitter = \"10%\""),
    ("cache_if", "cache_if = |rows| !rows.is_empty()"),
    ("unless", "unless = |rows| rows.is_empty()"),
    ("beta", "beta = 1.0"),
    ("stale", "stale = \"10m\""),
    ("fail_safe", "fail_safe = \"1h\""),
    ("timeout", "timeout = \"200ms\""),
    ("hard_timeout", "hard_timeout = \"2s\""),
    ("crate", "crate = \"::cachemacro_runtime\""),
];
const INVALIDATES_ARGS: &[(&str, &str)] = &[
    ("tag", "tag = \"user:<user_id>\""),
    ("tags", "tags = [\"user:<user_id>\"]"),
    ("before", "before = true"),
    ("cache", "cache = self.cache"),
    ("crate", "crate = \"::cachemacro_runtime\""),
];

/// Collects errors so all of them reach the user at once.
#[derive(Default)]
pub struct Errors(Option<syn::Error>);

impl Errors {
    pub fn push(&mut self, e: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(e),
            None => self.0 = Some(e),
        }
    }

    pub fn push_at(&mut self, span: Span, msg: impl std::fmt::Display) {
        self.push(syn::Error::new(span, msg));
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    pub fn finish(self) -> syn::Result<()> {
        self.0.map_or(Ok(()), Err)
    }

    fn into_inner(self) -> Option<syn::Error> {
        self.0
    }
}

impl From<Option<syn::Error>> for Errors {
    fn from(e: Option<syn::Error>) -> Self {
        Errors(e)
    }
}

/// Stores `value` unless `slot` is set, in which case the second one is reported.
fn set<T>(slot: &mut Option<T>, value: T, name: &syn::Ident, errors: &mut Errors) {
    if slot.is_some() {
        errors.push_at(
            name.span(),
            format!(
                "duplicate `{name}` argument: `{name}` is already given earlier in this attribute"
            ),
        );
    } else {
        *slot = Some(value);
    }
}

/// The name before `=`, keywords included (`crate`).
fn parse_name(input: ParseStream, what: &str) -> syn::Result<syn::Ident> {
    if input.peek(LitStr) {
        let lit: LitStr = input.parse()?;
        return Err(syn::Error::new(
            lit.span(),
            format!(
                "the key template is a named argument: write `key = {}`",
                quote::ToTokens::to_token_stream(&lit)
            ),
        ));
    }
    input.call(syn::Ident::parse_any).map_err(|e| {
        syn::Error::new(
            e.span(),
            format!("expected an argument of `{what}`, as in `key = \"user:<user_id>\"`"),
        )
    })
}

/// The example for `name`, if it is a known argument.
fn example<'a>(name: &syn::Ident, valid: &'a [(&str, &str)]) -> Option<&'a str> {
    valid.iter().find(|(n, _)| name == n).map(|(_, e)| *e)
}

/// The candidate `given` is most likely a misspelling of, if any: within a
/// small edit distance (`tll` → `ttl`) or very similar (`usr_id` → `user_id`).
pub fn closest<'a>(given: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| {
            let edits = strsim::damerau_levenshtein(given, c);
            let near =
                edits <= (c.chars().count() / 3).max(1) || strsim::jaro_winkler(given, c) > 0.8;
            (near, edits, c)
        })
        .filter(|(near, _, _)| *near)
        .min_by_key(|(_, edits, _)| *edits)
        .map(|(_, _, c)| c)
}

fn unknown(name: &syn::Ident, valid: &[(&str, &str)], what: &str) -> syn::Error {
    let list = valid
        .iter()
        .map(|(v, _)| format!("`{v}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let given = name.to_string();
    let msg = match (closest(&given, valid.iter().map(|(v, _)| *v)), what) {
        (Some(v), _) => {
            format!(
                "unknown argument `{name}` of `{what}`; did you mean `{v}`? (expected one of {list})"
            )
        }
        (None, "#[invalidates]") => format!(
            "unknown argument `{name}` of `#[invalidates]`: it takes key patterns as string literals (`\"user:<user_id>\"`) and the arguments {list}"
        ),
        (None, _) => format!("unknown argument `{name}` of `{what}`; expected one of {list}"),
    };
    syn::Error::new(name.span(), msg)
}

/// `=` after a known argument's name.
fn parse_eq(input: ParseStream, name: &syn::Ident, example: &str) -> syn::Result<()> {
    if input.peek(Token![=]) {
        input.parse::<Token![=]>()?;
        Ok(())
    } else {
        Err(syn::Error::new(
            name.span(),
            format!("`{name}` needs a value, as in `{example}`"),
        ))
    }
}

/// Checks that `value_span`'s value is the whole argument (`ttl = 60 * 5` is not).
fn end_of_value(
    input: ParseStream,
    name: &syn::Ident,
    value_span: Span,
    what: &str,
) -> syn::Result<()> {
    if input.is_empty() || input.peek(Token![,]) {
        Ok(())
    } else {
        Err(syn::Error::new(
            value_span,
            format!("`{name}` takes {what}; expected `,` or the end of the arguments after it"),
        ))
    }
}

/// What a duration argument takes, for error messages.
fn ttl_forms(name: &syn::Ident) -> String {
    format!(
        "seconds (`{name} = 300`) or a duration string (`{name} = \"5m\"`, `\"1h30m\"`, `\"500ms\"`)"
    )
}

/// Explains a humantime error in terms of the string the user wrote.
fn duration_error(text: &str, e: &humantime::DurationError) -> String {
    use humantime::DurationError as E;
    let rest = |at: usize| text.get(at..).unwrap_or_default().trim();
    match e {
        E::InvalidCharacter(at) => format!("unexpected `{}`", rest(*at)),
        E::NumberExpected(at) => format!("expected a number at `{}`", rest(*at)),
        E::UnknownUnit { unit, value, .. } if unit.is_empty() => {
            format!("`{value}` needs a unit, as in `{value}s` or `{value}m`")
        }
        E::UnknownUnit { unit, .. } => format!(
            "unknown unit `{unit}` (units: ms, s, m, h, d, w; long forms such as `min` and `hours` also work)"
        ),
        E::NumberOverflow => "the number is too large".into(),
        E::Empty => "it is empty".into(),
    }
}

/// `ttl = 300` (seconds) or `ttl = "5m"` / `"1h30m"` / `"500ms"`.
fn parse_ttl(name: &syn::Ident, input: ParseStream) -> syn::Result<Ttl> {
    let lit: Lit = input
        .parse()
        .map_err(|e| syn::Error::new(e.span(), format!("`{name}` takes {}", ttl_forms(name))))?;
    let duration = match &lit {
        Lit::Int(int) => match int.base10_parse::<u64>() {
            Ok(secs) => Duration::from_secs(secs),
            Err(_) => {
                return Err(syn::Error::new(
                    int.span(),
                    format!("`{name} = {int}` is not a number of seconds that fits in a `u64`"),
                ));
            }
        },
        Lit::Str(s) => humantime::parse_duration(&s.value()).map_err(|e| {
            syn::Error::new(
                s.span(),
                format!(
                    "invalid duration `{}`: {}; write e.g. \"30s\", \"5m\", \"1h30m\", \"500ms\"",
                    s.value(),
                    duration_error(&s.value(), &e)
                ),
            )
        })?,
        other => {
            return Err(syn::Error::new(
                other.span(),
                format!("`{name}` takes {}", ttl_forms(name)),
            ));
        }
    };
    end_of_value(input, name, lit.span(), "a single literal")?;
    if duration.is_zero() {
        return Err(syn::Error::new(
            lit.span(),
            format!("`{name}` must be greater than zero"),
        ));
    }
    if duration < Duration::from_millis(1) {
        return Err(syn::Error::new(
            lit.span(),
            format!("`{name}` must be at least 1ms"),
        ));
    }
    Ok(Ttl { duration })
}

/// A string literal argument (`key = "…"`).
fn parse_lit_str(name: &syn::Ident, input: ParseStream, example: &str) -> syn::Result<LitStr> {
    let lit = input.parse::<LitStr>().map_err(|e| {
        syn::Error::new(
            e.span(),
            format!("`{name}` takes a string literal, as in `{example}`"),
        )
    })?;
    end_of_value(input, name, lit.span(), "a single string literal")?;
    Ok(lit)
}

/// `tags = ["a:<x>", "b"]`: a bracketed list of string literals.
fn parse_lit_list(
    name: &syn::Ident,
    input: ParseStream,
    example: &str,
) -> syn::Result<Vec<LitStr>> {
    let wrong = |span: Span| {
        syn::Error::new(
            span,
            format!("`{name}` takes a list of string literals, as in `{example}`"),
        )
    };
    if !input.peek(syn::token::Bracket) {
        return Err(wrong(input.span()));
    }
    let content;
    let brackets = syn::bracketed!(content in input);
    let list = syn::punctuated::Punctuated::<LitStr, Token![,]>::parse_terminated(&content)
        .map_err(|e| wrong(e.span()))?;
    if list.is_empty() {
        return Err(wrong(brackets.span.join()));
    }
    end_of_value(
        input,
        name,
        brackets.span.join(),
        "a bracketed list of string literals",
    )?;
    Ok(list.into_iter().collect())
}

/// `jitter = "10%"`: a percentage from 0 to 100 (exclusive of 100).
fn parse_percent(name: &syn::Ident, input: ParseStream, example: &str) -> syn::Result<(f64, Span)> {
    let lit = parse_lit_str(name, input, example)?;
    let text = lit.value();
    let value = text
        .trim()
        .strip_suffix('%')
        .and_then(|n| n.trim().parse::<f64>().ok())
        .filter(|p| (0.0..100.0).contains(p))
        .ok_or_else(|| {
            syn::Error::new(
                lit.span(),
                format!(
                    "`{name}` takes a percentage below 100, as in `{example}`; `{text}` is not one"
                ),
            )
        })?;
    Ok((value / 100.0, lit.span()))
}

/// `beta = 1.0`: a finite number, 0 or more.
fn parse_beta(name: &syn::Ident, input: ParseStream, example: &str) -> syn::Result<(f64, Span)> {
    let wrong = |span: Span| {
        syn::Error::new(
            span,
            format!(
                "`{name}` takes a number, 0 or more, as in `{example}` (0 turns early refresh off)"
            ),
        )
    };
    if input.peek(syn::Token![-]) {
        // `-1.0`: report the whole number, not just the sign.
        let minus: syn::Token![-] = input.parse()?;
        let rest: Lit = input.parse().map_err(|e| wrong(e.span()))?;
        let message = wrong(minus.span).to_string();
        return Err(syn::Error::new_spanned(
            quote::quote!(#minus #rest),
            message,
        ));
    }
    let lit: Lit = input.parse().map_err(|e| wrong(e.span()))?;
    let value = match &lit {
        Lit::Float(f) => f.base10_parse::<f64>().ok(),
        Lit::Int(i) => i.base10_parse::<f64>().ok(),
        _ => None,
    }
    .filter(|b| b.is_finite() && *b >= 0.0)
    .ok_or_else(|| wrong(lit.span()))?;
    end_of_value(input, name, lit.span(), "a single number")?;
    Ok((value, lit.span()))
}

/// `cache_if = |value| …`: any expression callable as `Fn(&V) -> bool`.
fn parse_predicate(name: &syn::Ident, input: ParseStream, example: &str) -> syn::Result<Expr> {
    input.parse::<Expr>().map_err(|e| {
        syn::Error::new(
            e.span(),
            format!("`{name}` takes a closure or function over a reference to the value, as in `{example}`"),
        )
    })
}

/// `before = true`.
fn parse_bool(name: &syn::Ident, input: ParseStream, example: &str) -> syn::Result<LitBool> {
    let lit = input.parse::<LitBool>().map_err(|e| {
        syn::Error::new(
            e.span(),
            format!("`{name}` takes `true` or `false`, as in `{example}`"),
        )
    })?;
    end_of_value(input, name, lit.span, "`true` or `false`")?;
    Ok(lit)
}

/// `crate = "::my::reexport"`.
fn parse_crate(name: &syn::Ident, input: ParseStream, example: &str) -> syn::Result<Path> {
    let lit = parse_lit_str(name, input, example)?;
    lit.parse_with(Path::parse_mod_style).map_err(|_| {
        syn::Error::new(
            lit.span(),
            format!(
                "`crate` takes the path to `cachemacro_runtime` as a string, as in `{example}`; `{}` is not a path",
                lit.value()
            ),
        )
    })
}

/// `codec = path::To::Codec`.
fn parse_codec(name: &syn::Ident, input: ParseStream, example: &str) -> syn::Result<Path> {
    let path = input.parse::<Path>().map_err(|e| {
        syn::Error::new(
            e.span(),
            format!("`{name}` takes the path of a type implementing `Codec`, as in `{example}`"),
        )
    })?;
    let span = syn::spanned::Spanned::span(&path);
    end_of_value(input, name, span, "the path of a type implementing `Codec`")?;
    Ok(path)
}

/// `cache = <expr>`.
fn parse_cache(name: &syn::Ident, input: ParseStream, example: &str) -> syn::Result<Expr> {
    input.parse::<Expr>().map_err(|e| {
        syn::Error::new(
            e.span(),
            format!("`{name}` takes an expression giving a `Cache`, `&Cache` or `Arc<Cache>`, as in `{example}`"),
        )
    })
}

/// Skips the rest of one malformed argument so later ones are still checked.
fn skip_to_comma(input: ParseStream) {
    let _ = input.step(|cursor| {
        let mut rest = *cursor;
        while let Some((tt, next)) = rest.token_tree() {
            if matches!(&tt, proc_macro2::TokenTree::Punct(p) if p.as_char() == ',') {
                return Ok(((), rest));
            }
            rest = next;
        }
        Ok(((), rest))
    });
}

/// Runs `one` for each comma-separated argument, collecting its errors.
fn parse_list(
    input: ParseStream,
    mut one: impl FnMut(ParseStream, &mut Errors) -> syn::Result<()>,
) -> Option<syn::Error> {
    let mut errors = Errors::default();
    while !input.is_empty() {
        if let Err(e) = one(input, &mut errors) {
            errors.push(e);
            skip_to_comma(input);
        }
        if input.is_empty() {
            break;
        }
        if let Err(e) = input.parse::<Token![,]>() {
            errors.push(syn::Error::new(e.span(), "expected `,` between arguments"));
            skip_to_comma(input);
            let _ = input.parse::<Token![,]>();
        }
    }
    errors.into_inner()
}

impl Parse for CachedArgs {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let mut args = CachedArgs::default();
        args.errors = parse_list(input, |input, errors| {
            let name = parse_name(input, "#[cached]")?;
            let Some(example) = example(&name, CACHED_ARGS) else {
                return Err(unknown(&name, CACHED_ARGS, "#[cached]"));
            };
            parse_eq(input, &name, example)?;
            match name.to_string().as_str() {
                "key" => set(
                    &mut args.key,
                    parse_lit_str(&name, input, example)?,
                    &name,
                    errors,
                ),
                "ttl" => set(&mut args.ttl, parse_ttl(&name, input)?, &name, errors),
                "none_ttl" => set(
                    &mut args.none_ttl,
                    (parse_ttl(&name, input)?, name.span()),
                    &name,
                    errors,
                ),
                "cache" => set(
                    &mut args.cache,
                    parse_cache(&name, input, example)?,
                    &name,
                    errors,
                ),
                "codec" => set(
                    &mut args.codec,
                    parse_codec(&name, input, example)?,
                    &name,
                    errors,
                ),
                "tags" => set(
                    &mut args.tags,
                    parse_lit_list(&name, input, example)?,
                    &name,
                    errors,
                ),
                "lock" => set(
                    &mut args.lock,
                    parse_bool(&name, input, example)?,
                    &name,
                    errors,
                ),
                "jitter" => set(
                    &mut args.jitter,
                    parse_percent(&name, input, example)?,
                    &name,
                    errors,
                ),
                "cache_if" => set(
                    &mut args.cache_if,
                    parse_predicate(&name, input, example)?,
                    &name,
                    errors,
                ),
                "unless" => set(
                    &mut args.unless,
                    parse_predicate(&name, input, example)?,
                    &name,
                    errors,
                ),
                "beta" => set(
                    &mut args.beta,
                    parse_beta(&name, input, example)?,
                    &name,
                    errors,
                ),
                "stale" | "fail_safe" | "timeout" | "hard_timeout" => {
                    let slot = match name.to_string().as_str() {
                        "stale" => &mut args.stale,
                        "fail_safe" => &mut args.fail_safe,
                        "timeout" => &mut args.timeout,
                        _ => &mut args.hard_timeout,
                    };
                    set(slot, (parse_ttl(&name, input)?, name.span()), &name, errors);
                }
                _ => set(
                    &mut args.krate,
                    parse_crate(&name, input, example)?,
                    &name,
                    errors,
                ),
            }
            Ok(())
        });
        Ok(args)
    }
}

impl Parse for InvalidatesArgs {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let mut args = InvalidatesArgs::default();
        args.errors = parse_list(input, |input, errors| {
            if input.peek(LitStr) {
                let lit: LitStr = input.parse()?;
                if !input.is_empty() && !input.peek(Token![,]) {
                    return Err(syn::Error::new(
                        lit.span(),
                        "expected `,` or the end of the arguments after this pattern",
                    ));
                }
                args.patterns.push(lit);
                return Ok(());
            }
            let name = input.call(syn::Ident::parse_any).map_err(|e| {
                syn::Error::new(
                    e.span(),
                    "expected a key pattern, as in `#[invalidates(\"user:<user_id>\")]`, or `tag = \"…\"`, `before = true`, `cache = …`, `crate = \"…\"`",
                )
            })?;
            let Some(example) = example(&name, INVALIDATES_ARGS) else {
                return Err(unknown(&name, INVALIDATES_ARGS, "#[invalidates]"));
            };
            parse_eq(input, &name, example)?;
            match name.to_string().as_str() {
                "tag" => args.tags.push(parse_lit_str(&name, input, example)?),
                "tags" => args.tags.extend(parse_lit_list(&name, input, example)?),
                "before" => set(
                    &mut args.before,
                    parse_bool(&name, input, example)?,
                    &name,
                    errors,
                ),
                "cache" => set(
                    &mut args.cache,
                    parse_cache(&name, input, example)?,
                    &name,
                    errors,
                ),
                _ => set(
                    &mut args.krate,
                    parse_crate(&name, input, example)?,
                    &name,
                    errors,
                ),
            }
            Ok(())
        });
        Ok(args)
    }
}
