//! The engine as a method: `get_or_load` and its variants.

use super::handle::Cache;
use crate::codec::{Bincode, Cacheable};
use crate::engine::{self, EntryOptions, Loader, OptionOf, ResultOf, Spawnable, Typed};
use crate::error::LoadTimeout;

/// Named in a [`LoadTimeout`] from these methods.
const FUNCTION: &str = "cachemacro_runtime::Cache::get_or_load";

fn always<T>(_: &T) -> bool {
    true
}

/// Runs the loader in the caller (it may borrow), made only when a load
/// starts.
struct Deferred<F>(F);

impl<O, B, F, Fut> Loader<O, B> for Deferred<F>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = O>,
{
    const SPAWNS: bool = false;
    type Fut = Fut;

    fn start(self) -> Fut {
        (self.0)()
    }

    fn spawn(self, then: B) -> Result<engine::Spawned<O>, (Self, B)> {
        Err((self, then))
    }
}

impl Cache {
    /// The value at `key`, or `load`'s, stored under `options`: what
    /// `#[cached]` does, for keys known only at run time (an HTTP path, a
    /// search string). Only `Ok` is stored; an `Err` passes through.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use std::time::Duration;
    /// use cachemacro_runtime::{Cache, EntryOptions};
    ///
    /// let cache = Cache::memory();
    /// let search = EntryOptions::new(Duration::from_secs(60)).family("search:<query>");
    /// let query = "red shoes".to_string();
    /// let key = format!("search:{}", cachemacro_runtime::encode_key_part(query.as_str()));
    /// let hits: Result<Vec<u64>, String> = cache
    ///     .get_or_load(&key, &search, move || async move {
    ///         Ok(vec![query.len() as u64]) // the database query
    ///     })
    ///     .await;
    /// assert_eq!(hits, Ok(vec![9]));
    /// # }
    /// ```
    ///
    /// ## Behavior
    ///
    /// The same as a `#[cached]` function returning `Result`: concurrent
    /// misses share one load (single-flight), a fill lease keeps a load
    /// begun before an invalidation from storing after it, hot entries are
    /// refreshed early (XFetch), and `stale`, `fail_safe` and `timeout` serve
    /// the last value while a load runs or fails. `load` runs in a task of
    /// its own when the caller does not wait for it (a `stale` refresh, a
    /// load past `timeout`), hence `Send + 'static`; use
    /// [`Cache::get_or_load_inline`] for a loader that borrows. A cache
    /// failure is never the caller's: the loader runs and its value is
    /// returned. `Ok(None)` of a `Result<Option<T>, E>` is stored only with
    /// [`EntryOptions::none_ttl`]. [`EntryOptions::hard_timeout`] gives a
    /// load up only when there is an answer for it: the old value, when
    /// `fail_safe` keeps one (background refreshes are always bounded by
    /// it); otherwise the caller waits for the loader. For an error instead,
    /// use [`Cache::get_or_load_timed`]. `T: Clone` because the in-memory
    /// backend keeps the value itself and a hit clones it (no decode).
    pub async fn get_or_load<T, E, F, Fut>(
        &self,
        key: &str,
        options: &EntryOptions,
        load: F,
    ) -> Result<T, E>
    where
        T: Cacheable + Clone + Send + Sync,
        E: Send + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
    {
        self.results(key, options, None, Spawnable(load)).await
    }

    /// As [`Cache::get_or_load`], and a load given up at the options'
    /// `hard_timeout` with no old value to serve returns `on_timeout`'s error.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// use std::time::Duration;
    /// use cachemacro_runtime::{Cache, EntryOptions};
    ///
    /// let cache = Cache::memory();
    /// let options = EntryOptions::new(Duration::from_secs(60)).hard_timeout(Duration::from_millis(50));
    /// let report: Result<String, String> = cache
    ///     .get_or_load_timed("report:7", &options, |t| t.to_string(), || async {
    ///         tokio::time::sleep(Duration::from_secs(60)).await; // a stuck query
    ///         Ok("report".to_string())
    ///     })
    ///     .await;
    /// assert!(report.unwrap_err().contains("50ms"));
    /// # }
    /// ```
    pub async fn get_or_load_timed<T, E, F, Fut>(
        &self,
        key: &str,
        options: &EntryOptions,
        on_timeout: fn(LoadTimeout) -> E,
        load: F,
    ) -> Result<T, E>
    where
        T: Cacheable + Clone + Send + Sync,
        E: Send + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
    {
        self.results(key, options, Some(on_timeout), Spawnable(load))
            .await
    }

    /// As [`Cache::get_or_load`] for a loader returning `Option<T>`: `Some`
    /// is stored for the TTL, `None` only with [`EntryOptions::none_ttl`].
    pub async fn get_or_load_option<T, F, Fut>(
        &self,
        key: &str,
        options: &EntryOptions,
        load: F,
    ) -> Option<T>
    where
        T: Cacheable + Clone + Send + Sync,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Option<T>> + Send + 'static,
    {
        let policy = OptionOf::<fn(&T) -> bool, T> {
            keep: always::<T>,
            typed: Some(Typed::new()),
        };
        engine::run::<Bincode, _, _, _>(
            self,
            key,
            &options.tags,
            options,
            FUNCTION,
            Spawnable(load),
            policy,
        )
        .await
    }

    /// As [`Cache::get_or_load`] for a loader that borrows from the caller
    /// (no `Send + 'static`). It always runs in the caller: a `stale` entry
    /// past its freshness is refreshed while the caller waits, and a
    /// `timeout` does not cut the wait short.
    pub async fn get_or_load_inline<T, E, F, Fut>(
        &self,
        key: &str,
        options: &EntryOptions,
        load: F,
    ) -> Result<T, E>
    where
        T: Cacheable + Clone + Send + Sync,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.results(key, options, None, Deferred(load)).await
    }

    /// The engine for a loader returning `Result`: `Ok` stored, typed in memory.
    async fn results<T, E, L>(
        &self,
        key: &str,
        options: &EntryOptions,
        on_timeout: Option<fn(LoadTimeout) -> E>,
        load: L,
    ) -> Result<T, E>
    where
        T: Cacheable + Clone + Send + Sync,
        L: Loader<Result<T, E>, engine::Background<Bincode, ResultOf<fn(&T) -> bool, T, E>>>,
    {
        let policy = ResultOf::<fn(&T) -> bool, T, E> {
            keep: always::<T>,
            on_timeout,
            typed: Some(Typed::new()),
        };
        engine::run::<Bincode, _, _, _>(self, key, &options.tags, options, FUNCTION, load, policy)
            .await
    }
}
