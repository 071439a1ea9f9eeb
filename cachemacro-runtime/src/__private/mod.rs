//! What the macros expand to. Not public API: names and signatures here
//! change with the macro crate, which is always the same version.
//!
//! ## Behavior
//!
//! * **Reads** are one round trip (a Lua script on Redis): the entry is a hit
//!   only if every tag it recorded still has the version it recorded. On a
//!   miss the same round trip reads the current tag versions and reserves
//!   the key with a *fill lease*.
//! * **Race-free fills.** The loaded value is stored only if the key still
//!   holds this caller's lease, checked atomically on the server. Deleting
//!   the key (an exact invalidation, or a prefix one whose `SCAN` finds the
//!   lease) drops the fill; invalidating a tag changes its version, so an
//!   entry recorded with the old one is never served. A reader that loaded
//!   the old row before a write can therefore never store it after the
//!   write's invalidation (counted in `fills_dropped`).
//! * **Refreshes** (early, or of an entry kept past its freshness) store only
//!   over the very entry they read, by its id, checked in the same script:
//!   an invalidation deletes or replaces that entry, and the refresh is
//!   dropped the same way. The refresh lock (`SET NX PX` on a key beside the
//!   entry) only keeps refreshers from duplicating work.
//! * **Early refresh** (XFetch): a fresh entry is due once its freshness
//!   left is at most `Δ·β·(−ln u)` (Δ its load time, `u` uniform), decided in
//!   the read script; the caller that takes the refresh lock refreshes it.
//! * **Kept entries** (`stale`, `fail_safe`) stay in their key for the grace
//!   past their freshness: physical TTL = TTL + grace, and the grace is in
//!   the entry, so freshness is the key's PTTL less it (the server's clock).
//!   An invalidation deletes a kept entry like any other.
//! * A read failure (backend error, timeout) runs the body and does not try
//!   to store its value: Redis is likely unreachable, and a second timeout
//!   would double the caller's wait.
//! * A key that cannot be built (a `<name:hash>` value that fails to
//!   serialize) bypasses the cache for that call.
//! * **Invalidations** run after the body succeeded (any value of a
//!   non-`Result` function, `Ok` of a `Result`), and before it too with
//!   `before = true`: all exact keys and tags in one `UNLINK`, then each
//!   prefix. A failure is logged at warn with the key or prefix, counted, and
//!   queued for replay (see `replay.rs`); it never changes the value returned.

mod invalidate;
mod load;
mod lookup;
mod store;

use std::borrow::Borrow;
use std::time::Duration;

pub use crate::Cache;
pub use crate::codec::{Bincode, Cacheable, Codec};
pub use crate::error::LoadTimeout;
pub use crate::key::{KeyBuilder, Pattern};
pub use crate::registry::Registration;
pub use invalidate::{Planned, invalidating, invalidating_result};
pub use inventory;
pub use load::{Background, Inline, Loader, Spawnable};

use crate::Error;

/// One `#[cached]` function, as static data.
pub struct Site {
    pub template: &'static str,
    pub function: &'static str,
    pub file: &'static str,
    pub line: u32,
    pub ttl: Duration,
    pub none_ttl: Option<Duration>,
    /// Tag templates, as written.
    pub tags: &'static [&'static str],
    /// `lock = …`: wait for another process's load; `None`, the cache's default.
    pub lock: Option<bool>,
    /// `jitter`: fraction of the TTL taken off at random, 0 to < 1; `None`,
    /// the cache's default.
    pub jitter: Option<f64>,
    /// `beta`: XFetch's β; `None`, the cache's default (1.0).
    pub beta: Option<f64>,
    /// `stale`: how long past its freshness an entry is served while one
    /// background refresh runs.
    pub stale: Option<Duration>,
    /// `fail_safe`: how long past its freshness an entry is served when the
    /// body fails or passes its hard timeout.
    pub fail_safe: Option<Duration>,
    /// `timeout`: how long a load may take before an old value is served
    /// (the load goes on in the background).
    pub timeout: Option<Duration>,
    /// `hard_timeout`: how long a load may take at all.
    pub hard_timeout: Option<Duration>,
}

impl Site {
    /// How long entries are kept past their freshness.
    fn grace(&self) -> Duration {
        self.stale
            .unwrap_or_default()
            .max(self.fail_safe.unwrap_or_default())
    }
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

/// The default cache, as an owned handle (one `Arc` clone).
pub fn default_cache() -> Cache {
    crate::default_cache().clone()
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
    Ok(Request {
        key: key?,
        tags: tags.into_iter().collect::<Result<_, _>>()?,
    })
}

/// What a `#[cached]` function stores of its output `O`, and how an output
/// is rebuilt from a stored value.
pub trait Policy<O> {
    /// The stored type: `T` of `T`, `Result<T, E>`; `Option<T>` of `Option<T>`.
    type Stored: Cacheable;
    /// The value to store and its TTL, if this output is stored.
    fn store_as<'a>(&self, site: &Site, out: &'a O) -> Option<(&'a Self::Stored, Duration)>;
    /// The output a stored value stands for.
    fn unstore(&self, value: Self::Stored) -> O;
    /// Whether the output is a failure (an `Err`): fail-safe may replace it.
    fn failed(&self, out: &O) -> bool;
    /// The output for a load given up at its hard timeout, if the function
    /// has one (`hard_timeout` needs a `Result` whose error is `From<LoadTimeout>`).
    fn on_timeout(&self) -> Option<fn(LoadTimeout) -> O>;
}

/// A plain `T`: every value is stored (that `keep` accepts).
#[derive(Clone)]
pub struct Plain<K>(pub K);

impl<T: Cacheable, K: Fn(&T) -> bool> Policy<T> for Plain<K> {
    type Stored = T;

