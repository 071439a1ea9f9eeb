//! Running a cached function's body: in the caller, or in a task of its
//! own when the function can (`stale`, `timeout`), under the soft and hard
//! timeouts, with fail-safe, behind single-flight.

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::lookup::{Fill, Lookup, Old, fail_safe_allows, lookup, serves_kept_now};
use super::store::{apply, failed, plan, unstored};
use super::{Policy, Request, Site};
use crate::codec::{Codec, Decoded, decode_entry};
use crate::error::LoadTimeout;
use crate::flight::{self, Join, Leader, Outcome};
use crate::stats::Recorder;
use crate::{Cache, Error};

/// How a generated call runs its body.
pub trait Loader<O, B>: Sized {
    /// Whether [`Loader::spawn`] runs the body in a task of its own.
    const SPAWNS: bool;
    /// The body, run in the calling task.
    type Fut: Future<Output = O>;
    /// The body, to await here.
    fn start(self) -> Self::Fut;
    /// Runs the body in a task of its own that then stores what it loaded
    /// (`then`); gives both back when it cannot.
    fn spawn(self, then: B) -> Result<Spawned<O>, (Self, B)>;
}

/// A load running in a task of its own.
pub struct Spawned<O> {
    /// Its output and what waiters get, once stored; `None` when the body
    /// was given up at its hard timeout.
    handle: JoinHandle<Option<(O, Outcome)>>,
    /// Closed when the body has finished (or was given up): timeouts time
    /// the body, not the store after it, as they do inline.
    body: tokio::sync::oneshot::Receiver<()>,
}

/// A body that borrows the call's arguments: it runs in the caller only.
pub struct Inline<F>(pub F);

impl<O, B, F: Future<Output = O>> Loader<O, B> for Inline<F> {
    const SPAWNS: bool = false;
    type Fut = F;

    fn start(self) -> F {
        self.0
    }

    fn spawn(self, then: B) -> Result<Spawned<O>, (Self, B)> {
        Err((self, then))
    }
}

/// Makes the body from owned copies of the arguments (`stale`, `timeout`):
/// called only when a load runs, so a hit clones nothing.
pub struct Spawnable<D>(pub D);

impl<O, C, P, D, G> Loader<O, Background<C, P>> for Spawnable<D>
where
    D: FnOnce() -> G,
    G: Future<Output = O> + Send + 'static,
    O: Send + 'static,
    C: Codec,
    P: Policy<O> + Send + 'static,
{
    const SPAWNS: bool = true;
    type Fut = G;

    fn start(self) -> G {
        (self.0)()
    }

    fn spawn(self, then: Background<C, P>) -> Result<Spawned<O>, (Self, Background<C, P>)> {
        let leading = flight::leading_keys();
        let load = (self.0)();
        let (done, body) = tokio::sync::oneshot::channel();
        let handle = tokio::spawn(flight::leading_as(leading, then.run(load, done)));
        Ok(Spawned { handle, body })
    }
}

/// What a load in a task of its own needs to store its value.
pub struct Background<C, P> {
    cache: Cache,
    site: &'static Site,
    fill: Fill,
    policy: P,
    fallback: Option<Old>,
    codec: PhantomData<fn() -> C>,
}

impl<C: Codec, P> Background<C, P> {
    /// Runs the body, bounded by the function's `hard_timeout` even when no
    /// caller waits (a stuck source must not pile up loads), then stores.
    /// `done` is dropped as soon as the body is over.
    async fn run<O, F: Future<Output = O>>(
        self,
        load: F,
        done: tokio::sync::oneshot::Sender<()>,
    ) -> Option<(O, Outcome)>
    where
        P: Policy<O>,
    {
        let rec = self.cache.recorder(Some(self.site.template));
        let started = Instant::now();
        let out = match self.site.hard_timeout {
            Some(after) => tokio::time::timeout(after, load).await.ok(),
            None => Some(load.await),
        };
        drop(done);
        let Some(out) = out else {
            rec.add(|c| &c.hard_timeouts, 1);
            // Given up: keep serving the old value a while rather than retry.
            let plan = failed(&self.cache, self.fill, self.fallback.as_ref());
            apply(&self.cache, &rec, self.site, plan).await;
            return None;
        };
        let plan = plan::<C, O, P>(
            &self.cache,
            &rec,
            self.site,
            self.fill,
            &self.policy,
            &out,
            started.elapsed(),
            self.fallback.as_ref(),
        );
        let outcome = apply(&self.cache, &rec, self.site, plan).await;
        Some((out, outcome))
    }
}

