//! The `#[cached]` and `#[invalidates]` attributes of cachemacro.
//!
//! Depend on `cachemacro-runtime`, which re-exports both: generated code
//! calls into `::cachemacro_runtime::__private`. This crate parses, checks
//! and expands; it does no I/O.

mod args;
mod duration;
mod errors;
mod expand;
mod model;
mod template;
mod values;

use proc_macro::TokenStream;
use proc_macro2::TokenStream as TokenStream2;

/// Caches an `async fn`'s value under a key built from its parameters.
///
/// ```
/// use cachemacro_runtime::cached;
/// # #[derive(Debug)] struct DbError;
/// # struct Db;
/// # #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)] struct Collection(u64);
///
/// #[cached(key = "user-collections:<user_id>", ttl = "1h")]
/// async fn user_collections(db: &Db, user_id: u64) -> Result<Vec<Collection>, DbError> {
///     Ok(vec![Collection(user_id)]) // … SELECT …
/// }
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// # assert_eq!(user_collections(&Db, 7).await.unwrap(), vec![Collection(7)]);
/// # assert_eq!(user_collections(&Db, 7).await.unwrap(), vec![Collection(7)]);
/// # assert_eq!(cachemacro_runtime::default_cache().stats().hits, 1);
/// # }
/// ```
///
/// # Arguments
///
/// | argument | meaning |
/// |---|---|
/// | `key = "…"` | the key template (required); see *Key templates* |
/// | `ttl = 300` / `ttl = "5m"` | how long an entry lives (required): seconds, or a duration such as `"30s"`, `"1h30m"`, `"500ms"`, `"2d"`; see *Durations* |
/// | `none_ttl = …` | for `Option<T>`: also cache `None`, for this long (negative caching) |
/// | `cache = <expr>` | the [`Cache`] to use: any expression in the function's scope giving a `Cache` or something that dereferences to one (`&Cache`, `Arc<Cache>`, a `LazyLock<Cache>` static; `self.cache`, a parameter); without it the process default |
/// | `codec = Path` | a [`Codec`] type instead of bincode |
/// | `tags = ["user:<user_id>"]` | tag templates; invalidating a tag drops every entry recorded under it |
/// | `lock = true` | a miss waits for another process's load of the key (a Redis lock) instead of loading too |
/// | `jitter = "10%"` | shorten each entry's TTL by a random part of up to that, so entries written together expire apart |
/// | `cache_if = <closure>` / `unless = …` | store only values the predicate accepts (is given `&T`, the `Ok`/`Some` value) |
/// | `beta = 1.0` | XFetch early refresh: how eagerly a hot entry is reloaded before it expires; `0` turns it off |
/// | `stale = "1m"` | past the TTL, serve the entry up to that long while one background load refreshes it |
/// | `fail_safe = "1h"` | when the body returns `Err` (or passes `timeout`), serve the entry up to that long past its TTL instead, and don't retry for a short throttle |
/// | `timeout = "200ms"` | with `stale`/`fail_safe`: past that, serve the kept entry and let the load finish in the background |
/// | `hard_timeout = "2s"` | `Result` only: past that, give up with `E::from(LoadTimeout)` (or the kept entry under `fail_safe`) |
/// | `local = false` | keep entries out of the cache's in-process tier (in front of Redis), for data that must be fresh across instances: an in-process copy can outlive another instance's write; default: the cache's setting |
/// | `local_ttl = "30s"` | the longest an entry lives in the in-process tier, however long its TTL: how stale an in-process copy can get; an error with `local = false` |
/// | `crate = "path"` | where `cachemacro_runtime` is, if renamed or re-exported |
///
/// `stale` and `timeout` run the body in a task of its own, so the
/// function's parameters must be cloneable plain names (no `&mut`) and its
/// body `Send`; a violation is a compile error at the parameter. `lock`,
/// `jitter` and `beta` have defaults on [`CacheBuilder`]. A cache without an
/// in-process tier ignores `local` and `local_ttl`.
///
/// # Durations
///
/// `ttl`, `none_ttl`, `stale`, `fail_safe`, `timeout`, `hard_timeout` and
/// `local_ttl` take a whole number of seconds (`300`) or a string of numbers with units,
/// spaces allowed: `"1h30m"`, `"500ms"`, `"2 days"`. The units are `ns`,
/// `us`, `ms`, `s`, `m` (minutes), `h`, `d` and `w`, with long forms such as
/// `sec`, `min`, `hours`, `days` and `weeks`; units are lowercase. Months
/// and years are refused, `M` included (`"5M"` is an error, not five
/// months): neither has a fixed length, and `M` is too close to `m`.
///
/// # Key templates
///
/// `<name>` is a parameter's value, `<name.field.sub>` a field of it,
/// `<self.field>` a field of the receiver, `<name:hash>` a 16-hex-digit hash
/// of the value's serialized form (for long strings and filter structs).
/// Everything else is literal, `{` and `}` included (Redis Cluster hash
/// tags). Values pass through [`KeyPart`], which escapes every byte outside
/// `[A-Za-z0-9._-]`, so a value can never forge another key. Unknown
/// parameters, unclosed `<`, empty keys and `*` are compile errors.
///
/// # What is cached
///
/// | return type | stored |
/// |---|---|
/// | `Result<T, E>` (any path ending in `Result`) | `Ok` values; an `Err` is returned and nothing is stored |
/// | `Option<T>` | `Some`; `None` only with `none_ttl` |
/// | any other `T` | every value |
///
/// The value must implement `Serialize` and `Deserialize`. A cache failure
/// (Redis down or slow, undecodable bytes) never becomes the caller's
/// failure: the body runs and its value is returned.
///
/// [`Cache`]: ../cachemacro_runtime/struct.Cache.html
/// [`Codec`]: ../cachemacro_runtime/trait.Codec.html
/// [`CacheBuilder`]: ../cachemacro_runtime/struct.CacheBuilder.html
/// [`KeyPart`]: ../cachemacro_runtime/trait.KeyPart.html
#[proc_macro_attribute]
pub fn cached(args: TokenStream, item: TokenStream) -> TokenStream {
    expand_cached(args.into(), item.into()).into()
}

