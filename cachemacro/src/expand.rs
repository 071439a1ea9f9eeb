//! Code generation. The function keeps its signature token for token; its
//! body becomes a call into `::cachemacro_runtime::__private` with the
//! original body as an `async move` block, so `return` and `?` keep working
//! and the future stays `Send` whenever the original was.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Expr, ItemFn, Path};

use crate::model::{CachedFn, InvalidatingFn, Param, Returns, Root, resolve};
use crate::template::{Segment, Template};

/// Statements that push one template's segments into `__cachemacro_k`.
///
/// A bare parameter is spanned at its type, so "`X` cannot be used in a
/// cache key" lands on the parameter; a field path is spanned at the
/// template, so "no field `usr_id`" lands on the string the user wrote.
fn key_pushes(template: &Template, func: &ItemFn, params: &[Param<'_>]) -> TokenStream {
    let lit_span = template.lit.span();
    let mut out = TokenStream::new();
    for segment in &template.segments {
        match segment {
            Segment::Lit(text) => out.extend(quote!(__cachemacro_k.lit(#text);)),
            Segment::Placeholder(p) => {
                let root = resolve(&p.root, template, func, params).expect("checked in the model");
                let (root_tokens, span) = match root {
                    Root::SelfValue(span) => (quote_spanned!(span=> self), lit_span),
                    Root::Param(param) => {
                        let ident = param.ident;
                        let span = if p.fields.is_empty() {
                            param.ty.span()
                        } else {
                            lit_span
                        };
                        (quote!(#ident), span)
                    }
                };
                let fields = p.fields.iter().map(|f| match f.parse::<u32>() {
                    Ok(index) => {
                        let index = syn::Index {
                            index,
                            span: lit_span,
                        };
                        quote!(.#index)
                    }
                    Err(_) => {
                        let ident = syn::Ident::new(f, lit_span);
                        quote!(.#ident)
                    }
                });
                let method = if p.hash {
                    format_ident!("hashed", span = span)
                } else {
                    format_ident!("part", span = span)
                };
                out.extend(
                    quote_spanned!(span=> __cachemacro_k.#method(&#root_tokens #(#fields)*);),
                );
            }
        }
    }
    out
}

fn build_key(
    template: &Template,
    func: &ItemFn,
    params: &[Param<'_>],
    krate: &Path,
) -> TokenStream {
    let pushes = key_pushes(template, func, params);
    let capacity = template.literal_len();
    quote! {{
        let mut __cachemacro_k = #krate::__private::KeyBuilder::new(#capacity);
        #pushes
        __cachemacro_k
    }}
}

fn cache_handle(cache: Option<&Expr>, krate: &Path) -> TokenStream {
    match cache {
        Some(expr) => quote_spanned!(expr.span()=> #krate::__private::cache_of(&(#expr))),
        None => quote!(#krate::__private::default_cache()),
    }
}

fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn function_name(func: &ItemFn) -> String {
    func.sig.ident.to_string()
}

/// Rebuilds the function with a new body.
fn with_body(func: &ItemFn, body: TokenStream) -> TokenStream {
    let ItemFn {
        attrs, vis, sig, ..
    } = func;
    quote! {
        #(#attrs)*
        #vis #sig {
            #body
        }
    }
}

pub fn cached(f: &CachedFn<'_>) -> TokenStream {
    let krate = &f.krate;
    let template = f.key.source();
    let name = function_name(f.func);
    let ttl = millis(f.ttl);
    let none_ttl = match f.none_ttl {
        Some(d) => {
            let ms = millis(d);
            quote!(::core::option::Option::Some(#krate::__private::millis(#ms)))
        }
        None => quote!(::core::option::Option::None),
    };
    let cache = cache_handle(f.cache, krate);
    let key = build_key(&f.key, f.func, &f.params, krate);
    let codec = match f.codec {
        Some(path) => quote!(#path),
        None => quote!(#krate::__private::Bincode),
    };
    let block = &f.func.block;
    // The stored type is named in the turbofish with the user's own tokens,
    // so "cannot be stored in the cache" points at the return type.
    let call = match &f.returns {
        Returns::Plain(Some(ty)) => {
            quote_spanned!(ty.span()=> #krate::__private::cached::<#codec, #ty, _>)
        }
        Returns::Plain(None) => quote!(#krate::__private::cached::<#codec, (), _>),
        Returns::Result { ok } => {
            quote_spanned!(ok.span()=> #krate::__private::cached_result::<#codec, #ok, _, _>)
        }
        Returns::Option { inner } => {
            quote_spanned!(inner.span()=> #krate::__private::cached_option::<#codec, #inner, _>)
        }
    };
    let body = quote! {
        static __CACHEMACRO_SITE: #krate::__private::Site = #krate::__private::Site {
            template: #template,
            function: ::core::concat!(::core::module_path!(), "::", #name),
            file: ::core::file!(),
            line: ::core::line!(),
            ttl: #krate::__private::millis(#ttl),
            none_ttl: #none_ttl,
        };
        let __cachemacro_cache = #cache;
        let __cachemacro_key = #key.key();
        #call(__cachemacro_cache, &__CACHEMACRO_SITE, __cachemacro_key, async move #block).await
    };
    with_body(f.func, body)
}

pub fn invalidates(f: &InvalidatingFn<'_>) -> TokenStream {
    let krate = &f.krate;
    let name = function_name(f.func);
    let cache = cache_handle(f.cache, krate);
    let plan = f.patterns.iter().map(|t| {
        let template = t.source();
        let key = build_key(t, f.func, &f.params, krate);
        let wildcard = t.wildcard;
        quote!((#template, #key.pattern(#wildcard)))
    });
    let block = &f.func.block;
    let call = match f.returns {
        Returns::Result { .. } => quote!(#krate::__private::invalidating_result),
        _ => quote!(#krate::__private::invalidating),
    };
    let body = quote! {
        static __CACHEMACRO_SITE: #krate::__private::InvalidationSite = #krate::__private::InvalidationSite {
            function: ::core::concat!(::core::module_path!(), "::", #name),
            file: ::core::file!(),
            line: ::core::line!(),
        };
        let __cachemacro_cache = #cache;
        let __cachemacro_plan: ::std::vec::Vec<#krate::__private::Planned> = ::std::vec![#(#plan),*];
        #call(__cachemacro_cache, &__CACHEMACRO_SITE, __cachemacro_plan, async move #block).await
    };
    with_body(f.func, body)
}

/// On any error: the function as written, plus the errors, so the rest of
/// the crate (and rust-analyzer) still sees it.
pub fn fallback(item: TokenStream, error: syn::Error) -> TokenStream {
    let error = error.to_compile_error();
    quote!(#item #error)
}