fn count_load(rec: &Recorder<'_>) {
    rec.add(|c| &c.loads, 1);
}

/// A hard timeout, with the function's own error for it.
struct Hard<O> {
    after: Duration,
    error: fn(LoadTimeout) -> O,
}

impl<O> Clone for Hard<O> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<O> Copy for Hard<O> {}

impl<O> Hard<O> {
    /// The function's hard timeout, if it has one it can report.
    fn of<P: Policy<O>>(site: &Site, policy: &P) -> Option<Self> {
        Some(Hard {
            after: site.hard_timeout?,
            error: policy.on_timeout()?,
        })
    }

    /// The error a call gets when its load was given up.
    fn error(self, site: &'static Site) -> O {
        (self.error)(LoadTimeout {
            function: site.function,
            after: self.after,
        })
    }
}

/// Runs the body without the cache, under the hard timeout.
async fn uncached<O, B, L: Loader<O, B>, P: Policy<O>>(
    rec: &Recorder<'_>,
    site: &'static Site,
    load: L,
    policy: &P,
) -> O {
    count_load(rec);
    match run_here(load, Hard::of(site, policy)).await {
        Ok((out, _)) => out,
        Err(hard) => {
            rec.add(|c| &c.hard_timeouts, 1);
            hard.error(site)
        }
    }
}

/// Single-flight in the process around [`direct`]; the one path behind
/// `cached`, `cached_result` and `cached_option`.
pub(super) async fn through<C, O, P, L>(
    cache: Cache,
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
    let rec = cache.recorder(Some(site.template));
    let request = match request {
        Ok(request) => request,
        Err(e) => {
            rec.add(|c| &c.errors, 1);
            cache.log_failure("key building", site.template, "", &e);
            return uncached(&rec, site, load, &policy).await;
        }
    };
    let key = cache.full_key(&request.key).into_owned();
    let call = Call {
        cache: &cache,
        rec: &rec,
        site,
        key: &key,
    };
    if !cache.0.single_flight || flight::leading(&key) {
        // Off, or a recursive call with the same key (waiting would wait for itself).
        let recursive = flight::leading(&key);
        return direct::<C, O, P, L>(call, &request, load, policy, recursive, None).await;
    }
    match cache.0.flights.join(&key) {
        Join::Leader(leader) => {
            let run = direct::<C, O, P, L>(call, &request, load, policy, false, Some(leader));
            flight::as_leader(&key, run).await
        }
        Join::Follower(slot) => {
            rec.add(|c| &c.coalesced, 1);
            // Bounded: a leader that awaits a task making the same call
            // (where its task-local is not seen) would otherwise never finish.
            let waited = tokio::time::timeout(cache.0.lease_ttl, flight::wait(slot)).await;
            let (bytes, stale) = match waited {
                Ok(Outcome::Entry(bytes)) => (Some(bytes), false),
                Ok(Outcome::Stale(bytes)) => (Some(bytes), true),
                _ => (None, false),
            };
            if let Some(Decoded::Value(value)) = bytes.map(|b| decode_entry::<C, P::Stored>(&b)) {
                if stale {
                    rec.add(|c| &c.stale_served, 1);
                }
                return policy.unstore(value);
            }
            // The leader had nothing to share: run this caller's own body.
            uncached(&rec, site, load, &policy).await
        }
    }
}

/// One call's context.
#[derive(Clone, Copy)]
struct Call<'a> {
    cache: &'a Cache,
    rec: &'a Recorder<'a>,
    site: &'static Site,
    key: &'a str,
}

impl Call<'_> {
    fn background<C, P>(&self, fill: Fill, policy: P, fallback: Option<Old>) -> Background<C, P> {
        Background {
            cache: self.cache.clone(),
            site: self.site,
            fill,
            policy,
            fallback,
            codec: PhantomData,
        }
    }
}

/// Hands the flight's outcome to its waiters, once.
struct Publish<'a>(Option<Leader<'a>>);

impl Publish<'_> {
    fn send(&mut self, outcome: Outcome) {
        if let Some(leader) = self.0.take() {
            leader.finish(outcome);
        }
    }
}

