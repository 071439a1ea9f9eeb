//! The checked model of an attributed function: its template(s), settings
//! and return shape, holding references to the user's own tokens so that
//! expansion can point diagnostics at them.

use std::time::Duration;

use proc_macro2::Span;
use quote::ToTokens;
use syn::{
    Expr, FnArg, GenericArgument, Ident, ItemFn, LitStr, Pat, Path, PathArguments, ReturnType, Type,
};

use crate::args::{CachedArgs, InvalidatesArgs};
use crate::errors::{Errors, closest};
use crate::template::{self, Kind, Placeholder, Template};

/// How the function's value decides what is cached (or whether to invalidate).
pub enum Returns<'a> {
    /// Any other type: every value counts. `None` is `()`.
    Plain(Option<&'a Type>),
    /// `Result<T, E>` (any path ending in `Result`): only `Ok(T)` counts.
    /// `err` is `E`, or the whole type when the path names no second argument.
    Result { ok: &'a Type, err: &'a Type },
    /// `Option<T>`: `Some` is cached; `None` only with `none_ttl`.
    Option { inner: &'a Type },
}

/// A named parameter a placeholder may refer to.
#[derive(Clone, Copy)]
pub struct Param<'a> {
    pub ident: &'a Ident,
    pub ty: &'a Type,
}

/// `self` or a named parameter: what a placeholder's root resolved to.
#[derive(Clone, Copy)]
pub enum Root<'a> {
    SelfValue,
    Param(Param<'a>),
}

/// A checked template with the root of each placeholder, in order.
pub struct Key<'a> {
    pub template: Template,
    pub roots: Vec<Root<'a>>,
}

/// An argument a spawnable body copies (`stale`, `timeout`).
pub enum Copied<'a> {
    /// `name: &T` (lent back as `&T` from an owned copy) or `name: T`.
    Param {
        ident: &'a Ident,
        ty: &'a Type,
        by_ref: bool,
        mutability: Option<syn::token::Mut>,
    },
    /// `&self`, `self` or `self: Arc<Self>`; `self` is renamed in the body.
    Receiver {
        receiver: &'a syn::Receiver,
        by_ref: bool,
    },
}

pub struct CachedFn<'a> {
    pub func: &'a ItemFn,
    pub key: Key<'a>,
    pub ttl: Duration,
    pub none_ttl: Option<Duration>,
    pub cache: Option<&'a Expr>,
    pub codec: Option<&'a Path>,
    pub krate: Path,
    pub returns: Returns<'a>,
    pub tags: Vec<Key<'a>>,
    /// `None`: the cache's default.
    pub lock: Option<bool>,
    /// Fraction of the TTL, 0 to < 1; `None`: the cache's default.
    pub jitter: Option<f64>,
    pub cache_if: Option<&'a Expr>,
    pub unless: Option<&'a Expr>,
    /// `None`: the cache's default.
    pub beta: Option<f64>,
    pub stale: Option<Duration>,
    pub fail_safe: Option<Duration>,
    pub timeout: Option<Duration>,
    pub hard_timeout: Option<Duration>,
    /// `Some(false)`: skip the in-process tier; `None`: the cache's setting.
    pub local: Option<bool>,
    /// The longest an entry lives in the in-process tier.
    pub local_ttl: Option<Duration>,
    /// With `stale` or `timeout` the body can run in a task of its own: the
    /// argument that asks for it, and the arguments it copies.
    pub spawn: Option<(Span, Vec<Copied<'a>>)>,
}

pub struct InvalidatingFn<'a> {
    pub func: &'a ItemFn,
    pub patterns: Vec<Key<'a>>,
    pub tags: Vec<Key<'a>>,
    pub before: bool,
    pub cache: Option<&'a Expr>,
    pub krate: Path,
    pub returns: Returns<'a>,
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

