//! [`Pending`]: invalidations held until a database transaction commits.

use std::panic::Location;
use std::sync::{Arc, Mutex};

use crate::Cache;
use crate::key::Pattern;

use super::land::{Origin, land};

tokio::task_local! {
    /// The scope a future runs in, set by [`Pending::scope`].
    static SCOPE: Arc<Shared>;
}

/// Invalidations that wait for a database transaction to commit.
///
/// `#[invalidates]` deletes its keys when its body returns. Inside a
/// transaction that is too early: a reader that arrives between the
/// invalidation and the commit still sees the old row (the transaction is
/// not visible yet), stores it, and that entry stays stale for a whole TTL.
/// Run the transaction in [`Pending::scope`] instead, from `begin` to
/// `commit`: its invalidating calls record what they would delete, and
/// [`Pending::run`] deletes it once the new rows are visible to everyone.
/// [`after_commit`](crate::after_commit) does both in one call.
///
/// ```
/// use cachemacro_runtime::{Pending, cached, invalidates};
/// # #[derive(Debug)] struct DbError;
/// # struct Tx; impl Tx { async fn commit(self) -> Result<(), DbError> { Ok(()) } }
/// # struct Db; impl Db { async fn begin(&self) -> Result<Tx, DbError> { Ok(Tx) } }
///
/// #[cached(key = "user-login:<user_id>", ttl = "1h")]
/// async fn user_login(db: &Db, user_id: u64) -> Result<String, DbError> {
/// #   Ok("ann".into())
///     // … SELECT …
/// }
///
/// #[invalidates("user-login:<user_id>")]
/// async fn use_credits(tx: &mut Tx, user_id: u64, n: u32) -> Result<(), DbError> {
/// #   Ok(())
///     // … UPDATE users SET credits = credits - ? …, on the transaction
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), DbError> {
/// # let db = Db;
/// let pending = Pending::new();
/// let written = pending
///     .scope(async {
///         let mut tx = db.begin().await?;
///         use_credits(&mut tx, 42, 1).await?; // recorded, not yet deleted
///         tx.commit().await
///     })
///     .await;
/// pending.run().await; // committed (or rolled back): deleted now
/// written?;
/// # Ok(()) }
/// ```
///
/// ## Behavior
///
/// * **Recorded in a scope.** An `#[invalidates]` call whose future runs
///   inside [`Pending::scope`] (on the same task: a `tokio::spawn`ed task
///   leaves the scope) records its targets after its body succeeds, instead
///   of deleting them. With `before = true` it still deletes before the
///   body too, at once. [`Pending::delete`], [`Pending::delete_pattern`]
///   and [`Pending::invalidate_tag`] record keys known only at run time.
///   The manual methods of [`Cache`] are never deferred.
/// * **Cached calls in a scope bypass the cache**: they run their body,
///   read nothing from the cache, store nothing and share nothing with
///   other callers. Their body may read through the transaction, whose rows
///   are not committed (and may be rolled back). So keep everything that
///   touches the transaction, its commit included, inside the scope.
/// * **After the commit.** [`Pending::run`] lands every recorded
///   invalidation, each call's targets at the same time, whether the
///   transaction committed or not: after a rollback too (a write in the
///   scope may have gone through another connection and committed; an
///   invalidation of unchanged data costs one miss). [`Pending::commit`]
///   awaits a commit in the scope and then runs. A target that fails is
///   logged, counted and queued for replay (and the cache bypassed until it
///   lands), exactly as for `#[invalidates]`.
/// * **Nested.** Run inside another `Pending`'s scope (a savepoint's
///   `Pending` inside the transaction's), the targets move to the
///   enclosing one: they land when the outer transaction commits.
/// * **Nothing is lost.** A `Pending` dropped with recorded targets (a
///   handler that returned early with `?`, a cancelled request) lands them
///   in a task of its own on the current tokio runtime (queued for replay
///   where there is none), and logs a warning.
#[must_use = "recorded invalidations land through `run` or `commit` (dropped, they land in a task of their own)"]
#[derive(Default)]
pub struct Pending(Arc<Shared>);

#[derive(Default)]
struct Shared(Mutex<Vec<Recorded>>);

/// What one invalidating call would have deleted.
#[derive(Clone)]
struct Recorded {
    cache: Cache,
    origin: Origin,
    /// Full targets, each with the template it counts under.
    targets: Vec<(&'static str, Pattern)>,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending")
            .field("recorded", &self.len())
            .finish()
    }
}

impl Pending {
    /// Nothing recorded yet.
    pub fn new() -> Pending {
        Pending::default()
    }

    /// Runs `future` with its `#[invalidates]` calls recorded here rather
    /// than landed, and its cached calls bypassing the cache.
    pub async fn scope<F: Future>(&self, future: F) -> F::Output {
        SCOPE.scope(self.0.clone(), future).await
    }

    /// Records the deletion of one key, as [`Cache::delete`] would do it.
    #[track_caller]
    pub fn delete(&self, cache: &Cache, key: &str) {
        self.manual(cache, Pattern::Exact(key.to_owned()), Location::caller());
    }

    /// Records the deletion of every key under a prefix (`"sets:user:42:*"`),
    /// as [`Cache::delete_pattern`] would do it.
    #[track_caller]
    pub fn delete_pattern(&self, cache: &Cache, pattern: &str) {
        self.manual(cache, Pattern::parse(pattern), Location::caller());
    }

    /// Records the invalidation of a tag, as [`Cache::invalidate_tag`] would
    /// do it.
    #[track_caller]
    pub fn invalidate_tag(&self, cache: &Cache, tag: &str) {
        self.manual(cache, Pattern::Tag(tag.to_owned()), Location::caller());
    }

    /// How many invalidating calls are recorded.
    pub fn len(&self) -> usize {
        self.0.lock().len()
    }

    /// Whether nothing is recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Awaits `commit` (the transaction's commit) in this scope, then lands
    /// every recorded invalidation (whatever the commit returned), and
    /// returns what the commit returned.
    pub async fn commit<T, E>(self, commit: impl Future<Output = Result<T, E>>) -> Result<T, E> {
        let out = self.scope(commit).await;
        self.run().await;
        out
    }

    /// Lands every recorded invalidation now: call it after the commit (or
    /// the rollback). Never fails; what does not land is queued for replay.
    /// Inside another `Pending`'s scope, hands them to that one instead.
    pub async fn run(self) {
        let recorded = self.0.take();
        if recorded.is_empty() {
            return;
        }
        let enclosing = SCOPE.try_with(|outer| {
            if Arc::ptr_eq(outer, &self.0) {
                return false;
            }
            outer.lock().extend(recorded.iter().map(Recorded::clone));
            true
        });
        if enclosing == Ok(true) {
            return;
        }
        land_all(&recorded).await;
    }
    fn manual(&self, cache: &Cache, pattern: Pattern, at: &'static Location<'static>) {
        let origin = Origin {
            function: "Pending (manual)",
            file: at.file(),
            line: at.line(),
        };
        let target = cache.target(&pattern);
        self.0.push(Recorded {
            cache: cache.clone(),
            origin,
            targets: vec![("", target)],
        });
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Recorded>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn push(&self, recorded: Recorded) {
        self.lock().push(recorded);
    }

    fn take(&self) -> Vec<Recorded> {
        std::mem::take(&mut *self.lock())
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        let left = self.take();
        if left.is_empty() {
            return;
        }
        tracing::warn!(
            calls = left.len(),
            "a Pending was dropped with recorded invalidations (an early return, a cancelled call); landing them now"
        );
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move { land_all(&left).await });
            }
            Err(_) => {
                for r in left {
                    r.cache
                        .enqueue(r.targets.into_iter().map(|(_, t)| t).collect());
                }
            }
        }
    }
}