/// Deletes cache entries after an `async fn` succeeds.
///
/// ```
/// use cachemacro_runtime::invalidates;
/// # #[derive(Debug)] struct DbError;
/// # struct Db;
/// # struct Set { id: u64, user_id: u64 }
///
/// #[invalidates("user-collections:<user_id>")]
/// async fn add_image_to_collection(db: &Db, user_id: u64, image_id: u64) -> Result<(), DbError> {
///     Ok(()) // … INSERT …
/// }
///
/// #[invalidates("sets:user:<set.user_id>:*", "set:<set.id>")]
/// async fn delete_set(db: &Db, set: &Set) -> Result<(), DbError> {
///     Ok(()) // … DELETE …
/// }
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// # add_image_to_collection(&Db, 1, 2).await.unwrap();
/// # delete_set(&Db, &Set { id: 3, user_id: 1 }).await.unwrap();
/// # assert_eq!(cachemacro_runtime::default_cache().stats().invalidations, 3);
/// # }
/// ```
///
/// Each argument is a key template as in [`cached`]; one ending in `*`
/// deletes every key under that prefix (on Redis by `SCAN` and `UNLINK`,
/// never `KEYS`). `cache = <expr>` and `crate = "…"` work as in [`cached`].
///
/// Entries are deleted after the body returns `Ok` (for a `Result`) or any
/// value (for other types); all exact keys go in one round trip. A failed
/// invalidation is logged at warn with its key and counted in
/// `Stats::invalidation_errors`; it never changes the function's result.
#[proc_macro_attribute]
pub fn invalidates(args: TokenStream, item: TokenStream) -> TokenStream {
    expand_invalidates(args.into(), item.into()).into()
}

/// `#[cached]` on `proc_macro2` tokens: never panics; on any error, the
/// function as written plus every error found.
fn expand_cached(args: TokenStream2, item: TokenStream2) -> TokenStream2 {
    let (args, func) = match parse::<args::CachedArgs>(args, item.clone(), "cached") {
        Ok(parsed) => parsed,
        Err(e) => return expand::fallback(item, e),
    };
    match model::CachedFn::from_syn(&args, &func) {
        Ok(model) => expand::cached(&model),
        Err(e) => expand::fallback(item, e),
    }
}

/// `#[invalidates]` on `proc_macro2` tokens, as [`expand_cached`].
fn expand_invalidates(args: TokenStream2, item: TokenStream2) -> TokenStream2 {
    let (args, func) = match parse::<args::InvalidatesArgs>(args, item.clone(), "invalidates") {
        Ok(parsed) => parsed,
        Err(e) => return expand::fallback(item, e),
    };
    match model::InvalidatingFn::from_syn(&args, &func) {
        Ok(model) => expand::invalidates(&model),
        Err(e) => expand::fallback(item, e),
    }
}