/// Generic argument `nth` (a type) of a path type's last segment named
/// `name`: `T` (0) or `E` (1) of `Result<T, E>`.
fn last_segment_arg<'a>(ty: &'a Type, name: &str, nth: usize) -> Option<&'a Type> {
    let Type::Path(tp) = ty else { return None };
    let last = tp.path.segments.last()?;
    if last.ident != name {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    match args.args.iter().nth(nth)? {
        GenericArgument::Type(t) => Some(t),
        _ => None,
    }
}

/// What a body that may run in a task of its own copies, or why it cannot:
/// a `&mut` argument, or a pattern other than a plain name.
fn copied<'a>(func: &'a ItemFn, why: &str, errors: &mut Errors) -> Vec<Copied<'a>> {
    let mut out = Vec::new();
    for arg in &func.sig.inputs {
        match arg {
            FnArg::Receiver(receiver) => {
                let by_ref = match &*receiver.ty {
                    Type::Reference(r) if r.mutability.is_some() => {
                        errors.push_at(
                            receiver.self_token.span,
                            format!("{why} runs the body in a task of its own, which cannot borrow `&mut self`"),
                        );
                        continue;
                    }
                    Type::Reference(_) => true,
                    _ => false,
                };
                out.push(Copied::Receiver { receiver, by_ref });
            }
            FnArg::Typed(pt) => {
                let by_ref = match &*pt.ty {
                    Type::Reference(r) if r.mutability.is_some() => {
                        errors.push(syn::Error::new_spanned(
                            &pt.ty,
                            format!("{why} runs the body in a task of its own, which cannot borrow a `&mut` argument"),
                        ));
                        continue;
                    }
                    Type::Reference(_) => true,
                    _ => false,
                };
                match &*pt.pat {
                    Pat::Ident(pi) if pi.by_ref.is_none() && pi.subpat.is_none() => {
                        out.push(Copied::Param {
                            ident: &pi.ident,
                            ty: &pt.ty,
                            by_ref,
                            mutability: pi.mutability,
                        });
                    }
                    Pat::Wild(_) => {}
                    other => errors.push_at(
                        syn::spanned::Spanned::span(other),
                        format!("{why} copies each argument by name for its background load: bind this one to a plain name"),
                    ),
                }
            }
        }
    }
    out
}

/// The first `impl` keyword anywhere in `tokens` (`impl Trait`, nested or not).
fn find_impl(tokens: proc_macro2::TokenStream) -> Option<Span> {
    tokens.into_iter().find_map(|tt| match tt {
        proc_macro2::TokenTree::Ident(i) if i == "impl" => Some(i.span()),
        proc_macro2::TokenTree::Group(g) => find_impl(g.stream()),
        _ => None,
    })
}

fn returns(func: &ItemFn) -> syn::Result<Returns<'_>> {
    let ty = match &func.sig.output {
        ReturnType::Default => return Ok(Returns::Plain(None)),
        ReturnType::Type(_, ty) => &**ty,
    };
    if let Some(span) = find_impl(ty.to_token_stream()) {
        return Err(syn::Error::new(
            span,
            "`#[cached]` cannot store an `impl Trait` value: name a concrete type that implements `Serialize` and `Deserialize`",
        ));
    }
    if let Some(ok) = last_segment_arg(ty, "Result", 0) {
        let err = last_segment_arg(ty, "Result", 1).unwrap_or(ty);
        return Ok(Returns::Result { ok, err });
    }
    if let Some(inner) = last_segment_arg(ty, "Option", 0) {
        return Ok(Returns::Option { inner });
    }
    Ok(Returns::Plain(Some(ty)))
}

fn require_async(func: &ItemFn, attr: &str, errors: &mut Errors) {
    if func.sig.asyncness.is_none() {
        errors.push_at(
            func.sig.fn_token.span,
            format!("`#[{attr}]` can only be used on an `async fn`; add `async` before `fn`"),
        );
    }
}

