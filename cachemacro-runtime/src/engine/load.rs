//! Running a load: in the caller, or in a task of its own when the loader
//! can (`stale`, `timeout`), under the soft and hard timeouts, with
//! fail-safe.

use std::marker::PhantomData;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::flight::{self, Leader, Outcome};
use super::lookup::{Call, Fill, Old};
use super::options::EntryOptions;
use super::policy::Policy;
use super::trace::{Answer, Answered};
use super::write::{apply, failed, plan};
use crate::Cache;
use crate::codec::Codec;
use crate::error::LoadTimeout;
use crate::stats::Recorder;

/// How a cached call runs its body.
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

/// A body that borrows from its caller: it runs in the caller only.
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

/// Makes the body when a load starts (so a hit clones nothing), as a
/// `'static` future that can run in a task of its own.
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
    options: EntryOptions,
    key: String,
    tags: Vec<String>,
    function: &'static str,
    fill: Fill,
    policy: P,
    fallback: Option<Old>,
    codec: PhantomData<fn() -> C>,
}

impl<C: Codec, P> Background<C, P> {
    pub(super) fn new(call: &Call<'_>, fill: Fill, policy: P, fallback: Option<Old>) -> Self {
        Background {
            cache: call.cache.clone(),
            options: call.options.clone(),
            key: call.key.to_owned(),
            tags: call.tags.to_vec(),
            function: call.function,
            fill,
            policy,
            fallback,
            codec: PhantomData,
        }
    }

    /// Runs the body, bounded by the hard timeout even when no caller waits
    /// (a stuck source must not pile up loads), then stores. `done` is
    /// dropped as soon as the body is over.
    async fn run<O, F: Future<Output = O>>(
        self,
        load: F,
        done: tokio::sync::oneshot::Sender<()>,
    ) -> Option<(O, Outcome)>
    where
        P: Policy<O>,
    {
        let rec = self.cache.recorder(self.options.family_name());
        let answer = Answer::off();
        let call = Call {
            cache: &self.cache,
            rec: &rec,
            options: &self.options,
            key: &self.key,
            tags: &self.tags,
            function: self.function,
            again: false,
            answer: &answer,
        };
        let started = Instant::now();
        let out = match self.options.hard_timeout {
            Some(after) => tokio::time::timeout(after, load).await.ok(),
            None => Some(load.await),
        };
        drop(done);
        let Some(out) = out else {
            rec.add(|c| &c.hard_timeouts, 1);
            // Given up: keep serving the old value a while rather than retry.
            let plan = failed(&self.cache, self.fill, self.fallback.as_ref());
            apply(&call, plan).await;
            return None;
        };
        let took = started.elapsed();
        rec.load_took(took);
        let plan = plan::<C, O, P>(
            &call,
            self.fill,
            &self.policy,
            &out,
            took,
            self.fallback.as_ref(),
        );
        let outcome = apply(&call, plan).await;
        Some((out, outcome))
    }
}

pub(super) fn count_load(rec: &Recorder<'_>) {
    rec.add(|c| &c.loads, 1);
}

/// A hard timeout, and how the caller answers a load given up at it.
pub(super) struct Hard<H> {
    after: Duration,
    how: H,
}

impl<H: Copy> Clone for Hard<H> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<H: Copy> Copy for Hard<H> {}

impl<H: Copy> Hard<H> {
    /// The call's hard timeout, if it has one it can answer.
    pub(super) fn of<O, P: Policy<O, Timeout = H>>(
        options: &EntryOptions,
        policy: &P,
    ) -> Option<Self> {
        Some(Hard {
            after: options.hard_timeout?,
            how: policy.on_timeout()?,
        })
    }

    /// The output a call gets when its load was given up.
    pub(super) fn error<O, P: Policy<O, Timeout = H>>(
        self,
        policy: &P,
        function: &'static str,
    ) -> O {
        policy.timed_out(
            self.how,
            LoadTimeout {
                function,
                after: self.after,
            },
        )
    }
}

/// Runs the body without the cache, under the hard timeout.
pub(super) async fn uncached<O, B, L: Loader<O, B>, P: Policy<O>>(
    call: &Call<'_>,
    load: L,
    policy: &P,
) -> O {
    count_load(call.rec);
    match run_here(load, Hard::of(call.options, policy)).await {
        Ok((out, took)) => {
            call.rec.load_took(took);
            out
        }
        Err(hard) => {
            call.rec.add(|c| &c.hard_timeouts, 1);
            hard.error(policy, call.function)
        }
    }
}

