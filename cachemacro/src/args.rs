//! Attribute arguments: `key = "…"`, `ttl = …`, `cache = <expr>`, … each
//! stored with its span; every bad argument is reported, not just the first.
//!
//! Each argument name is a `custom_keyword!` with an arm of its own in a
//! `lookahead1` chain; a name no arm knows is an error at that name ("did
//! you mean …?"), never read as some other argument.
//!
//! Parsing never fails as a whole: what could be read is kept and the errors
//! travel in `errors`, so the model can add its own (an unknown placeholder,
//! a missing `async`) and the user sees all of them at once.

use proc_macro2::Span;
use quote::ToTokens;
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::spanned::Spanned;
use syn::{Expr, Ident, LitBool, LitStr, Path, Token};

use crate::errors::{Errors, closest};
pub use crate::values::Ttl;
use crate::values::{
    Name, parse_beta, parse_bool, parse_cache, parse_codec, parse_crate, parse_lit_list,
    parse_lit_str, parse_percent, parse_predicate, parse_ttl,
};

/// Every argument name but `crate`, which is `Token![crate]`.
mod kw {
    syn::custom_keyword!(key);
    syn::custom_keyword!(ttl);
    syn::custom_keyword!(none_ttl);
    syn::custom_keyword!(cache);
    syn::custom_keyword!(codec);
    syn::custom_keyword!(tag);
    syn::custom_keyword!(tags);
    syn::custom_keyword!(lock);
    syn::custom_keyword!(jitter);
    syn::custom_keyword!(cache_if);
    syn::custom_keyword!(unless);
    syn::custom_keyword!(beta);
    syn::custom_keyword!(stale);
    syn::custom_keyword!(fail_safe);
    syn::custom_keyword!(timeout);
    syn::custom_keyword!(hard_timeout);
    syn::custom_keyword!(before);
    syn::custom_keyword!(local);
    syn::custom_keyword!(local_ttl);
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
    /// `local = false`: skip the in-process tier, for data that must be
    /// fresh across instances.
    pub local: Option<LitBool>,
    /// `local_ttl = "30s"`: the longest an entry lives in the in-process tier.
    pub local_ttl: Option<(Ttl, Span)>,
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

/// An attribute's arguments, each with the example shown when its value is
/// missing or wrong: the list in "unknown argument" and "did you mean".
type Valid = &'static [(&'static str, &'static str)];

const CACHED_ARGS: Valid = &[
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
    ("local", "local = false"),
    ("local_ttl", "local_ttl = \"30s\""),
    ("crate", "crate = \"::cachemacro_runtime\""),
];
const INVALIDATES_ARGS: Valid = &[
    ("tag", "tag = \"user:<user_id>\""),
    ("tags", "tags = [\"user:<user_id>\"]"),
    ("before", "before = true"),
    ("cache", "cache = self.cache"),
    ("crate", "crate = \"::cachemacro_runtime\""),
];

/// The keyword `K` (peeked by the caller) and the `=` after it.
fn name<K: Parse + ToTokens>(input: ParseStream, valid: Valid) -> syn::Result<Name> {
    let keyword: K = input.parse()?;
    let span = keyword.span();
    let written = keyword.to_token_stream().to_string();
    let Some(&(text, example)) = valid.iter().find(|(n, _)| *n == written) else {
        return Err(syn::Error::new(
            span,
            format!(
                "internal error in cachemacro: `{written}` has no entry in the argument list; please report this"
            ),
        ));
    };
    let name = Name {
        text,
        example,
        span,
    };
    if !input.peek(Token![=]) {
        return Err(syn::Error::new(
            span,
            format!("`{name}` needs a value, as in `{example}`"),
        ));
    }
    input.parse::<Token![=]>()?;
    Ok(name)
}

/// Stores `value` unless `slot` is set, in which case the second one is reported.
fn set<T>(slot: &mut Option<T>, value: T, name: &Name, errors: &mut Errors) {
    if slot.is_some() {
        errors.push_at(
            name.span,
            format!(
                "duplicate `{name}` argument: `{name}` is already given earlier in this attribute"
            ),
        );
    } else {
        *slot = Some(value);
    }
}

fn unknown(name: &Ident, valid: Valid, what: &str) -> syn::Error {
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

/// What no arm took: an unknown name (reported at it, with a suggestion)
/// or something that is not an argument at all (`expected`).
fn not_an_argument(input: ParseStream, valid: Valid, what: &str, expected: &str) -> syn::Error {
    if input.peek(Ident::peek_any) {
        match input.call(Ident::parse_any) {
            Ok(name) => unknown(&name, valid, what),
            Err(e) => e,
        }
    } else {
        syn::Error::new(input.span(), expected)
    }
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
        let errors = parse_list(input, |input, errors| args.parse_one(input, errors));
        args.errors = errors;
        Ok(args)
    }
}

impl CachedArgs {
    /// One argument, an arm per name.
    fn parse_one(&mut self, input: ParseStream, errors: &mut Errors) -> syn::Result<()> {
        const ARGS: Valid = CACHED_ARGS;
        let lookahead = input.lookahead1();
        if lookahead.peek(kw::key) {
            let name = name::<kw::key>(input, ARGS)?;
            set(&mut self.key, parse_lit_str(&name, input)?, &name, errors);
        } else if lookahead.peek(kw::ttl) {
            let name = name::<kw::ttl>(input, ARGS)?;
            set(&mut self.ttl, parse_ttl(&name, input)?, &name, errors);
        } else if lookahead.peek(kw::none_ttl) {
            let name = name::<kw::none_ttl>(input, ARGS)?;
            let value = (parse_ttl(&name, input)?, name.span);
            set(&mut self.none_ttl, value, &name, errors);
        } else if lookahead.peek(kw::cache) {
            let name = name::<kw::cache>(input, ARGS)?;
            set(&mut self.cache, parse_cache(&name, input)?, &name, errors);
        } else if lookahead.peek(kw::codec) {
            let name = name::<kw::codec>(input, ARGS)?;
            set(&mut self.codec, parse_codec(&name, input)?, &name, errors);
        } else if lookahead.peek(kw::tags) {
            let name = name::<kw::tags>(input, ARGS)?;
            set(&mut self.tags, parse_lit_list(&name, input)?, &name, errors);
        } else if lookahead.peek(kw::lock) {
            let name = name::<kw::lock>(input, ARGS)?;
            set(&mut self.lock, parse_bool(&name, input)?, &name, errors);
        } else if lookahead.peek(kw::jitter) {
            let name = name::<kw::jitter>(input, ARGS)?;
            set(
                &mut self.jitter,
                parse_percent(&name, input)?,
                &name,
                errors,
            );
        } else if lookahead.peek(kw::cache_if) {
            let name = name::<kw::cache_if>(input, ARGS)?;
            let value = parse_predicate(&name, input)?;
            set(&mut self.cache_if, value, &name, errors);
        } else if lookahead.peek(kw::unless) {
            let name = name::<kw::unless>(input, ARGS)?;
            let value = parse_predicate(&name, input)?;
            set(&mut self.unless, value, &name, errors);
        } else if lookahead.peek(kw::beta) {
            let name = name::<kw::beta>(input, ARGS)?;
            set(&mut self.beta, parse_beta(&name, input)?, &name, errors);
        } else if lookahead.peek(kw::stale) {
            let name = name::<kw::stale>(input, ARGS)?;
            let value = (parse_ttl(&name, input)?, name.span);
            set(&mut self.stale, value, &name, errors);
        } else if lookahead.peek(kw::fail_safe) {
            let name = name::<kw::fail_safe>(input, ARGS)?;
            let value = (parse_ttl(&name, input)?, name.span);
            set(&mut self.fail_safe, value, &name, errors);
        } else if lookahead.peek(kw::timeout) {
            let name = name::<kw::timeout>(input, ARGS)?;
            let value = (parse_ttl(&name, input)?, name.span);
            set(&mut self.timeout, value, &name, errors);
        } else if lookahead.peek(kw::hard_timeout) {
            let name = name::<kw::hard_timeout>(input, ARGS)?;
            let value = (parse_ttl(&name, input)?, name.span);
            set(&mut self.hard_timeout, value, &name, errors);
        } else if lookahead.peek(kw::local) {
            let name = name::<kw::local>(input, ARGS)?;
            set(&mut self.local, parse_bool(&name, input)?, &name, errors);
        } else if lookahead.peek(kw::local_ttl) {
            let name = name::<kw::local_ttl>(input, ARGS)?;
            let value = (parse_ttl(&name, input)?, name.span);
            set(&mut self.local_ttl, value, &name, errors);
        } else if lookahead.peek(Token![crate]) {
            let name = name::<Token![crate]>(input, ARGS)?;
            set(&mut self.krate, parse_crate(&name, input)?, &name, errors);
        } else if input.peek(LitStr) {
            let lit: LitStr = input.parse()?;
            return Err(syn::Error::new(
                lit.span(),
                format!(
                    "the key template is a named argument: write `key = {}`",
                    lit.to_token_stream()
                ),
            ));
        } else {
            return Err(not_an_argument(
                input,
                ARGS,
                "#[cached]",
                "expected an argument of `#[cached]`, as in `key = \"user:<user_id>\"`",
            ));
        }
        Ok(())
    }
}

impl Parse for InvalidatesArgs {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let mut args = InvalidatesArgs::default();
        let errors = parse_list(input, |input, errors| args.parse_one(input, errors));
        args.errors = errors;
        Ok(args)
    }
}