/// Read; serve a fresh or kept entry or load; store: one caller's path.
async fn direct<C, O, P, L>(
    call: Call<'_>,
    request: &Request,
    load: L,
    policy: P,
    recursive: bool,
    leader: Option<Leader<'_>>,
) -> O
where
    C: Codec,
    P: Policy<O> + Clone,
    L: Loader<O, Background<C, P>>,
{
    let Call {
        cache,
        rec,
        site,
        key,
    } = call;
    let mut publish = Publish(leader);
    match lookup::<C, P::Stored>(cache, rec, site, key, request, recursive).await {
        Lookup::Fresh {
            value,
            bytes,
            refresh,
        } => {
            publish.send(Outcome::Entry(Arc::new(bytes)));
            match refresh {
                None => policy.unstore(value),
                Some(fill) => {
                    rec.add(|c| &c.early_refreshes, 1);
                    refresh_early::<C, O, P, L>(call, load, policy, fill, value).await
                }
            }
        }
        Lookup::Kept {
            value,
            old,
            since,
            fill,
        } if L::SPAWNS && serves_kept_now(site, since, fill.guard.armed) => {
            rec.add(|c| &c.stale_served, 1);
            publish.send(Outcome::Stale(old.bytes.clone()));
            let served = policy.unstore(value);
            // Only the caller holding the refresh lock refreshes; the load
            // goes on after this call returns.
            if fill.guard.armed {
                count_load(rec);
                let then = call.background::<C, P>(fill, policy, Some(old));
                drop(load.spawn(then));
            }
            served
        }
        Lookup::Kept {
            value,
            old,
            since,
            fill,
        } => {
            let fallback = fail_safe_allows(site, since).then_some((value, old));
            load_and_store::<C, O, P, L>(call, load, policy, fill, fallback, &mut publish).await
        }
        Lookup::Miss(fill) => {
            load_and_store::<C, O, P, L>(call, load, policy, fill, None, &mut publish).await
        }
        Lookup::Bypass => {
            let out = uncached(rec, site, load, &policy).await;
            let outcome = policy
                .store_as(site, &out)
                .map_or(Outcome::Nothing, |(value, _)| unstored::<C, _>(value));
            publish.send(outcome);
            out
        }
    }
}

/// A fresh entry this caller drew for early refresh. With a spawnable body
/// the refresh runs in the background and the caller gets the entry; else
/// the caller loads, and returns what it loaded (or the entry, if the load
/// failed or passed its hard timeout).
async fn refresh_early<C, O, P, L>(
    call: Call<'_>,
    load: L,
    policy: P,
    fill: Fill,
    value: P::Stored,
) -> O
where
    C: Codec,
    P: Policy<O> + Clone,
    L: Loader<O, Background<C, P>>,
{
    let Call {
        cache, rec, site, ..
    } = call;
    count_load(rec);
    let (load, fill) = if L::SPAWNS {
        match load.spawn(call.background::<C, P>(fill, policy.clone(), None)) {
            Ok(_) => return policy.unstore(value),
            Err((load, then)) => (load, then.fill),
        }
    } else {
        (load, fill)
    };
    match run_here(load, Hard::of(site, &policy)).await {
        Ok((out, took)) if !policy.failed(&out) => {
            let plan = plan::<C, O, P>(cache, rec, site, fill, &policy, &out, took, None);
            apply(cache, rec, site, plan).await;
            out
        }
        failed => {
            if failed.is_err() {
                rec.add(|c| &c.hard_timeouts, 1);
            }
            fill.give_back().await;
            policy.unstore(value)
        }
    }
}

/// Runs the body in the calling task, bounded by the hard timeout if there
/// is one: its output and how long it took, or the timeout it passed (the
/// load is then dropped).
async fn run_here<O, L: Loader<O, B>, B>(
    load: L,
    hard: Option<Hard<O>>,
) -> Result<(O, Duration), Hard<O>> {
    let started = Instant::now();
    let out = match hard {
        Some(hard) => tokio::time::timeout(hard.after, load.start())
            .await
            .map_err(|_| hard)?,
        None => load.start().await,
    };
    Ok((out, started.elapsed()))
}