/// Hands the flight's outcome to its waiters, once.
pub(super) struct Publish<'a>(pub(super) Option<Leader<'a>>);

impl Publish<'_> {
    pub(super) fn send(&mut self, outcome: Outcome) {
        if let Some(leader) = self.0.take() {
            leader.finish(outcome);
        }
    }
}

/// A fresh entry this caller drew for early refresh. With a spawnable body
/// the refresh runs in the background and the caller gets the entry; else
/// the caller loads, and returns what it loaded (or the entry, if the load
/// failed or passed its hard timeout).
pub(super) async fn refresh_early<C, O, P, L>(
    call: &Call<'_>,
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
    count_load(call.rec);
    let (load, fill) = if L::SPAWNS {
        match load.spawn(Background::<C, P>::new(call, fill, policy.clone(), None)) {
            Ok(_) => return policy.unstore(value),
            Err((load, then)) => (load, then.fill),
        }
    } else {
        (load, fill)
    };
    match run_here(load, Hard::of(call.options, &policy)).await {
        Ok((out, took)) if !policy.failed(&out) => {
            call.rec.load_took(took);
            let plan = plan::<C, O, P>(call, fill, &policy, &out, took, None);
            apply(call, plan).await;
            out
        }
        failed => {
            if failed.is_err() {
                call.rec.add(|c| &c.hard_timeouts, 1);
            }
            fill.give_back().await;
            policy.unstore(value)
        }
    }
}

/// Serves a kept value at once (`stale`, or `timeout` while another caller
/// refreshes); the caller holding the refresh lock starts the refresh in
/// the background.
pub(super) fn serve_kept<C, O, P, L>(
    call: &Call<'_>,
    load: L,
    policy: P,
    fill: Fill,
    value: P::Stored,
    old: Old,
) -> O
where
    C: Codec,
    P: Policy<O> + Clone,
    L: Loader<O, Background<C, P>>,
{
    call.rec.add(|c| &c.stale_served, 1);
    call.answer.note(Answered::Stale);
    let served = policy.unstore(value);
    if fill.refreshing {
        count_load(call.rec);
        let then = Background::<C, P>::new(call, fill, policy, Some(old));
        drop(load.spawn(then));
    }
    served
}

