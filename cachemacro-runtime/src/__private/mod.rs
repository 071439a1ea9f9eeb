//! What the macros expand to. Not public API: names and signatures here
//! change with the macro crate, which is always the same version. The
//! engine behind `#[cached]` is [`Cache::get_or_load`]'s (`engine/`); this
//! module only builds keys and hands a `static` [`EntryOptions`] over.

mod invalidate;

use std::borrow::Borrow;
use std::marker::PhantomData;
use std::time::Duration;

pub use crate::Cache;
pub use crate::codec::{Bincode, Cacheable, Codec};
pub use crate::engine::{
    Background, EntryOptions, Inline, Loader, Never, OptionOf, Plain, Policy, ResultOf, Spawnable,
    Typed,
};
pub use crate::error::LoadTimeout;
pub use crate::key::{KeyBuilder, Pattern};
pub use crate::registry::Registration;
pub use invalidate::{Planned, invalidating, invalidating_result};
pub use inventory;

use crate::Error;

/// One `#[cached]` function, as static data.
pub struct Site {
    pub template: &'static str,
    pub function: &'static str,
    pub file: &'static str,
    pub line: u32,
    /// Tag templates, as written.
    pub tags: &'static [&'static str],
    /// What the attribute said, for the engine.
    pub options: EntryOptions,
}

/// One `#[invalidates]` function, as static data.
pub struct InvalidationSite {
    pub function: &'static str,
    pub file: &'static str,
    pub line: u32,
    /// Key patterns, as written (a trailing `*` clears a prefix).
    pub patterns: &'static [&'static str],
    /// Tag templates, as written.
    pub tags: &'static [&'static str],
    /// Also invalidate before the body runs.
    pub before: bool,
}

/// The default cache, borrowed.
pub fn default_cache() -> &'static Cache {
    crate::default_cache()
}

/// Builds `Duration`s in consts without naming `std` in generated code.
pub const fn millis(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

/// A call's key and tags, as built from its arguments.
pub struct Request {
    key: String,
    tags: Vec<String>,
}

/// Joins a key and its tags; the first one that could not be built wins.
pub fn request(
    key: Result<String, Error>,
    tags: Vec<Result<String, Error>>,
) -> Result<Request, Error> {
    let tags = if tags.is_empty() {
        Vec::new()
    } else {
        tags.into_iter().collect::<Result<_, _>>()?
    };
    Ok(Request { key: key?, tags })
}

/// `cache_if` / `unless` absent: store every value.
pub fn always<V: ?Sized>(_: &V) -> bool {
    true
}

/// `unless` absent.
pub fn never<V: ?Sized>(_: &V) -> bool {
    false
}

/// `cache_if = a, unless = b`: store when `a` holds and `b` does not. `V` is
/// named by the macro so a bare closure's parameter type is known.
pub fn keep<V: ?Sized, A, B>(a: A, b: B) -> impl Fn(&V) -> bool + Clone
where
    A: Fn(&V) -> bool + Clone,
    B: Fn(&V) -> bool + Clone,
{
    move |v| a(v) && !b(v)
}

/// Runs a `#[cached]` call through the engine, or without the cache when
/// its key could not be built.
async fn through<C, O, P, L>(
    cache: &Cache,
    site: &'static Site,
    request: Result<Request, Error>,
    load: L,
    policy: P,
) -> O
where
    C: Codec,
    P: Policy<O> + Clone,
    L: Loader<O, Background<C, P>>,
{
    match request {
        Ok(request) => {
            crate::engine::run::<C, O, P, L>(
                cache,
                &request.key,
                &request.tags,
                &site.options,
                site.function,
                load,
                policy,
            )
            .await
        }
        Err(e) => {
            cache.recorder(site.template).add(|c| &c.errors, 1);
            cache.log_failure("key building", site.template, "", &e);
            crate::engine::without_cache::<C, O, P, L>(
                cache,
                &site.options,
                site.function,
                load,
                policy,
            )
            .await
        }
    }
}

/// Finds out whether a stored type can take the memory store's typed path
/// (`Clone + Send + Sync`), without a bound on the user's type:
/// `(&&Probe::<T>::new()).typed()` picks [`ViaClone`] when `T` qualifies,
/// else [`ViaBytes`]. In a generic function it picks `ViaBytes`.
pub struct Probe<T>(PhantomData<T>);

impl<T> Probe<T> {
    pub const fn new() -> Self {
        Probe(PhantomData)
    }
}

impl<T> Default for Probe<T> {
    fn default() -> Self {
        Probe::new()
    }
}

/// The typed path, for `Clone + Send + Sync` stored types.
pub trait ViaClone<T> {
    fn typed(&self) -> Option<Typed<T>>;
}

impl<T: Clone + Send + Sync + 'static> ViaClone<T> for &Probe<T> {
    fn typed(&self) -> Option<Typed<T>> {
        Some(Typed::new())
    }
}