/// Resolves a placeholder's root to a parameter or `self`, or explains why
/// not, at the placeholder.
fn resolve<'a>(
    placeholder: &Placeholder,
    func: &ItemFn,
    params: &[Param<'a>],
) -> syn::Result<Root<'a>> {
    let root = placeholder.root.as_str();
    if root == "self" {
        return match func.sig.receiver() {
            Some(_) => Ok(Root::SelfValue),
            None => Err(syn::Error::new(
                placeholder.span,
                format!(
                    "`{}` needs a method with a `self` receiver; `{}` has none",
                    placeholder.text, func.sig.ident
                ),
            )),
        };
    }
    if let Some(p) = params.iter().find(|p| p.ident == root) {
        return Ok(Root::Param(*p));
    }
    let mut names: Vec<String> = params.iter().map(|p| p.ident.to_string()).collect();
    if func.sig.receiver().is_some() {
        names.push("self".into());
    }
    let best = closest(root, names.iter().map(String::as_str));
    let mut msg = format!(
        "unknown placeholder `<{root}>`: `{root}` is not a parameter of `{}`",
        func.sig.ident
    );
    match best {
        Some(name) => msg.push_str(&format!("; did you mean `<{name}>`?")),
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
    Err(syn::Error::new(placeholder.span, msg))
}

/// Parses `lit` as a template of `kind` and resolves its placeholders;
/// `None` when anything is wrong (the errors are in `errors`).
fn check_template<'a>(
    lit: &LitStr,
    kind: Kind,
    func: &ItemFn,
    params: &[Param<'a>],
    errors: &mut Errors,
) -> Option<Key<'a>> {
    let template = match template::parse(lit, kind) {
        Ok(t) => t,
        Err(e) => {
            errors.push(e);
            return None;
        }
    };
    let mut roots = Vec::new();
    let mut ok = true;
    for p in template.placeholders() {
        match resolve(p, func, params) {
            Ok(root) => roots.push(root),
            Err(e) => {
                errors.push(e);
                ok = false;
            }
        }
    }
    ok.then_some(Key { template, roots })
}

/// For the impossible case of no error and no value: an error, not a panic.
fn internal() -> syn::Error {
    syn::Error::new(
        Span::call_site(),
        "internal error in cachemacro: an argument was checked but not kept; please report this",
    )
}