/// Runs the body in the calling task, bounded by the hard timeout if there
/// is one: its output and how long it took, or the timeout it passed (the
/// load is then dropped).
pub(super) async fn run_here<O, L: Loader<O, B>, B, H: Copy>(
    load: L,
    hard: Option<Hard<H>>,
) -> Result<(O, Duration), Hard<H>> {
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
pub(super) async fn load_and_store<C, O, P, L>(
    call: &Call<'_>,
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
    count_load(call.rec);
    let hard = Hard::of(call.options, &policy);
    let soft = call.options.timeout.filter(|_| fallback.is_some());
    // With a spawnable body, a load that outlives a timeout goes on in the
    // background and stores its value when done; the caller falls back on
    // the old value or the timeout error.
    let backstop = match (
        L::SPAWNS && (soft.is_some() || hard.is_some()),
        fallback,
        hard,
    ) {
        (true, Some((value, old)), _) => Ok(Backstop::Old(value, old)),
        (true, None, Some(hard)) => Ok(Backstop::Error(hard)),
        (_, fallback, _) => Err(fallback),
    };
    let (load, fill, fallback) = match backstop {
        Ok(backstop) => {
            let old = match &backstop {
                Backstop::Old(_, old) => Some(old.clone()),
                Backstop::Error(_) => None,
            };
            match load.spawn(Background::<C, P>::new(call, fill, policy.clone(), old)) {
                Ok(spawned) => {
                    let waited = Waited {
                        call,
                        policy,
                        backstop,
                        soft,
                    };
                    return waited.join(spawned, publish).await;
                }
                Err((load, then)) => (load, then.fill, backstop.into_fallback()),
            }
        }
        Err(fallback) => (load, fill, fallback),
    };
    let (out, took) = match run_here(load, hard).await {
        Ok(loaded) => {
            call.rec.load_took(loaded.1);
            loaded
        }
        // Given up at the hard timeout; the load was dropped. Keep serving
        // the old value a while rather than retry at once.
        Err(hard) => {
            call.rec.add(|c| &c.hard_timeouts, 1);
            let old = fallback.as_ref().map(|(_, old)| old);
            apply(call, failed(call.cache, fill, old)).await;
            return match fallback {
                Some((value, old)) => {
                    fail_safe(call, publish, &old);
                    policy.unstore(value)
                }
                None => hard.error(&policy, call.function),
            };
        }
    };
    let old = fallback.as_ref().map(|(_, old)| old);
    let plan = plan::<C, O, P>(call, fill, &policy, &out, took, old);
    let outcome = apply(call, plan).await;
    match fallback {
        Some((value, old)) if policy.failed(&out) => {
            fail_safe(call, publish, &old);
            policy.unstore(value)
        }
        _ => {
            publish.send(outcome);
            out
        }
    }
}

/// Counts and shares a fail-safe answer.
fn fail_safe(call: &Call<'_>, publish: &mut Publish<'_>, old: &Old) {
    call.rec.add(|c| &c.fail_safe_activations, 1);
    call.answer.note(Answered::FailSafe);
    tracing::debug!("the load failed; serving the last value (fail-safe)");
    publish.send(Outcome::Stale(old.bytes.clone()));
}

/// What a caller waiting on a background load answers with if the load
/// fails or is given up.
enum Backstop<S, H> {
    /// The old value (fail-safe, soft timeout).
    Old(S, Old),
    /// The caller's own timeout error.
    Error(Hard<H>),
}

impl<S, H> Backstop<S, H> {
    fn into_fallback(self) -> Option<(S, Old)> {
        match self {
            Backstop::Old(value, old) => Some((value, old)),
            Backstop::Error(_) => None,
        }
    }
}

/// A caller waiting for a load that runs in its own task.
struct Waited<'a, O, P: Policy<O>> {
    call: &'a Call<'a>,
    policy: P,
    backstop: Backstop<P::Stored, P::Timeout>,
    /// Armed only with an old value.
    soft: Option<Duration>,
}

impl<O, P: Policy<O>> Waited<'_, O, P> {
    /// Waits up to the soft timeout for the body (then serves the old
    /// value); the task gives the body up at the hard timeout (then the old
    /// value, or the caller's timeout error). A load past the soft timeout
    /// goes on and stores its value when done.
    async fn join(self, spawned: Spawned<O>, publish: &mut Publish<'_>) -> O {
        let Waited {
            call,
            policy,
            backstop,
            soft,
        } = self;
        let Spawned { handle, mut body } = spawned;
        let backstop = match (soft, backstop) {
            (Some(soft), Backstop::Old(value, old)) => {
                // `Err` here is the body's end (the sender dropped), not a failure.
                let over = tokio::time::timeout(soft, &mut body).await.is_ok();
                if !over {
                    call.rec.add(|c| &c.soft_timeouts, 1);
                    call.rec.add(|c| &c.stale_served, 1);
                    call.answer.note(Answered::Stale);
                    publish.send(Outcome::Stale(old.bytes));
                    return policy.unstore(value);
                }
                Backstop::Old(value, old)
            }
            (_, backstop) => backstop,
        };
        let waited = Waited {
            call,
            policy,
            backstop,
            soft,
        };
        match handle.await {
            Ok(Some(loaded)) => waited.joined(loaded, publish),
            // The task counted the hard timeout and kept the old value.
            Ok(None) => match waited.backstop {
                Backstop::Old(value, old) => {
                    fail_safe(call, publish, &old);
                    waited.policy.unstore(value)
                }
                Backstop::Error(hard) => hard.error(&waited.policy, call.function),
            },
            // The body panicked in its task: panic here, as it would have inline.
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            // Cancelled (its runtime is shutting down): answer as if given up.
            Err(_) => match waited.backstop {
                Backstop::Old(value, _) => waited.policy.unstore(value),
                Backstop::Error(hard) => hard.error(&waited.policy, call.function),
            },
        }
    }

    /// The load's output, or the old value if it failed.
    fn joined(self, (out, outcome): (O, Outcome), publish: &mut Publish<'_>) -> O {
        match self.backstop {
            Backstop::Old(value, old) if self.policy.failed(&out) => {
                fail_safe(self.call, publish, &old);
                self.policy.unstore(value)
            }
            _ => {
                publish.send(outcome);
                out
            }
        }
    }
}
