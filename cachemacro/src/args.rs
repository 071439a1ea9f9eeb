//! Attribute arguments: `key = "…"`, `ttl = …`, `cache = <expr>`, … each
//! stored with its span; every bad argument is reported, not just the first.

use std::time::Duration;

use proc_macro2::Span;
use syn::parse::{Parse, ParseStream};
use syn::{Expr, Lit, LitStr, Path, Token};

/// A duration argument and where it was written.
pub struct Ttl {
    pub duration: Duration,
}

/// `#[cached(…)]`.
#[derive(Default)]
pub struct CachedArgs {
    pub key: Option<LitStr>,
    pub ttl: Option<Ttl>,
    pub none_ttl: Option<(Ttl, Span)>,
    pub cache: Option<Expr>,
    pub codec: Option<Path>,
    pub krate: Option<Path>,
}

/// `#[invalidates(…)]`.
#[derive(Default)]
pub struct InvalidatesArgs {
    pub patterns: Vec<LitStr>,
    pub cache: Option<Expr>,
    pub krate: Option<Path>,
}

const CACHED_ARGS: &[&str] = &["key", "ttl", "none_ttl", "cache", "codec", "crate"];
const INVALIDATES_ARGS: &[&str] = &["cache", "crate"];

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

    pub fn finish(self) -> syn::Result<()> {
        self.0.map_or(Ok(()), Err)
    }
}

/// Stores `value` unless `slot` is set, in which case the second one is reported.
fn set<T>(slot: &mut Option<T>, value: T, name: &syn::Ident, errors: &mut Errors) {
    if slot.is_some() {
        errors.push_at(name.span(), format!("duplicate `{name}` argument"));
    } else {
        *slot = Some(value);
    }
}

/// The name before `=`; `crate` is a keyword, so it is read separately.
fn parse_name(input: ParseStream) -> syn::Result<syn::Ident> {
    if input.peek(Token![crate]) {
        let token: Token![crate] = input.parse()?;
        return Ok(syn::Ident::new("crate", token.span));
    }
    input.call(syn::ext::IdentExt::parse_any)
}

fn unknown(name: &syn::Ident, valid: &[&str]) -> syn::Error {
    let list = valid
        .iter()
        .map(|v| format!("`{v}`"))
        .collect::<Vec<_>>()
        .join(", ");
    syn::Error::new(
        name.span(),
        format!("unknown argument `{name}`; expected one of {list}"),
    )
}

/// `ttl = 300` (seconds) or `ttl = "5m"` / `"1h30m"` / `"500ms"`.
fn parse_ttl(name: &syn::Ident, input: ParseStream) -> syn::Result<Ttl> {
    let lit: Lit = input.parse().map_err(|e| {
        syn::Error::new(
            e.span(),
            format!(
                "`{name}` takes seconds (`{name} = 300`) or a duration string (`{name} = \"5m\"`)"
            ),
        )
    })?;
    let duration = match &lit {
        Lit::Int(int) => Duration::from_secs(int.base10_parse::<u64>()?),
        Lit::Str(s) => humantime::parse_duration(&s.value()).map_err(|e| {
            syn::Error::new(
                s.span(),
                format!(
                    "invalid duration `{}`: {e}; write e.g. \"30s\", \"5m\", \"1h30m\"",
                    s.value()
                ),
            )
        })?,
        other => {
            return Err(syn::Error::new(
                other.span(),
                format!(
                    "`{name}` takes seconds (`{name} = 300`) or a duration string (`{name} = \"5m\"`)"
                ),
            ));
        }
    };
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

/// `crate = "::my::reexport"`.
fn parse_crate(input: ParseStream) -> syn::Result<Path> {
    let lit: LitStr = input.parse()?;
    lit.parse_with(Path::parse_mod_style)
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
) -> syn::Result<()> {
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
            errors.push(e);
            skip_to_comma(input);
            let _ = input.parse::<Token![,]>();
        }
    }
    errors.finish()
}

impl Parse for CachedArgs {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let mut args = CachedArgs::default();
        parse_list(input, |input, errors| {
            let name = parse_name(input)?;
            input.parse::<Token![=]>()?;
            match name.to_string().as_str() {
                "key" => set(&mut args.key, input.parse()?, &name, errors),
                "ttl" => set(&mut args.ttl, parse_ttl(&name, input)?, &name, errors),
                "none_ttl" => set(
                    &mut args.none_ttl,
                    (parse_ttl(&name, input)?, name.span()),
                    &name,
                    errors,
                ),
                "cache" => set(&mut args.cache, input.parse()?, &name, errors),
                "codec" => set(&mut args.codec, input.parse()?, &name, errors),
                "crate" => set(&mut args.krate, parse_crate(input)?, &name, errors),
                _ => return Err(unknown(&name, CACHED_ARGS)),
            }
            Ok(())
        })?;
        Ok(args)
    }
}

impl Parse for InvalidatesArgs {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let mut args = InvalidatesArgs::default();
        parse_list(input, |input, errors| {
            if input.peek(LitStr) {
                args.patterns.push(input.parse()?);
                return Ok(());
            }
            let name = parse_name(input)?;
            input.parse::<Token![=]>()?;
            match name.to_string().as_str() {
                "cache" => set(&mut args.cache, input.parse()?, &name, errors),
                "crate" => set(&mut args.krate, parse_crate(input)?, &name, errors),
                _ => return Err(unknown(&name, INVALIDATES_ARGS)),
            }
            Ok(())
        })?;
        Ok(args)
    }
}
