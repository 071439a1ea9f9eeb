//! Code generation. The function keeps its signature token for token; its
//! body becomes a call into `::cachemacro_runtime::__private` with the
//! original body as an `async move` block, so `return` and `?` keep working
//! and the future stays `Send` whenever the original was.

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Expr, ItemFn, Member, Path};

use crate::model::{CachedFn, Copied, InvalidatingFn, Key, Returns, Root};
use crate::template::Segment;

/// `tokens` with every span set to `span`, one of the user's: for generated
/// tokens whose errors should be reported there, as if the user wrote them.
fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|tt| match tt {
            TokenTree::Group(g) => {
                let mut group = proc_macro2::Group::new(g.delimiter(), respan(g.stream(), span));
                group.set_span(span);
                TokenTree::Group(group)
            }
            mut other => {
                other.set_span(span);
                other
            }
        })
        .collect()
}

/// Statements that push one template's segments into `__cachemacro_k`.
///
/// A bare parameter is spanned at its type, so "`X` cannot be used in a
/// cache key" lands on the parameter's type. A field path (`<set.id>`,
/// `<self.id>`) is spanned at the template, so "no field `usr_id`" lands on
/// the string the user wrote; it carries the macro's own hygiene there, one
/// context for the whole expression (else rustc widens the span to the
/// whole attribute) and no offer to "fix" the string into a bare field name.
/// Where the compiler allows, that span is the placeholder's own `<…>`
/// inside the string; on stable rustc it is the whole string.
fn key_pushes(key: &Key<'_>) -> TokenStream {
    let mut out = TokenStream::new();
    let mut roots = key.roots.iter();
    for segment in &key.template.segments {
        match segment {
            Segment::Lit(text) => out.extend(quote!(__cachemacro_k.lit(#text);)),
            Segment::Placeholder(p) => {
                let in_template = Span::call_site().located_at(p.span);
                let Some(root) = roots.next() else {
                    // The model resolves every placeholder; never reached.
                    continue;
                };
                let (span, root) = match root {
                    Root::Param(param) if p.fields.is_empty() => {
                        let span = param.ty.span();
                        let mut ident = param.ident.clone();
                        ident.set_span(ident.span().located_at(span));
                        (span, ident.into_token_stream())
                    }
                    Root::Param(param) => {
                        let mut ident = param.ident.clone();
                        ident.set_span(in_template);
                        (in_template, ident.into_token_stream())
                    }
                    Root::SelfValue => (in_template, quote_spanned!(in_template=> self)),
                };
                let fields = p.fields.iter().map(|f| match f {
                    Member::Named(ident) => {
                        let mut ident = ident.clone();
                        ident.set_span(in_template);
                        quote_spanned!(in_template=> .#ident)
                    }
                    Member::Unnamed(index) => {
                        let index = syn::Index {
                            index: index.index,
                            span: in_template,
                        };
                        quote_spanned!(in_template=> .#index)
                    }
                });
                let method = if p.hash {
                    format_ident!("hashed", span = span)
                } else {
                    format_ident!("part", span = span)
                };
                out.extend(quote_spanned!(span=> __cachemacro_k.#method(&#root #(#fields)*);));
            }
        }
    }
    out
}

fn build_key(key: &Key<'_>) -> TokenStream {
    let pushes = key_pushes(key);
    // Room for the literal text and a typical value per placeholder, so
    // building a key is one allocation.
    let placeholders = key
        .template
        .segments
        .iter()
        .filter(|s| matches!(s, Segment::Placeholder(_)))
        .count();
    let capacity = key.template.literal_len() + 16 * placeholders;
    quote! {{
        let mut __cachemacro_k = __cachemacro_private::KeyBuilder::new(#capacity);
        #pushes
        __cachemacro_k
    }}
}

/// The runtime's `__private` module (and `Cache`) under local names, so
/// that the path the user gave with `crate = "…"` is resolved (and, if
/// wrong, reported) once, at the string the user wrote.
fn use_private(krate: &Path, cache: Option<&Expr>) -> TokenStream {
    match cache {
        Some(_) => {
            quote!(use #krate::__private::{self as __cachemacro_private, Cache as __CachemacroCache};)
        }
        None => quote!(use #krate::__private as __cachemacro_private;),
    }
}

/// `__cachemacro_private::#function`, every token at `location`.
fn private_fn(function: &str, location: Span) -> TokenStream {
    let function = syn::Ident::new(function, Span::call_site());
    respan(quote!(__cachemacro_private::#function), location)
}

/// `#callee(#args)`, the parentheses at `location`: with the callee's
/// first token there too, the whole call expression is spanned there.
fn call(callee: TokenStream, args: TokenStream, location: Span) -> TokenStream {
    let mut group = proc_macro2::Group::new(proc_macro2::Delimiter::Parenthesis, args);
    group.set_span(location);
    quote!(#callee #group)
}

/// `let __cachemacro_cache: &Cache = …;` for `cache = <expr>`, or the
/// process default: a borrow, so a call clones no handle.
///
/// `&(<expr>)` with the type written: deref coercion turns a `Cache`,
/// `&Cache`, `Arc<Cache>`, `LazyLock<Cache>` static, … into `&Cache`, and
/// anything else is one "expected `&Cache`" error spanning the user's
/// expression.
fn cache_handle(cache: Option<&Expr>) -> TokenStream {
    let Some(expr) = cache else {
        return quote! {
            let __cachemacro_cache: &__cachemacro_private::Cache = __cachemacro_private::default_cache();
        };
    };
    let tokens = expr.to_token_stream();
    let first = expr.span();
    let last = tokens
        .clone()
        .into_iter()
        .last()
        .map_or(first, |tt| tt.span());
    let mut parenthesized = proc_macro2::Group::new(proc_macro2::Delimiter::Parenthesis, tokens);
    parenthesized.set_span(last);
    let ty = respan(quote!(&__CachemacroCache), first);
    let borrow = quote_spanned!(first=> &#parenthesized);
    quote!(let __cachemacro_cache: #ty = #borrow;)
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

fn option(value: Option<TokenStream>) -> TokenStream {
    match value {
        Some(v) => quote!(::core::option::Option::Some(#v)),
        None => quote!(::core::option::Option::None),
    }
}

fn option_millis(d: Option<std::time::Duration>) -> TokenStream {
    option(d.map(|d| {
        let ms = millis(d);
        quote!(__cachemacro_private::millis(#ms))
    }))
}

/// A body that can run in a task of its own: a closure, called only when a
/// load starts, that copies each argument (`own_ref` lends a `&T` back from
/// an owned copy) and moves the copies into the body. Copies are spanned at
/// each parameter's type (the referent of a `&T`), so a type that cannot be
/// copied is reported there, once.
fn spawnable(block: &syn::Block, copied: &[Copied<'_>], span: Span) -> TokenStream {
    let mut copies = TokenStream::new();
    let mut rebinds = TokenStream::new();
    let mut this = None;
    for (i, copy) in copied.iter().enumerate() {
        let tmp = format_ident!("__cachemacro_arg{}", i);
        // What is copied, where a copy that fails is reported, and the name
        // the body sees it by (`self` is renamed: `let self` is not allowed).
        let (source, at, by_ref, mutability, bound) = match copy {
            Copied::Param {
                ident,
                ty,
                by_ref,
                mutability,
            } => {
                // At the type copied: `Conn` of `&Conn`.
                let at = match ty {
                    syn::Type::Reference(r) => r.elem.span(),
                    other => other.span(),
                };
                (
                    ident.to_token_stream(),
                    at,
                    *by_ref,
                    *mutability,
                    (*ident).clone(),
                )
            }
            Copied::Receiver { receiver, by_ref } => {
                let token = receiver.self_token;
                let renamed = syn::Ident::new("__cachemacro_self", token.span);
                this = Some(renamed.clone());
                (
                    token.to_token_stream(),
                    token.span,
                    *by_ref,
                    receiver.mutability,
                    renamed,
                )
            }
        };
        let (copy, lend) = if by_ref {
            (
                quote_spanned!(at=> __cachemacro_private::own_ref::<_>(#source)),
                quote!(#tmp.get()),
            )
        } else {
            (
                quote_spanned!(at=> __cachemacro_private::own::<_>(&#source)),
                quote!(#tmp),
            )
        };
        copies.extend(quote_spanned!(at=> let #tmp = #copy;));
        rebinds
            .extend(quote!(#[allow(unused_variables, unused_mut)] let #mutability #bound = #lend;));
    }
    let body = match &this {
        Some(renamed) => rename_self(block.to_token_stream(), renamed),
        None => block.to_token_stream(),
    };
    let spawnable = respan(quote!(__cachemacro_private::Spawnable), span);
    quote!(#spawnable(|| { #copies async move { #rebinds #body } }))
}

/// `self` in a method body, renamed to the copy a background load owns
/// (`let self = …` is not allowed). `self::path` is left alone, and so is
/// every nested `fn`, `impl` or `trait` item, which has its own `self`;
/// macro arguments are renamed too, as they are plain tokens.
fn rename_self(tokens: TokenStream, renamed: &syn::Ident) -> TokenStream {
    let mut out = Vec::new();
    let mut iter = tokens.into_iter().peekable();
    while let Some(tt) = iter.next() {
        match tt {
            TokenTree::Ident(ident) if ident == "self" => {
                let is_path =
                    matches!(iter.peek(), Some(TokenTree::Punct(p)) if p.as_char() == ':');
                if is_path {
                    out.push(TokenTree::Ident(ident));
                } else {
                    out.push(TokenTree::Ident(syn::Ident::new(
                        &renamed.to_string(),
                        ident.span(),
                    )));
                }
            }
            TokenTree::Ident(ident) if ident == "impl" || ident == "trait" || ident == "fn" => {
                // `fn(u8)` is a type; `fn name` an item, copied whole.
                let item = ident != "fn" || matches!(iter.peek(), Some(TokenTree::Ident(_)));
                out.push(TokenTree::Ident(ident));
                if item {
                    for next in iter.by_ref() {
                        let body = matches!(&next, TokenTree::Group(g) if g.delimiter() == proc_macro2::Delimiter::Brace);
                        out.push(next);
                        if body {
                            break;
                        }
                    }
                }
            }
            TokenTree::Group(group) => {
                let mut inner = proc_macro2::Group::new(
                    group.delimiter(),
                    rename_self(group.stream(), renamed),
                );
                inner.set_span(group.span());
                out.push(TokenTree::Group(inner));
            }
            other => out.push(other),
        }
    }
    out.into_iter().collect()
}

pub fn cached(f: &CachedFn<'_>) -> TokenStream {
    let template = f.key.template.source();
    let name = function_name(f.func);
    let ttl = millis(f.ttl);
    let none_ttl = match f.none_ttl {
        Some(d) => {
            let ms = millis(d);
            quote!(::core::option::Option::Some(__cachemacro_private::millis(#ms)))
        }
        None => quote!(::core::option::Option::None),
    };
    let cache = cache_handle(f.cache);
    let key = build_key(&f.key);
    let tags = f.tags.iter().map(build_key);
    let tag_templates = f.tags.iter().map(|t| t.template.source());
    // Everything that requires the stored type to be `Cacheable` (the
    // callee's bounds, the call, `.await`) is spanned at the stored type:
    // the user's return type. rustc reports an unmet bound once per span,
    // so "`X` cannot be stored in the cache" appears once, there. The
    // stored type itself is inferred from the body, not repeated here.
    let (function, stored, holes) = match &f.returns {
        Returns::Plain(Some(ty)) => ("cached", ty.span(), quote!(_, _, _)),
        Returns::Plain(None) => ("cached", Span::call_site(), quote!(_, _, _)),
        Returns::Result { ok, .. } => ("cached_result", ok.span(), quote!(_, _, _, _)),
        Returns::Option { inner } => ("cached_option", inner.span(), quote!(_, _, _)),
    };
    // `cache_if` / `unless` see a reference to the value that would be
    // stored (the `Ok` or `Some` value). Naming its type lets a bare
    // closure such as `|rows| !rows.is_empty()` type-check.
    let keep = if f.cache_if.is_none() && f.unless.is_none() {
        quote!(__cachemacro_private::always)
    } else {
        let value_ty = match &f.returns {
            Returns::Plain(Some(ty)) => ty.to_token_stream(),
            Returns::Plain(None) => quote!(()),
            Returns::Result { ok, .. } => ok.to_token_stream(),
            Returns::Option { inner } => inner.to_token_stream(),
        };
        let cache_if = f.cache_if.map_or_else(
            || quote!(__cachemacro_private::always),
            |e| e.to_token_stream(),
        );
        let unless = f.unless.map_or_else(
            || quote!(__cachemacro_private::never),
            |e| e.to_token_stream(),
        );
        quote!(__cachemacro_private::keep::<#value_ty, _, _>(#cache_if, #unless))
    };
    let lock = option(f.lock.map(|b| quote!(#b)));
    let jitter = option(f.jitter.map(|j| quote!(#j)));
    let beta = option(f.beta.map(|b| quote!(#b)));
    let stale = option_millis(f.stale);
    let fail_safe = option_millis(f.fail_safe);
    let timeout = option_millis(f.timeout);
    let hard_timeout = option_millis(f.hard_timeout);
    let local = option(f.local.map(|b| quote!(#b)));
    let local_ttl = option_millis(f.local_ttl);
    // `Result` only: the `Err` for a load given up at `hard_timeout`. `E`
    // keeps the user's spans, so a missing `From<LoadTimeout>` is reported
    // on the error type.
    let on_timeout = match (&f.returns, f.hard_timeout) {
        (Returns::Result { err, .. }, Some(_)) => {
            let call = respan(quote!(__cachemacro_private::on_timeout::<), err.span());
            let close = respan(quote!(>()), err.span());
            quote!(, #call #err #close)
        }
        (Returns::Result { .. }, None) => quote!(, ::core::option::Option::None),
        _ => TokenStream::new(),
    };
    // A user's codec keeps its own spans: "not a `Codec`" lands on it.
    let codec = match f.codec {
        Some(path) => path.to_token_stream(),
        None => respan(quote!(__cachemacro_private::Bincode), stored),
    };
    let callee = private_fn(function, stored);
    let rest = respan(quote!(, #holes >), stored);
    let turbofish = respan(quote!(::<), stored);
    let block = &f.func.block;
    let load = match &f.spawn {
        None => quote!(__cachemacro_private::Inline(async move #block)),
        Some((span, copied)) => spawnable(block, copied, *span),
    };
    // Whether the stored type can be kept in memory as itself (`Clone +
    // Send + Sync`), found without a bound on it: autoref picks the typed
    // path when it qualifies, bytes otherwise (and in generic code).
    let stored_ty = match &f.returns {
        Returns::Plain(Some(ty)) => ty.to_token_stream(),
        Returns::Plain(None) => quote!(()),
        Returns::Result { ok, .. } => ok.to_token_stream(),
        Returns::Option { inner } => quote!(::core::option::Option<#inner>),
    };
    let typed = quote! {{
        #[allow(unused_imports)]
        use __cachemacro_private::{ViaBytes as _, ViaClone as _};
        (&&__cachemacro_private::Probe::<#stored_ty>::new()).typed()
    }};
    let invoke = call(
        quote!(#callee #turbofish #codec #rest),
        quote!(__cachemacro_cache, &__CACHEMACRO_SITE, __cachemacro_key, #load, #keep, #typed #on_timeout),
        stored,
    );
    let await_ = respan(quote!(.await), stored);
    let use_private = use_private(&f.krate, f.cache);
    let body = quote! {
        #use_private
        static __CACHEMACRO_SITE: __cachemacro_private::Site = __cachemacro_private::Site {
            template: #template,
            function: ::core::concat!(::core::module_path!(), "::", #name),
            file: ::core::file!(),
            line: ::core::line!(),
            tags: &[#(#tag_templates),*],
            options: __cachemacro_private::EntryOptions::__attribute(
                #template,
                __cachemacro_private::millis(#ttl),
                #none_ttl,
                #stale,
                #fail_safe,
                #timeout,
                #hard_timeout,
                #lock,
                #beta,
                #jitter,
                #local,
                #local_ttl,
            ),
        };
        __cachemacro_private::inventory::submit! {
            __cachemacro_private::Registration::Cached(&__CACHEMACRO_SITE)
        }
        #cache
        let __cachemacro_key = __cachemacro_private::request(#key.key(), ::std::vec![#(#tags.key()),*]);
        #invoke #await_
    };
    with_body(f.func, body)
}

pub fn invalidates(f: &InvalidatingFn<'_>) -> TokenStream {
    let name = function_name(f.func);
    let cache = cache_handle(f.cache);
    let plan = f.patterns.iter().map(|key| {
        let template = key.template.source();
        let wildcard = key.template.wildcard;
        let key = build_key(key);
        quote!((#template, #key.pattern(#wildcard)))
    });
    let tag_plan = f.tags.iter().map(|key| {
        let template = key.template.source();
        let key = build_key(key);
        quote!((#template, #key.tag()))
    });
    let pattern_templates = f.patterns.iter().map(|t| t.template.source());
    let tag_templates = f.tags.iter().map(|t| t.template.source());
    let before = f.before;
    let block = &f.func.block;
    let call = match f.returns {
        Returns::Result { .. } => quote!(__cachemacro_private::invalidating_result),
        _ => quote!(__cachemacro_private::invalidating),
    };
    let use_private = use_private(&f.krate, f.cache);
    let body = quote! {
        #use_private
        static __CACHEMACRO_SITE: __cachemacro_private::InvalidationSite = __cachemacro_private::InvalidationSite {
            function: ::core::concat!(::core::module_path!(), "::", #name),
            file: ::core::file!(),
            line: ::core::line!(),
            patterns: &[#(#pattern_templates),*],
            tags: &[#(#tag_templates),*],
            before: #before,
        };
        __cachemacro_private::inventory::submit! {
            __cachemacro_private::Registration::Invalidates(&__CACHEMACRO_SITE)
        }
        #cache
        let __cachemacro_plan: ::std::vec::Vec<__cachemacro_private::Planned> = ::std::vec![#(#plan,)* #(#tag_plan),*];
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
