//! The checked model of an attributed function: its template(s), settings
//! and return shape, holding references to the user's own tokens so that
//! expansion can point diagnostics at them.

use std::time::Duration;

use proc_macro2::Span;
use syn::spanned::Spanned;
use syn::{
    Expr, FnArg, GenericArgument, Ident, ItemFn, Pat, Path, PathArguments, ReturnType, Type,
};

use crate::args::{CachedArgs, Errors, InvalidatesArgs};
use crate::template::{self, Kind, Template};

/// How the function's value decides what is cached (or whether to invalidate).
pub enum Returns<'a> {
    /// Any other type: every value counts. `None` is `()`.
    Plain(Option<&'a Type>),
    /// `Result<T, E>` (any path ending in `Result`): only `Ok(T)` counts.
    Result { ok: &'a Type },
    /// `Option<T>`: `Some` is cached; `None` only with `none_ttl`.
    Option { inner: &'a Type },
}

/// A named parameter a placeholder may refer to.
pub struct Param<'a> {
    pub ident: &'a Ident,
    pub ty: &'a Type,
}

/// `self` or a named parameter: what a placeholder's root resolved to.
pub enum Root<'a> {
    SelfValue(Span),
    Param(&'a Param<'a>),
}

pub struct CachedFn<'a> {
    pub func: &'a ItemFn,
    pub key: Template,
    pub ttl: Duration,
    pub none_ttl: Option<Duration>,
    pub cache: Option<&'a Expr>,
    pub codec: Option<&'a Path>,
    pub krate: Path,
    pub returns: Returns<'a>,
    pub params: Vec<Param<'a>>,
}

pub struct InvalidatingFn<'a> {
    pub func: &'a ItemFn,
    pub patterns: Vec<Template>,
    pub cache: Option<&'a Expr>,
    pub krate: Path,
    pub returns: Returns<'a>,
    pub params: Vec<Param<'a>>,
}

fn default_crate() -> Path {
    syn::parse_quote!(::cachemacro_runtime)
}

fn params(func: &ItemFn) -> Vec<Param<'_>> {
    func.sig
        .inputs
        .iter()
        .filter_map(|arg| match arg {
            FnArg::Typed(pt) => match &*pt.pat {
                Pat::Ident(pi) => Some(Param {
                    ident: &pi.ident,
                    ty: &pt.ty,
                }),
                _ => None,
            },
            FnArg::Receiver(_) => None,
        })
        .collect()
}

/// The one generic argument of a path type's last segment named `name`.
fn last_segment_arg<'a>(ty: &'a Type, name: &str) -> Option<&'a Type> {
    let Type::Path(tp) = ty else { return None };
    let last = tp.path.segments.last()?;
    if last.ident != name {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    match args.args.first()? {
        GenericArgument::Type(t) => Some(t),
        _ => None,
    }
}

fn returns(func: &ItemFn) -> syn::Result<Returns<'_>> {
    let ty = match &func.sig.output {
        ReturnType::Default => return Ok(Returns::Plain(None)),
        ReturnType::Type(_, ty) => &**ty,
    };
    if let Type::ImplTrait(_) = ty {
        return Err(syn::Error::new(
            ty.span(),
            "cannot cache an `impl Trait` value: name a concrete type that implements `Serialize` and `Deserialize`",
        ));
    }
    if let Some(ok) = last_segment_arg(ty, "Result") {
        return Ok(Returns::Result { ok });
    }
    if let Some(inner) = last_segment_arg(ty, "Option") {
        return Ok(Returns::Option { inner });
    }
    Ok(Returns::Plain(Some(ty)))
}

fn require_async(func: &ItemFn, attr: &str, errors: &mut Errors) {
    if func.sig.asyncness.is_none() {
        errors.push_at(
            func.sig.fn_token.span,
            format!("`#[{attr}]` can only be used on an `async fn`; add `async` here"),
        );
    }
}