/// Parses the attribute's arguments and the function it is on. Argument
/// errors travel inside `A`; the only failure here is an item that is not
/// a function with a body.
fn parse<A: syn::parse::Parse>(
    args: TokenStream2,
    item: TokenStream2,
    attr: &str,
) -> syn::Result<(A, syn::ItemFn)> {
    let args = syn::parse2::<A>(args)?;
    let func = syn::parse2::<syn::ItemFn>(item).map_err(|e| {
        syn::Error::new(
            e.span(),
            format!("`#[{attr}]` can only be used on an `async fn` with a body ({e})"),
        )
    })?;
    Ok((args, func))
}

#[cfg(test)]
mod tests {
    //! The macros must never panic, whatever they are given: every input
    //! below expands to code or to `compile_error!`s.

    use std::str::FromStr;

    use super::*;

    const ITEMS: &[&str] = &[
        "async fn f(user_id: u64, set: &Set, pair: (u8, u8)) -> Result<Vec<u8>, E> { Ok(vec![]) }",
        "fn f(&self, q: String) -> Option<impl Trait> {}",
        "async fn f<'a, T: KeyPart>(self: Arc<Self>, _: u8, (a, b): (u8, u8), t: &'a T) -> T where T: Clone { t.clone() }",
        "async fn f() -> impl Fn() -> Result<impl X, E> {}",
        "async fn r#type(r#type: u8) {}",
        "struct S;",
        "async fn f();",
        "",
    ];

    const TEMPLATE_PARTS: &[&str] = &[
        "<",
        ">",
        "*",
        ".",
        ":",
        "hash",
        "sha",
        "user_id",
        "set",
        "self",
        "pair",
        "0",
        "00",
        "99999999999",
        "\u{345}",
        "é",
        " ",
        "{",
        "}",
        "_",
        "type",
        "r#x",
        "\\",
        "\0",
        "<set.",
        "<self.",
        "<pair.",
        "<user_id",
        ":hash>",
        "owner.id>",
    ];

    const ARG_PARTS: &[&str] = &[
        "key = ",
        "ttl = ",
        "none_ttl = ",
        "cache = ",
        "codec = ",
        "crate = ",
        "local = ",
        "local_ttl = ",
        "\"5m\"",
        "0",
        "1.5",
        "true",
        ",",
        "=",
        "self.cache",
        "\"::x\"",
        "\"\"",
        "-1",
        "18446744073709551616",
        "\"1ns\"",
        "\"999999999999y\"",
        "\"5M\"",
        "\"1 H\"",
        "\"0.5ms\"",
        "key",
        "crate",
        "krate",
        "\"a:<user_id>\"",
        "Bincode",
        "(a, b)",
        "'x'",
        "b\"k\"",
        "r\"raw\"",
        "#",
        "\"not a path\"",
    ];

    fn expand_all(args: &str, item: &str) {
        let (Ok(args), Ok(item)) = (TokenStream2::from_str(args), TokenStream2::from_str(item))
        else {
            return;
        };
        let _ = expand_cached(args.clone(), item.clone());
        let _ = expand_invalidates(args, item);
    }

    #[test]
    fn templates_never_panic() {
        let mut templates = vec![String::new()];
        for _ in 0..3 {
            let longer: Vec<String> = templates
                .iter()
                .flat_map(|t| TEMPLATE_PARTS.iter().map(move |p| format!("{t}{p}")))
                .collect();
            templates.extend(longer);
        }
        templates.sort();
        templates.dedup();
        for template in &templates {
            let lit = format!("{template:?}");
            expand_all(&format!("key = {lit}, ttl = 1"), ITEMS[0]);
        }
        for template in templates.iter().filter(|t| t.chars().count() < 3) {
            let lit = format!("{template:?}");
            for item in &ITEMS[1..] {
                expand_all(&format!("key = {lit}, ttl = 1"), item);
            }
        }
    }

    #[test]
    fn arguments_never_panic() {
        for a in ARG_PARTS {
            for b in ARG_PARTS {
                for c in ARG_PARTS {
                    expand_all(&format!("{a}{b}{c}"), ITEMS[0]);
                    expand_all(&format!("{a}{b}{c}, ttl = 5, key = \"k\""), ITEMS[1]);
                }
            }
        }
    }
}