    fn store_as<'a>(&self, site: &Site, out: &'a T) -> Option<(&'a T, Duration)> {
        (self.0)(out).then_some((out, site.ttl))
    }

    fn unstore(&self, value: T) -> T {
        value
    }

    fn failed(&self, _: &T) -> bool {
        false
    }

    fn on_timeout(&self) -> Option<fn(LoadTimeout) -> T> {
        None
    }
}

/// `Result<T, E>`: `Ok` values are stored; an `Err` is a failure.
pub struct ResultOf<K, O> {
    pub keep: K,
    pub on_timeout: Option<fn(LoadTimeout) -> O>,
}

impl<K: Clone, O> Clone for ResultOf<K, O> {
    fn clone(&self) -> Self {
        ResultOf {
            keep: self.keep.clone(),
            on_timeout: self.on_timeout,
        }
    }
}

impl<T: Cacheable, E, K: Fn(&T) -> bool> Policy<Result<T, E>> for ResultOf<K, Result<T, E>> {
    type Stored = T;

    fn store_as<'a>(&self, site: &Site, out: &'a Result<T, E>) -> Option<(&'a T, Duration)> {
        out.as_ref()
            .ok()
            .filter(|v| (self.keep)(v))
            .map(|v| (v, site.ttl))
    }

    fn unstore(&self, value: T) -> Result<T, E> {
        Ok(value)
    }

    fn failed(&self, out: &Result<T, E>) -> bool {
        out.is_err()
    }

    fn on_timeout(&self) -> Option<fn(LoadTimeout) -> Result<T, E>> {
        self.on_timeout
    }
}

/// `Option<T>`: `Some` is stored for the TTL; `None` only with `none_ttl`,
/// for that long.
#[derive(Clone)]
pub struct OptionOf<K>(pub K);

impl<T: Cacheable, K: Fn(&T) -> bool> Policy<Option<T>> for OptionOf<K> {
    type Stored = Option<T>;

    fn store_as<'a>(&self, site: &Site, out: &'a Option<T>) -> Option<(&'a Option<T>, Duration)> {
        match out {
            Some(v) => (self.0)(v).then_some((out, site.ttl)),
            None => site.none_ttl.map(|ttl| (out, ttl)),
        }
    }

    fn unstore(&self, value: Option<T>) -> Option<T> {
        value
    }

    fn failed(&self, _: &Option<T>) -> bool {
        false
    }

    fn on_timeout(&self) -> Option<fn(LoadTimeout) -> Option<T>> {
        None
    }
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

/// `#[cached]` on a function returning a plain `T`: every value is stored.
pub async fn cached<C, T, L, K>(
    cache: Cache,
    site: &'static Site,
    request: Result<Request, Error>,
    load: L,
    keep: K,
) -> T
where
    C: Codec,
    T: Cacheable,
    K: Fn(&T) -> bool + Clone,
    L: Loader<T, Background<C, Plain<K>>>,
{
    load::through::<C, T, Plain<K>, L>(cache, site, request, load, Plain(keep)).await
}

/// `#[cached]` on a function returning `Result<T, E>`: only `Ok` is stored;
/// with `hard_timeout`, `on_timeout` makes the `Err` for a load given up.
pub async fn cached_result<C, T, E, L, K>(
    cache: Cache,
    site: &'static Site,
    request: Result<Request, Error>,
    load: L,
    keep: K,
    on_timeout: Option<fn(LoadTimeout) -> Result<T, E>>,
) -> Result<T, E>
where
    C: Codec,
    T: Cacheable,
    K: Fn(&T) -> bool + Clone,
    L: Loader<Result<T, E>, Background<C, ResultOf<K, Result<T, E>>>>,
{
    let policy = ResultOf { keep, on_timeout };
    load::through::<C, Result<T, E>, _, L>(cache, site, request, load, policy).await
}

/// The `on_timeout` of a function with `hard_timeout`: `Err(E::from(t))`.
/// Generated code names `E` as the user wrote it (`on_timeout::<_, E>()`),
/// so a missing `From<LoadTimeout>` is reported on the whole error type.
pub fn on_timeout<T, E: From<LoadTimeout>>() -> Option<fn(LoadTimeout) -> Result<T, E>> {
    Some(|t| Err(E::from(t)))
}

/// `#[cached]` on a function returning `Option<T>`: `Some` is stored for
/// the TTL; `None` only when `none_ttl` is set, for that long.
pub async fn cached_option<C, T, L, K>(
    cache: Cache,
    site: &'static Site,
    request: Result<Request, Error>,
    load: L,
    keep: K,
) -> Option<T>
where
    C: Codec,
    T: Cacheable,
    K: Fn(&T) -> bool + Clone,
    L: Loader<Option<T>, Background<C, OptionOf<K>>>,
{
    load::through::<C, Option<T>, OptionOf<K>, L>(cache, site, request, load, OptionOf(keep)).await
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