/// Resolves a placeholder's root to a parameter or `self`, or explains why not.
pub fn resolve<'a>(
    root: &str,
    template: &Template,
    func: &ItemFn,
    params: &'a [Param<'a>],
) -> syn::Result<Root<'a>> {
    if root == "self" {
        return match func.sig.receiver() {
            Some(r) => Ok(Root::SelfValue(r.self_token.span)),
            None => Err(syn::Error::new(
                template.lit.span(),
                "`<self…>` needs a method with a `self` receiver; this function has none",
            )),
        };
    }
    if let Some(p) = params.iter().find(|p| p.ident == root) {
        return Ok(Root::Param(p));
    }
    let mut names: Vec<String> = params.iter().map(|p| p.ident.to_string()).collect();
    if func.sig.receiver().is_some() {
        names.push("self".into());
    }
    let best = names
        .iter()
        .map(|n| (strsim::jaro_winkler(root, n), n))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0));
    let mut msg = format!(
        "unknown placeholder `<{root}>`: `{root}` is not a parameter of `{}`",
        func.sig.ident
    );
    match best {
        Some((_, name)) => msg.push_str(&format!("; did you mean `<{name}>`?")),
        None if names.is_empty() => msg.push_str(" (it has no named parameters)"),
        None => msg.push_str(&format!(
            "; its parameters are {}",
            names
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
    Err(syn::Error::new(template.lit.span(), msg))
}

fn check_placeholders(
    template: &Template,
    func: &ItemFn,
    params: &[Param<'_>],
    errors: &mut Errors,
) {
    for p in template.placeholders() {
        if let Err(e) = resolve(&p.root, template, func, params) {
            errors.push(e);
        }
    }
}

impl<'a> CachedFn<'a> {
    pub fn from_syn(args: &'a CachedArgs, func: &'a ItemFn) -> syn::Result<Self> {
        let mut errors = Errors::default();
        require_async(func, "cached", &mut errors);
        let params = params(func);
        let key = match &args.key {
            None => {
                errors.push_at(Span::call_site(), "missing `key = \"…\"`: name the cache entry, as in `#[cached(key = \"user:<user_id>\", ttl = \"5m\")]`");
                None
            }
            Some(lit) => match template::parse(lit, Kind::Key) {
                Ok(t) => {
                    check_placeholders(&t, func, &params, &mut errors);
                    Some(t)
                }
                Err(e) => {
                    errors.push(e);
                    None
                }
            },
        };
        if args.ttl.is_none() {
            errors.push_at(Span::call_site(), "missing `ttl`: say how long entries live, as in `ttl = 300` (seconds) or `ttl = \"5m\"`");
        }
        let returns = match returns(func) {
            Ok(r) => Some(r),
            Err(e) => {
                errors.push(e);
                None
            }
        };
        if let (Some((_, span)), Some(r)) = (&args.none_ttl, &returns) {
            if !matches!(r, Returns::Option { .. }) {
                errors.push_at(*span, "`none_ttl` caches `None` results, so it needs a function returning `Option<T>`");
            }
        }
        errors.finish()?;
        Ok(CachedFn {
            func,
            key: key.expect("checked"),
            ttl: args.ttl.as_ref().expect("checked").duration,
            none_ttl: args.none_ttl.as_ref().map(|(t, _)| t.duration),
            cache: args.cache.as_ref(),
            codec: args.codec.as_ref(),
            krate: args.krate.clone().unwrap_or_else(default_crate),
            returns: returns.expect("checked"),
            params,
        })
    }
}

impl<'a> InvalidatingFn<'a> {
    pub fn from_syn(args: &'a InvalidatesArgs, func: &'a ItemFn) -> syn::Result<Self> {
        let mut errors = Errors::default();
        require_async(func, "invalidates", &mut errors);
        let params = params(func);
        if args.patterns.is_empty() {
            errors.push_at(Span::call_site(), "`#[invalidates]` needs at least one key pattern, as in `#[invalidates(\"user:<user_id>\")]`");
        }
        let mut patterns = Vec::new();
        for lit in &args.patterns {
            match template::parse(lit, Kind::Pattern) {
                Ok(t) => {
                    check_placeholders(&t, func, &params, &mut errors);
                    patterns.push(t);
                }
                Err(e) => errors.push(e),
            }
        }
        let returns = returns(func).unwrap_or(Returns::Plain(None));
        errors.finish()?;
        Ok(InvalidatingFn {
            func,
            patterns,
            cache: args.cache.as_ref(),
            krate: args.krate.clone().unwrap_or_else(default_crate),
            returns,
            params,
        })
    }
}