/// Bytes only, for every other stored type.
pub trait ViaBytes<T> {
    fn typed(&self) -> Option<Typed<T>>;
}

impl<T> ViaBytes<T> for Probe<T> {
    fn typed(&self) -> Option<Typed<T>> {
        None
    }
}

/// `#[cached]` on a function returning a plain `T`: every value is stored.
pub async fn cached<C, T, L, K>(
    cache: &Cache,
    site: &'static Site,
    request: Result<Request, Error>,
    load: L,
    keep: K,
    typed: Option<Typed<T>>,
) -> T
where
    C: Codec,
    T: Cacheable,
    K: Fn(&T) -> bool + Clone,
    L: Loader<T, Background<C, Plain<K, T>>>,
{
    let policy = Plain { keep, typed };
    through::<C, T, Plain<K, T>, L>(cache, site, request, load, policy).await
}

/// `#[cached]` on a function returning `Result<T, E>`: only `Ok` is stored;
/// with `hard_timeout`, `on_timeout` makes the `Err` for a load given up.
pub async fn cached_result<C, T, E, L, K>(
    cache: &Cache,
    site: &'static Site,
    request: Result<Request, Error>,
    load: L,
    keep: K,
    typed: Option<Typed<T>>,
    on_timeout: Option<fn(LoadTimeout) -> E>,
) -> Result<T, E>
where
    C: Codec,
    T: Cacheable,
    K: Fn(&T) -> bool + Clone,
    L: Loader<Result<T, E>, Background<C, ResultOf<K, T, E>>>,
{
    let policy = ResultOf {
        keep,
        on_timeout,
        typed,
    };
    through::<C, Result<T, E>, _, L>(cache, site, request, load, policy).await
}

/// The `on_timeout` of a function with `hard_timeout`: `E::from(t)`.
/// Generated code names `E` as the user wrote it (`on_timeout::<E>()`),
/// so a missing `From<LoadTimeout>` is reported on the whole error type.
pub fn on_timeout<E: From<LoadTimeout>>() -> Option<fn(LoadTimeout) -> E> {
    Some(E::from)
}

/// `#[cached]` on a function returning `Option<T>`: `Some` is stored for
/// the TTL; `None` only when `none_ttl` is set, for that long.
pub async fn cached_option<C, T, L, K>(
    cache: &Cache,
    site: &'static Site,
    request: Result<Request, Error>,
    load: L,
    keep: K,
    typed: Option<Typed<Option<T>>>,
) -> Option<T>
where
    C: Codec,
    T: Cacheable,
    K: Fn(&T) -> bool + Clone,
    L: Loader<Option<T>, Background<C, OptionOf<K, T>>>,
{
    let policy = OptionOf { keep, typed };
    through::<C, Option<T>, OptionOf<K, T>, L>(cache, site, request, load, policy).await
}

/// A parameter that a background load can own: `stale` and `timeout` run
/// the body in a task of its own, from copies of the arguments made when a
/// load starts. Every type whose owned form is `Clone`-able, `Send`, `Sync`
/// and `'static` qualifies (`&str` as a `String`, `&T` as a `T`).
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be copied into a background load",
    label = "`stale` and `timeout` load in a task of their own, from owned copies of the arguments",
    note = "a parameter must be `Clone + Send + Sync + 'static` (behind `&`, its `ToOwned` form must be): pass an `Arc<…>`, a pool handle, or derive `Clone`"
)]
pub trait Detach: ToOwned<Owned: Send + Sync + 'static> {}

impl<U: ?Sized + ToOwned<Owned: Send + Sync + 'static>> Detach for U {}

/// Lends an owned copy back as the reference the body was written for.
trait Lend<U: ?Sized>: Send + Sync {
    fn lend(&self) -> &U;
}

impl<U: ?Sized, O: Borrow<U> + Send + Sync> Lend<U> for O {
    fn lend(&self) -> &U {
        self.borrow()
    }
}

/// A borrowed argument's owned copy, lent back as the same reference. Boxed
/// so its type names no `U::Owned`: an argument that is not [`Detach`] is
/// then reported once, at the argument, not again at this type.
pub struct OwnedRef<U: ?Sized>(Box<dyn Lend<U>>);

impl<U: ?Sized> OwnedRef<U> {
    /// The argument, as the body borrowed it.
    pub fn get(&self) -> &U {
        (*self.0).lend()
    }
}

/// Copies a `&U` argument for a background load. Generated code calls it
/// as `own_ref::<_>(arg)`, which makes rustc report a missing [`Detach`]
/// with its own message, at the `_` (spanned at the parameter's type).
pub fn own_ref<U: ?Sized + Detach>(value: &U) -> OwnedRef<U> {
    OwnedRef(Box::new(value.to_owned()))
}

/// Copies an owned argument for a background load (called as `own_ref`).
pub fn own<T: Detach<Owned = T>>(value: &T) -> T {
    value.to_owned()
}