impl<'a> CachedFn<'a> {
    pub fn from_syn(args: &'a CachedArgs, func: &'a ItemFn) -> syn::Result<Self> {
        let mut errors = Errors::from(args.errors.clone());
        // A misspelt or malformed argument explains a "missing" one already.
        let args_ok = errors.is_empty();
        require_async(func, "cached", &mut errors);
        let params = params(func);
        let key = match &args.key {
            None => {
                if args_ok {
                    errors.push_at(Span::call_site(), "missing `key = \"…\"`: name the cache entry, as in `#[cached(key = \"user:<user_id>\", ttl = \"5m\")]`");
                }
                None
            }
            Some(lit) => check_template(lit, Kind::Key, func, &params, &mut errors),
        };
        let tag_lits = args.tags.as_deref().unwrap_or_default();
        let tags: Vec<Key<'a>> = tag_lits
            .iter()
            .filter_map(|lit| check_template(lit, Kind::Tag, func, &params, &mut errors))
            .collect();
        if args.ttl.is_none() && args_ok {
            errors.push_at(Span::call_site(), "missing `ttl`: say how long entries live, as in `ttl = 300` (seconds) or `ttl = \"5m\"`");
        }
        let returns = match returns(func) {
            Ok(r) => Some(r),
            Err(e) => {
                errors.push(e);
                None
            }
        };
        if let (Some((_, span)), Some(r)) = (&args.none_ttl, &returns)
            && !matches!(r, Returns::Option { .. })
        {
            errors.push_at(
                *span,
                "`none_ttl` caches `None` results, so it needs a function returning `Option<T>`",
            );
        }
        let duration =
            |arg: &Option<(crate::args::Ttl, Span)>| arg.as_ref().map(|(t, _)| t.duration);
        if let Some((soft, span)) = &args.timeout {
            if args.stale.is_none() && args.fail_safe.is_none() {
                errors.push_at(*span, "`timeout` serves the last value when a load is slow, so entries must be kept past their TTL: add `fail_safe = \"…\"` or `stale = \"…\"` (or use `hard_timeout` to give the load up)");
            }
            // At the value: the two durations are what to change.
            if duration(&args.hard_timeout).is_some_and(|hard| hard <= soft.duration) {
                errors.push_at(soft.span, "`timeout` must be shorter than `hard_timeout`: past `timeout` an old value is served, past `hard_timeout` the load is given up");
            }
        }
        if let (Some((_, span)), Some(r)) = (&args.hard_timeout, &returns)
            && !matches!(r, Returns::Result { .. })
        {
            errors.push_at(*span, "`hard_timeout` gives a slow load up with an error, so it needs a function returning `Result<T, E>` with `E: From<cachemacro_runtime::LoadTimeout>`");
        }
        if let (Some((_, span)), Some(local)) = (&args.local_ttl, &args.local)
            && !local.value
        {
            errors.push_at(*span, "`local_ttl` has no effect with `local = false`: this function's entries skip the in-process tier; remove one of the two");
        }
        let spawn_arg = args
            .stale
            .as_ref()
            .map(|(_, span)| (*span, "`stale`"))
            .or(args.timeout.as_ref().map(|(_, span)| (*span, "`timeout`")));
        let spawn = spawn_arg.map(|(span, why)| (span, copied(func, why, &mut errors)));
        errors.finish()?;
        let (Some(key), Some(ttl), Some(returns)) = (key, &args.ttl, returns) else {
            return Err(internal());
        };
        if tags.len() != tag_lits.len() {
            return Err(internal());
        }
        Ok(CachedFn {
            func,
            key,
            ttl: ttl.duration,
            none_ttl: args.none_ttl.as_ref().map(|(t, _)| t.duration),
            cache: args.cache.as_ref(),
            codec: args.codec.as_ref(),
            krate: args.krate.clone().unwrap_or_else(default_crate),
            returns,
            tags,
            lock: args.lock.as_ref().map(|b| b.value),
            jitter: args.jitter.map(|(j, _)| j),
            cache_if: args.cache_if.as_ref(),
            unless: args.unless.as_ref(),
            beta: args.beta.map(|(b, _)| b),
            stale: duration(&args.stale),
            fail_safe: duration(&args.fail_safe),
            timeout: duration(&args.timeout),
            hard_timeout: duration(&args.hard_timeout),
            local: args.local.as_ref().map(|b| b.value),
            local_ttl: duration(&args.local_ttl),
            spawn,
        })
    }
}

impl<'a> InvalidatingFn<'a> {
    pub fn from_syn(args: &'a InvalidatesArgs, func: &'a ItemFn) -> syn::Result<Self> {
        let mut errors = Errors::from(args.errors.clone());
        let args_ok = errors.is_empty();
        require_async(func, "invalidates", &mut errors);
        let params = params(func);
        if args.patterns.is_empty() && args.tags.is_empty() && args_ok {
            errors.push_at(Span::call_site(), "`#[invalidates]` needs at least one key pattern or tag, as in `#[invalidates(\"user:<user_id>\")]` or `#[invalidates(tag = \"user:<user_id>\")]`");
        }
        let patterns: Vec<Key<'a>> = args
            .patterns
            .iter()
            .filter_map(|lit| check_template(lit, Kind::Pattern, func, &params, &mut errors))
            .collect();
        let tags: Vec<Key<'a>> = args
            .tags
            .iter()
            .filter_map(|lit| check_template(lit, Kind::Tag, func, &params, &mut errors))
            .collect();
        // Only `Result` matters here (invalidate on `Ok`); any other type,
        // `impl Trait` included, invalidates after every call.
        let returns = returns(func).unwrap_or(Returns::Plain(None));
        errors.finish()?;
        if patterns.len() != args.patterns.len() || tags.len() != args.tags.len() {
            return Err(internal());
        }
        Ok(InvalidatingFn {
            func,
            patterns,
            tags,
            before: args.before.as_ref().is_some_and(|b| b.value),
            cache: args.cache.as_ref(),
            krate: args.krate.clone().unwrap_or_else(default_crate),
            returns,
        })
    }
}