impl InvalidatesArgs {
    /// One pattern or argument, an arm each.
    fn parse_one(&mut self, input: ParseStream, errors: &mut Errors) -> syn::Result<()> {
        const ARGS: Valid = INVALIDATES_ARGS;
        let lookahead = input.lookahead1();
        if lookahead.peek(LitStr) {
            let lit: LitStr = input.parse()?;
            if !input.is_empty() && !input.peek(Token![,]) {
                return Err(syn::Error::new(
                    lit.span(),
                    "expected `,` or the end of the arguments after this pattern",
                ));
            }
            self.patterns.push(lit);
        } else if lookahead.peek(kw::tag) {
            let name = name::<kw::tag>(input, ARGS)?;
            self.tags.push(parse_lit_str(&name, input)?);
        } else if lookahead.peek(kw::tags) {
            let name = name::<kw::tags>(input, ARGS)?;
            self.tags.extend(parse_lit_list(&name, input)?);
        } else if lookahead.peek(kw::before) {
            let name = name::<kw::before>(input, ARGS)?;
            set(&mut self.before, parse_bool(&name, input)?, &name, errors);
        } else if lookahead.peek(kw::cache) {
            let name = name::<kw::cache>(input, ARGS)?;
            set(&mut self.cache, parse_cache(&name, input)?, &name, errors);
        } else if lookahead.peek(Token![crate]) {
            let name = name::<Token![crate]>(input, ARGS)?;
            set(&mut self.krate, parse_crate(&name, input)?, &name, errors);
        } else {
            return Err(not_an_argument(
                input,
                ARGS,
                "#[invalidates]",
                "expected a key pattern, as in `#[invalidates(\"user:<user_id>\")]`, or `tag = \"…\"`, `before = true`, `cache = …`, `crate = \"…\"`",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    use crate::duration::{UNITS, parse_duration, units};

    fn cached(args: &str) -> CachedArgs {
        syn::parse_str(args).expect("arguments never fail as a whole")
    }

    fn invalidates(args: &str) -> InvalidatesArgs {
        syn::parse_str(args).expect("arguments never fail as a whole")
    }

    fn messages(errors: Option<syn::Error>) -> Vec<String> {
        errors
            .into_iter()
            .flat_map(|e| e.into_iter().map(|e| e.to_string()))
            .collect()
    }

    /// Every listed argument has an arm: its example parses cleanly.
    #[test]
    fn every_listed_argument_has_an_arm() {
        for (name, example) in CACHED_ARGS {
            let args = cached(example);
            assert_eq!(messages(args.errors), Vec::<String>::new(), "{name}");
        }
        for (name, example) in INVALIDATES_ARGS {
            let args = invalidates(example);
            assert_eq!(messages(args.errors), Vec::<String>::new(), "{name}");
        }
    }

    /// Every arm is listed: an arm whose name is not listed reports an
    /// internal error, which no name here may produce.
    #[test]
    fn every_arm_is_listed() {
        let all = "key = \"k\", ttl = 1, none_ttl = 1, cache = c, codec = C, tags = [\"t\"], \
                   lock = true, jitter = \"1%\", cache_if = f, unless = f, beta = 1, \
                   stale = 1, fail_safe = 1, timeout = 1, hard_timeout = 2, local = true, \
                   local_ttl = 1, crate = \"::x\"";
        let args = cached(all);
        assert_eq!(messages(args.errors), Vec::<String>::new());
        assert!(args.key.is_some() && args.ttl.is_some() && args.none_ttl.is_some());
        assert!(args.cache.is_some() && args.codec.is_some() && args.tags.is_some());
        assert!(args.lock.is_some() && args.jitter.is_some() && args.cache_if.is_some());
        assert!(args.unless.is_some() && args.beta.is_some() && args.stale.is_some());
        assert!(args.fail_safe.is_some() && args.timeout.is_some());
        assert!(args.hard_timeout.is_some() && args.krate.is_some());
        assert!(args.local.is_some() && args.local_ttl.is_some());

        let args = invalidates(
            "\"p\", tag = \"a\", tags = [\"b\"], before = true, cache = c, crate = \"::x\"",
        );
        assert_eq!(messages(args.errors), Vec::<String>::new());
        assert_eq!(args.patterns.len(), 1);
        assert_eq!(args.tags.len(), 2);
        assert!(args.before.is_some() && args.cache.is_some() && args.krate.is_some());
    }

    #[test]
    fn unknown_names_are_errors_not_other_arguments() {
        let args = cached("key = \"k\", ttl = 1, krate = \"::x\", type = 1");
        assert!(args.krate.is_none());
        let errors = messages(args.errors);
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(
            errors[0].starts_with("unknown argument `krate` of `#[cached]`; did you mean `crate`?")
        );
        assert!(errors[1].starts_with("unknown argument `type` of `#[cached]`"));
    }

    #[test]
    fn all_errors_at_once() {
        let args = cached("key = 1, ttl = \"5M\", ttl = 2, tll = 3, 4, ttl = 5");
        let errors = messages(args.errors);
        assert_eq!(errors.len(), 5, "{errors:?}");
        assert!(errors[0].starts_with("`key` takes a string literal"));
        assert!(errors[1].contains("`M` is months"));
        assert!(errors[2].contains("did you mean `ttl`"));
        assert!(errors[3].starts_with("expected an argument of `#[cached]`"));
        assert!(errors[4].starts_with("duplicate `ttl`"));
        assert_eq!(args.ttl.map(|t| t.duration), Some(Duration::from_secs(2)));
    }

    fn duration(text: &str) -> Result<Duration, String> {
        let lit = LitStr::new(text, Span::call_site());
        parse_duration(&lit).map_err(|e| e.to_string())
    }

    #[test]
    fn durations() {
        let secs = |s| Ok(Duration::from_secs(s));
        assert_eq!(duration("5m"), secs(300));
        assert_eq!(duration("1h30m"), secs(5400));
        assert_eq!(duration("2d"), secs(2 * 86400));
        assert_eq!(duration("1w"), secs(7 * 86400));
        assert_eq!(duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(duration("5 min"), secs(300));
    }

    #[test]
    fn months_and_years_are_refused() {
        assert_eq!(
            duration("5M"),
            Err("invalid duration `5M`: `M` is months, which are not accepted; for minutes write `5m`".into())
        );
        assert!(
            duration("1h 30M")
                .unwrap_err()
                .contains("for minutes write `30m`")
        );
        assert!(
            duration("2 months")
                .unwrap_err()
                .contains("`months` is not accepted")
        );
        assert!(
            duration("1y")
                .unwrap_err()
                .contains("`y` (years) is not accepted")
        );
        assert!(
            duration("99999999999999999999years")
                .unwrap_err()
                .contains("`years` (years)")
        );
        assert!(duration("1.5yr").unwrap_err().contains("`yr` (years)"));
    }

    #[test]
    fn unknown_units() {
        assert_eq!(
            duration("5H"),
            Err("invalid duration `5H`: unknown unit `H`: units are lowercase, as in `5h`".into())
        );
        assert!(duration("5 MS").unwrap_err().contains("as in `5ms`"));
        assert!(duration("1.5H").unwrap_err().contains("as in `1.5h`"));
        let x = duration("5x").unwrap_err();
        assert!(x.contains("unknown unit `x` (units: `ns`"), "{x}");
        // Every unit the help names is one.
        for unit in UNITS {
            assert!(duration(&format!("1{unit}")).is_ok(), "{unit}");
        }
    }

    #[test]
    fn units_are_found_with_their_numbers() {
        let text = "1h 30 min 1.5s x";
        let found: Vec<(&str, &str)> = units(text)
            .into_iter()
            .map(|(n, u)| (&text[n], &text[u]))
            .collect();
        assert_eq!(found, [("1", "h"), ("30", "min"), ("1.5", "s")]);
    }
}
