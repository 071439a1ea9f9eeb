//! The `#[cached]` and `#[invalidates]` attributes of cachemacro.
//!
//! Depend on `cachemacro-runtime`, which re-exports both: generated code
//! calls into `::cachemacro_runtime::__private`. This crate parses, checks
//! and expands; it does no I/O.

mod args;
mod expand;
mod model;
mod template;

use proc_macro::TokenStream;
use syn::parse_macro_input;

/// Caches an `async fn`'s value under a key built from its parameters.
///
/// ```ignore
/// #[cached(key = "user-collections:<user_id>", ttl = "1h")]
/// async fn user_collections(db: &Db, user_id: u64) -> Result<Vec<Collection>, DbError> { … }
/// ```
///
/// # Arguments
///
/// | argument | meaning |
/// |---|---|
/// | `key = "…"` | the key template (required); see *Key templates* |
/// | `ttl = 300` / `ttl = "5m"` | how long an entry lives (required): seconds, or a duration such as `"30s"`, `"1h30m"`, `"500ms"` |
/// | `none_ttl = …` | for `Option<T>`: also cache `None`, for this long (negative caching) |
/// | `cache = <expr>` | the [`Cache`] to use: any expression in the function's scope giving a `Cache`, `&Cache` or `Arc<Cache>` (`self.cache`, a parameter, a static); without it the process default |
/// | `codec = Path` | a [`Codec`] type instead of bincode |
/// | `crate = "path"` | where `cachemacro_runtime` is, if renamed or re-exported |
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
/// [`KeyPart`]: ../cachemacro_runtime/trait.KeyPart.html
#[proc_macro_attribute]
pub fn cached(args: TokenStream, item: TokenStream) -> TokenStream {
    let args = parse_macro_input!(args as args::CachedArgs);
    let item2 = proc_macro2::TokenStream::from(item.clone());
    let func = parse_macro_input!(item as syn::ItemFn);
    match model::CachedFn::from_syn(&args, &func) {
        Ok(model) => expand::cached(&model).into(),
        Err(e) => expand::fallback(item2, e).into(),
    }
}

/// Deletes cache entries after an `async fn` succeeds.
///
/// ```ignore
/// #[invalidates("user-collections:<user_id>")]
/// async fn add_image_to_collection(db: &Db, user_id: u64, image_id: u64) -> Result<(), DbError> { … }
///
/// #[invalidates("sets:user:<set.user_id>:*", "set:<set.id>")]
/// async fn delete_set(db: &Db, set: &Set) -> Result<(), DbError> { … }
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
    let args = parse_macro_input!(args as args::InvalidatesArgs);
    let item2 = proc_macro2::TokenStream::from(item.clone());
    let func = parse_macro_input!(item as syn::ItemFn);
    match model::InvalidatingFn::from_syn(&args, &func) {
        Ok(model) => expand::invalidates(&model).into(),
        Err(e) => expand::fallback(item2, e).into(),
    }
}
