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
/// Run the transaction's invalidating calls in [`Pending::scope`] instead:
/// they record what they would delete, and [`Pending::commit`] (or
/// [`Pending::run`] after the commit) deletes it once the new rows are
/// visible to everyone.
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
/// let mut tx = db.begin().await?;
/// pending.scope(use_credits(&mut tx, 42, 1)).await?; // recorded, not yet deleted
/// pending.commit(tx.commit()).await?;                // committed, then deleted
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
///   read nothing from the cache and store nothing. Their body may read
///   through the transaction, whose rows are not committed (and may be
///   rolled back); storing them would serve data that never existed.
/// * **After the commit.** [`Pending::commit`] awaits the commit and then
///   lands every recorded invalidation, whether the commit reported success
///   or not (a commit whose reply was lost may have landed, and an
///   invalidation of unchanged data costs one miss).
///   [`Pending::run`] lands them, for code that commits itself. A target
///   that fails is logged, counted and queued for replay (and the cache
///   bypassed until it lands), exactly as for `#[invalidates]`.
/// * **Nothing is lost.** A `Pending` dropped with recorded targets (the
///   handler returned early with `?`, its future was cancelled) queues
///   them for replay and logs a warning: the transaction may have
///   committed. After an explicit rollback, call [`Pending::discard`].
#[must_use = "recorded invalidations land only through `commit` or `run` (dropped, they are queued for replay)"]
#[derive(Default)]
pub struct Pending(Arc<Shared>);

#[derive(Default)]
struct Shared(Mutex<Vec<Recorded>>);

/// What one invalidating call would have deleted.
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

    /// Awaits `commit` (the transaction's commit), then lands every
    /// recorded invalidation (whatever the commit returned), and returns
    /// what the commit returned.
    pub async fn commit<T, E>(self, commit: impl Future<Output = Result<T, E>>) -> Result<T, E> {
        let out = commit.await;
        self.run().await;
        out
    }

    /// Lands every recorded invalidation now: call it after the commit.
    /// Never fails; what does not land is queued for replay.
    pub async fn run(self) {
        let mut rest = Unlanded(self.0.take());
        rest.0.reverse();
        while let Some(r) = rest.0.pop() {
            land(&r.cache, &r.origin, &r.targets).await;
        }
    }

    /// Forgets what was recorded: for a transaction that was rolled back,
    /// so nothing it would have invalidated changed.
    pub fn discard(self) {
        drop(self.0.take());
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
        if !left.is_empty() {
            tracing::warn!(
                calls = left.len(),
                "invalidations recorded for after a commit were neither run nor discarded; queued for replay"
            );
            drop(Unlanded(left));
        }
    }
}

/// Recorded invalidations not landed yet: queued for replay if dropped
/// (a cancelled `run`).
struct Unlanded(Vec<Recorded>);

impl Drop for Unlanded {
    fn drop(&mut self) {
        for r in self.0.drain(..) {
            r.cache
                .enqueue(r.targets.into_iter().map(|(_, t)| t).collect());
        }
    }
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

    #[tokio::test]
    async fn a_scope_is_send_and_records_only_inside_it() {
        let cache = Cache::memory();
        let pending = Pending::new();
        let targets = [("t", Pattern::Exact("k".into()))];
        let origin = Origin {
            function: "f",
            file: "x.rs",
            line: 1,
        };
        let scoped = pending.scope(async { record(&cache, origin, &targets) });
        send(&scoped);
        assert!(scoped.await);
        assert!(!record(&cache, origin, &targets), "outside the scope");
        assert!(!in_scope());
        assert_eq!(pending.len(), 1);
        pending.discard();
        assert_eq!(
            cache.stats().invalidations_queued,
            0,
            "discarded, not queued"
        );
    }

    #[tokio::test]
    async fn a_dropped_pending_queues_what_it_recorded() {
        let cache = Cache::memory();
        let pending = Pending::new();
        pending.delete(&cache, "a");
        pending.invalidate_tag(&cache, "t");
        drop(pending);
        assert_eq!(cache.stats().invalidations_queued, 2);
    }
}