/// Loads on a miss (or past `stale`), stores, and answers the caller:
/// with the old value when the load fails or passes a timeout and
/// `fallback` is there (fail-safe), else with the load's own output.
async fn load_and_store<C, O, P, L>(
    call: Call<'_>,
    load: L,
    policy: P,
    fill: Fill,
    fallback: Option<(P::Stored, Old)>,
    publish: &mut Publish<'_>,
) -> O
where
    C: Codec,
    P: Policy<O> + Clone,
    L: Loader<O, Background<C, P>>,
{
    let Call {
        cache, rec, site, ..
    } = call;
    count_load(rec);
    let hard = Hard::of(site, &policy);
    let soft = site.timeout.filter(|_| fallback.is_some());
    // With a spawnable body, a load that outlives a timeout goes on in the
    // background and stores its value when done.
    let (load, fill) = if L::SPAWNS && (soft.is_some() || hard.is_some()) {
        let old = fallback.as_ref().map(|(_, old)| old.clone());
        match load.spawn(call.background::<C, P>(fill, policy.clone(), old)) {
            Ok(spawned) => {
                let waited = Waited {
                    call,
                    policy,
                    fallback,
                    soft,
                    hard,
                };
                return waited.join(spawned, publish).await;
            }
            Err((load, then)) => (load, then.fill),
        }
    } else {
        (load, fill)
    };
    let (out, took) = match run_here(load, hard).await {
        Ok(loaded) => loaded,
        // Given up at the hard timeout; the load was dropped. Keep serving
        // the old value a while rather than retry at once.
        Err(hard) => {
            rec.add(|c| &c.hard_timeouts, 1);
            let old = fallback.as_ref().map(|(_, old)| old);
            apply(cache, rec, site, failed(cache, fill, old)).await;
            return match fallback {
                Some((value, old)) => {
                    fail_safe(rec, publish, &old);
                    policy.unstore(value)
                }
                None => hard.error(site),
            };
        }
    };
    let old = fallback.as_ref().map(|(_, old)| old);
    let plan = plan::<C, O, P>(cache, rec, site, fill, &policy, &out, took, old);
    let outcome = apply(cache, rec, site, plan).await;
    match fallback {
        Some((value, old)) if policy.failed(&out) => {
            fail_safe(rec, publish, &old);
            policy.unstore(value)
        }
        _ => {
            publish.send(outcome);
            out
        }
    }
}

/// Counts and shares a fail-safe answer.
fn fail_safe(rec: &Recorder<'_>, publish: &mut Publish<'_>, old: &Old) {
    rec.add(|c| &c.fail_safe_activations, 1);
    tracing::debug!("the load failed; serving the last value (fail-safe)");
    publish.send(Outcome::Stale(old.bytes.clone()));
}

/// A caller waiting for a load that runs in its own task.
struct Waited<'a, O, P: Policy<O>> {
    call: Call<'a>,
    policy: P,
    fallback: Option<(P::Stored, Old)>,
    /// Armed only with a fallback.
    soft: Option<Duration>,
    hard: Option<Hard<O>>,
}

impl<O, P: Policy<O>> Waited<'_, O, P> {
    /// Waits up to the soft timeout for the body (then serves the old
    /// value); the task gives the body up at the hard timeout (then the old
    /// value, or the function's timeout error). A load past the soft
    /// timeout goes on and stores its value when done.
    async fn join(mut self, spawned: Spawned<O>, publish: &mut Publish<'_>) -> O {
        let Call { rec, site, .. } = self.call;
        let Spawned { handle, mut body } = spawned;
        if let Some(soft) = self.soft {
            // `Err` here is the body's end (the sender dropped), not a failure.
            let over = tokio::time::timeout(soft, &mut body).await.is_ok();
            if !over && let Some((value, old)) = self.fallback.take() {
                rec.add(|c| &c.soft_timeouts, 1);
                rec.add(|c| &c.stale_served, 1);
                publish.send(Outcome::Stale(old.bytes));
                return self.policy.unstore(value);
            }
        }
        match handle.await {
            Ok(Some(loaded)) => self.joined(loaded, publish),
            // The task counted the hard timeout and kept the old value.
            Ok(None) => match (self.fallback, self.hard) {
                (Some((value, old)), _) => {
                    fail_safe(rec, publish, &old);
                    self.policy.unstore(value)
                }
                (None, Some(hard)) => hard.error(site),
                (None, None) => unreachable!("only a hard timeout gives a load up"),
            },
            // The body panicked in its task: panic here, as it would have inline.
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            // Only a runtime shutting down cancels the task, and this caller's
            // task is going down with it.
            Err(e) => panic!("the load of `{}` was cancelled: {e}", site.function),
        }
    }

    /// The load's output, or the old value if it failed.
    fn joined(self, (out, outcome): (O, Outcome), publish: &mut Publish<'_>) -> O {
        match self.fallback {
            Some((value, old)) if self.policy.failed(&out) => {
                fail_safe(self.call.rec, publish, &old);
                self.policy.unstore(value)
            }
            _ => {
                publish.send(outcome);
                out
            }
        }
    }
}
