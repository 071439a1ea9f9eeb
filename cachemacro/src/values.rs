//! The values of attribute arguments: one reader per kind of value
//! (duration, string, list, percentage, β, predicate, path, expression),
//! each keeping the span of what it read and naming the argument in its
//! errors.

use std::fmt;
use std::time::Duration;

use proc_macro2::Span;
use syn::parse::ParseStream;
use syn::spanned::Spanned;
use syn::{Expr, Lit, LitBool, LitStr, Path, Token};

use crate::duration::parse_duration;

/// A duration argument.
pub struct Ttl {
    pub duration: Duration,
    /// The literal it was written as (`300`, `"5m"`).
    pub span: Span,
}

/// A known argument's name where it was written, with its example.
pub(crate) struct Name {
    pub(crate) text: &'static str,
    /// `ttl = "5m"`: shown when the value is missing or wrong.
    pub(crate) example: &'static str,
    pub(crate) span: Span,
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text)
    }
}

/// Checks that `value_span`'s value is the whole argument (`ttl = 60 * 5` is not).
pub(crate) fn end_of_value(
    input: ParseStream,
    name: &Name,
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
fn ttl_forms(name: &Name) -> String {
    format!(
        "seconds (`{name} = 300`) or a duration string (`{name} = \"5m\"`, `\"1h30m\"`, `\"500ms\"`)"
    )
}

/// `ttl = 300` (seconds) or `ttl = "5m"` / `"1h30m"` / `"500ms"`.
pub(crate) fn parse_ttl(name: &Name, input: ParseStream) -> syn::Result<Ttl> {
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
        Lit::Str(s) => parse_duration(s)?,
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
    Ok(Ttl {
        duration,
        span: lit.span(),
    })
}

/// A string literal argument (`key = "…"`).
pub(crate) fn parse_lit_str(name: &Name, input: ParseStream) -> syn::Result<LitStr> {
    let lit = input.parse::<LitStr>().map_err(|e| {
        syn::Error::new(
            e.span(),
            format!("`{name}` takes a string literal, as in `{}`", name.example),
        )
    })?;
    end_of_value(input, name, lit.span(), "a single string literal")?;
    Ok(lit)
}

/// `tags = ["a:<x>", "b"]`: a bracketed list of string literals.
pub(crate) fn parse_lit_list(name: &Name, input: ParseStream) -> syn::Result<Vec<LitStr>> {
    let wrong = |span: Span| {
        syn::Error::new(
            span,
            format!(
                "`{name}` takes a list of string literals, as in `{}`",
                name.example
            ),
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
pub(crate) fn parse_percent(name: &Name, input: ParseStream) -> syn::Result<(f64, Span)> {
    let lit = parse_lit_str(name, input)?;
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
                    "`{name}` takes a percentage below 100, as in `{}`; `{text}` is not one",
                    name.example
                ),
            )
        })?;
    Ok((value / 100.0, lit.span()))
}

/// `beta = 1.0`: a finite number, 0 or more.
pub(crate) fn parse_beta(name: &Name, input: ParseStream) -> syn::Result<(f64, Span)> {
    let wrong = |span: Span| {
        syn::Error::new(
            span,
            format!(
                "`{name}` takes a number, 0 or more, as in `{}` (0 turns early refresh off)",
                name.example
            ),
        )
    };
    if input.peek(Token![-]) {
        // `-1.0`: report the whole number, not just the sign.
        let minus: Token![-] = input.parse()?;
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
pub(crate) fn parse_predicate(name: &Name, input: ParseStream) -> syn::Result<Expr> {
    input.parse::<Expr>().map_err(|e| {
        syn::Error::new(
            e.span(),
            format!(
                "`{name}` takes a closure or function over a reference to the value, as in `{}`",
                name.example
            ),
        )
    })
}

/// `before = true`.
pub(crate) fn parse_bool(name: &Name, input: ParseStream) -> syn::Result<LitBool> {
    let lit = input.parse::<LitBool>().map_err(|e| {
        syn::Error::new(
            e.span(),
            format!("`{name}` takes `true` or `false`, as in `{}`", name.example),
        )
    })?;
    end_of_value(input, name, lit.span, "`true` or `false`")?;
    Ok(lit)
}

/// `crate = "::my::reexport"`.
pub(crate) fn parse_crate(name: &Name, input: ParseStream) -> syn::Result<Path> {
    let lit = parse_lit_str(name, input)?;
    lit.parse_with(Path::parse_mod_style).map_err(|_| {
        syn::Error::new(
            lit.span(),
            format!(
                "`crate` takes the path to `cachemacro_runtime` as a string, as in `{}`; `{}` is not a path",
                name.example,
                lit.value()
            ),
        )
    })
}

/// `codec = path::To::Codec`.
pub(crate) fn parse_codec(name: &Name, input: ParseStream) -> syn::Result<Path> {
    let path = input.parse::<Path>().map_err(|e| {
        syn::Error::new(
            e.span(),
            format!(
                "`{name}` takes the path of a type implementing `Codec`, as in `{}`",
                name.example
            ),
        )
    })?;
    end_of_value(
        input,
        name,
        path.span(),
        "the path of a type implementing `Codec`",
    )?;
    Ok(path)
}

/// `cache = <expr>`.
pub(crate) fn parse_cache(name: &Name, input: ParseStream) -> syn::Result<Expr> {
    input.parse::<Expr>().map_err(|e| {
        syn::Error::new(
            e.span(),
            format!(
                "`{name}` takes an expression giving a `Cache`, `&Cache` or `Arc<Cache>`, as in `{}`",
                name.example
            ),
        )
    })
}