/// Lands each recorded call's targets, all at the same time. Cancelled
/// after its first poll, each landing's own guard queues what it had not
/// landed.
async fn land_all(recorded: &[Recorded]) {
    futures_util::future::join_all(
        recorded
            .iter()
            .map(|r| land(&r.cache, &r.origin, &r.targets)),
    )
    .await;
}

/// Runs `transaction`, from its `begin` to its `commit`, in the scope of a
/// new [`Pending`], then lands what its `#[invalidates]` calls recorded,
/// and returns what it returned. The simplest safe way to write a
/// transaction: its invalidations land after the commit, and its cached
/// calls never store what it has not committed.
///
/// ```
/// use cachemacro_runtime::{after_commit, invalidates};
/// # #[derive(Debug)] struct DbError;
/// # struct Tx; impl Tx { async fn commit(self) -> Result<(), DbError> { Ok(()) } }
/// # struct Db; impl Db { async fn begin(&self) -> Result<Tx, DbError> { Ok(Tx) } }
///
/// #[invalidates("user-collections:<user_id>")]
/// async fn add_image_to_collection(tx: &mut Tx, user_id: u64, image_id: u64) -> Result<(), DbError> {
/// #   Ok(())
///     // … INSERT … on the transaction
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), DbError> {
/// # let db = Db;
/// after_commit(async {
///     let mut tx = db.begin().await?;
///     add_image_to_collection(&mut tx, 42, 7).await?;
///     tx.commit().await
/// })
/// .await?; // committed, then `user-collections:42` deleted
/// # Ok(()) }
/// ```
pub async fn after_commit<F: Future>(transaction: F) -> F::Output {
    let pending = Pending::new();
    let out = pending.scope(transaction).await;
    pending.run().await;
    out
}

/// Whether the current task runs inside a [`Pending::scope`].
pub(crate) fn in_scope() -> bool {
    SCOPE.try_with(|_| ()).is_ok()
}

/// Records `targets` in the current scope; `false` (nothing recorded) when
/// there is none, so the caller lands them itself.
pub(crate) fn record(cache: &Cache, origin: Origin, targets: &[(&'static str, Pattern)]) -> bool {
    SCOPE
        .try_with(|shared| {
            shared.push(Recorded {
                cache: cache.clone(),
                origin,
                targets: targets.to_vec(),
            });
        })
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send<T: Send>(_: &T) {}

    fn origin() -> Origin {
        Origin {
            function: "f",
            file: "x.rs",
            line: 1,
        }
    }

    #[tokio::test]
    async fn a_scope_is_send_and_records_only_inside_it() {
        let cache = Cache::memory();
        let pending = Pending::new();
        let targets = [("t", Pattern::Exact("k".into()))];
        let scoped = pending.scope(async { record(&cache, origin(), &targets) });
        send(&scoped);
        assert!(scoped.await);
        assert!(!record(&cache, origin(), &targets), "outside the scope");
        assert!(!in_scope());
        assert_eq!(pending.len(), 1);
        assert_eq!(cache.stats().invalidations, 0, "recorded, not landed");
        pending.run().await;
        assert_eq!(cache.stats().invalidations, 1);
    }

    #[tokio::test]
    async fn a_nested_pending_hands_its_targets_to_the_enclosing_one() {
        let cache = Cache::memory();
        let outer = Pending::new();
        outer
            .scope(async {
                let inner = Pending::new();
                inner.delete(&cache, "a");
                inner.run().await; // a savepoint released: nothing visible yet
            })
            .await;
        assert_eq!(
            cache.stats().invalidations,
            0,
            "not before the outer commit"
        );
        assert_eq!(outer.len(), 1);
        outer.run().await;
        assert_eq!(cache.stats().invalidations, 1);
    }

    #[tokio::test]
    async fn a_dropped_pending_lands_what_it_recorded() {
        let cache = Cache::memory();
        let pending = Pending::new();
        pending.delete(&cache, "a");
        pending.invalidate_tag(&cache, "t");
        drop(pending);
        for _ in 0..100 {
            if cache.stats().invalidations == 2 {
                break;
            }
            tokio::task::yield_now().await;
        }
        let stats = cache.stats();
        assert_eq!((stats.invalidations, stats.invalidations_queued), (2, 0));
    }

    #[test]
    fn dropped_outside_a_runtime_it_queues() {
        let cache = Cache::memory();
        let pending = Pending::new();
        pending.delete_pattern(&cache, "a:*");
        drop(pending);
        assert_eq!(cache.stats().invalidations_queued, 1);
    }
}
