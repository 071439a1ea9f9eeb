//! The engine: one cached call, from the read to the store. Both
//! [`Cache::get_or_load`](crate::Cache::get_or_load) and the code
//! `#[cached]` expands to run through [`run`].
//!
//! ## Behavior
//!
//! * **A hit is a read**: one round trip of plain reads (the entry and the
//!   versions of the tags it must carry; its exact remaining TTL only near
//!   a freshness decision), judged by the protocol's rules on the client.
//!   It writes nothing, takes no lock and waits on no other caller; in
//!   memory it clones a kept value instead of decoding bytes.
//! * **Race-free fills.** A miss takes a *fill lease* in the key itself,
//!   over exactly what its read saw (if another caller stored meanwhile, it
//!   reads again instead). The loaded value is stored only while the key
//!   still holds this caller's lease, checked atomically on the server.
//!   Deleting the key (an exact invalidation, or a prefix one whose `SCAN`
//!   finds the lease) drops the fill; invalidating a tag changes its
//!   version, so an entry recorded with the old one is never served. A
//!   reader that loaded the old row before a write can therefore never
//!   store it after the write's invalidation (counted in `fills_dropped`).
//! * **Refreshes** (early, or of an entry kept past its freshness) store only
//!   over the very entry they read, by its id, checked in the same script:
//!   an invalidation deletes or replaces that entry, and the refresh is
//!   dropped the same way. The refresh lock, kept in the entry's header,
//!   only keeps refreshers from duplicating work.
//! * **Early refresh** (XFetch): a fresh entry is due once its freshness
//!   left is at most `Δ·β·(−ln u)` (Δ its load time, `u` uniform); the
//!   caller that takes the refresh lock refreshes it.
//! * **Kept entries** (`stale`, `fail_safe`) stay in their key for the grace
//!   past their freshness: physical TTL = TTL + grace, and the grace is in
//!   the entry, so freshness is the key's remaining TTL less it (on the
//!   server's clock). An invalidation deletes a kept entry like any other.
//! * A read failure (backend error, timeout) runs the body and does not try
//!   to store its value: Redis is likely unreachable, and a second timeout
//!   would double the caller's wait.
//! * Misses share one load per key in the process (see `flight.rs`).

pub(crate) mod flight;
mod load;
mod lookup;
mod options;
mod policy;
mod trace;
mod write;

use std::time::Duration;

use tokio::time::Instant;
use tracing::Instrument as _;

pub use load::{Background, Inline, Loader, Spawnable, Spawned};
pub use options::EntryOptions;
pub use policy::{Never, OptionOf, Plain, Policy, ResultOf, Shared, Typed};

use crate::Cache;
use crate::codec::{Cacheable, Codec};
use crate::store::Acquire;
use flight::{Join, Outcome};
use load::{Publish, load_and_store, refresh_early, serve_kept, uncached};
use lookup::{Call, Fill, Old, Read, fail_safe_allows, lease, read, refresh_fill, serves_kept_now};
use trace::{Answer, Answered};
use write::unstored;

/// When a caller arrived, for single-flight.
#[derive(Clone, Copy)]
struct Arrival {
    at: std::time::Instant,
    /// Taken before the caller's first read (a read over the network), as
    /// opposed to just after one that answered at once.
    before_read: bool,
}

impl Arrival {
    fn before_read() -> Arrival {
        Arrival {
            at: std::time::Instant::now(),
            before_read: true,
        }
    }
}

/// How often a waiting follower reads again before it loads itself.
const ROUNDS: usize = 3;

const YEAR: Duration = Duration::from_secs(86_400 * 365);

/// One cached call of `key` (logical, without the namespace) carrying
/// `tags` (logical): a hit, or a load under single-flight and a store; in
/// its span (see `trace.rs`).
pub(crate) async fn run<C, O, P, L>(
    cache: &Cache,
    key: &str,
    tags: &[String],
    options: &EntryOptions,
    function: &'static str,
    load: L,
    policy: P,
) -> O
where
    C: Codec,
    P: Policy<O> + Clone,
    L: Loader<O, Background<C, P>>,
{
    if !trace::wanted() {
        let answer = Answer::off();
        return serve::<C, O, P, L>(cache, key, tags, options, function, load, policy, &answer)
            .await;
    }
    // Boxed: a traced call's span and answer would otherwise make every
    // untraced hit's future larger.
    Box::pin(traced::<C, O, P, L>(
        cache, key, tags, options, function, load, policy,
    ))
    .await
}

/// [`run`] in its span, the outcome recorded at the end.
async fn traced<C, O, P, L>(
    cache: &Cache,
    key: &str,
    tags: &[String],
    options: &EntryOptions,
    function: &'static str,
    load: L,
    policy: P,
) -> O
where
    C: Codec,
    P: Policy<O> + Clone,
    L: Loader<O, Background<C, P>>,
{
    let span = trace::span(options.family_name());
    let answer = Answer::new(&span);
    let out = serve::<C, O, P, L>(cache, key, tags, options, function, load, policy, &answer)
        .instrument(span.clone())
        .await;
    answer.finish(&span);
    out
}

/// [`run`]'s call, its answer noted in `answer`.
#[allow(clippy::too_many_arguments)]
async fn serve<C, O, P, L>(
    cache: &Cache,
    key: &str,
    tags: &[String],
    options: &EntryOptions,
    function: &'static str,
    load: L,
    policy: P,
    answer: &Answer,
) -> O
where
    C: Codec,
    P: Policy<O> + Clone,
    L: Loader<O, Background<C, P>>,
{
    let rec = cache.recorder_for(options);
    let full = cache.full_key_cow(key);
    let tags: Vec<String> = tags.iter().map(|t| cache.tag_key(t)).collect();
    let call = Call {
        cache,
        rec: &rec,
        options,
        key: &full,
        tags: &tags,
        function,
        again: false,
        answer,
    };
    if crate::invalidation::pending::in_scope() {
        // Inside a transaction's scope the body may read uncommitted rows:
        // nothing is read, stored or shared with other callers (`Pending`).
        rec.add(|c| &c.bypassed, 1);
        answer.note(Answered::Bypass);
        return uncached(&call, load, &policy).await;
    }
    if !cache.ready() {
        rec.add(|c| &c.bypassed, 1);
        answer.note(Answered::Bypass);
        let arrived = Arrival::before_read();
        return Box::pin(miss::<C, O, P, L>(
            &call,
            Read::Failed,
            None,
            load,
            policy,
            arrived,
        ))
        .await;
    }
    let beta = options.beta.unwrap_or(cache.settings().beta);
    let mut before = None;
    let first = read::<C, P::Stored>(&call, beta, policy.typed(), &mut before).await;
    // When this caller arrived, for single-flight: taken only on a miss.
    let arrived = move || match before {
        Some(at) => Arrival {
            at,
            before_read: true,
        },
        // A read that answered at once (memory) came first.
        None => Arrival {
            at: std::time::Instant::now(),
            before_read: false,
        },
    };
    match first {
        Read::Fresh { value, stored, due } => {
            rec.add(|c| &c.hits, 1);
            answer.note(Answered::Hit);
            if !due {
                return policy.unstore(value);
            }
            let fill = refresh_fill(&call, &stored).await;
            if !fill.refreshing {
                return policy.unstore(value);
            }
            rec.add(|c| &c.early_refreshes, 1);
            Box::pin(refresh_early::<C, O, P, L>(
                &call, load, policy, fill, value,
            ))
            .await
        }
        Read::Kept {
            value,
            stored,
            since,
        } if L::SPAWNS && (options.stale.is_some() || options.timeout.is_some()) => {
            rec.add(|c| &c.misses, 1);
            answer.note(Answered::Miss);
            let fill = refresh_fill(&call, &stored).await;
            let old = Old::new(&stored, since);
            if serves_kept_now(options, since, fill.refreshing) {
                return serve_kept::<C, O, P, L>(&call, load, policy, fill, value, old);
            }
            let read = Read::Kept {
                value,
                stored,
                since,
            };
            Box::pin(miss::<C, O, P, L>(
                &call,
                read,
                Some(fill),
                load,
                policy,
                arrived(),
            ))
            .await
        }
        first => {
            if !matches!(first, Read::Failed) {
                rec.add(|c| &c.misses, 1);
                answer.note(Answered::Miss);
            }
            // Boxed: the miss path's states would otherwise make every
            // hit's future large.
            Box::pin(miss::<C, O, P, L>(
                &call,
                first,
                None,
                load,
                policy,
                arrived(),
            ))
            .await
        }
    }
}

/// A miss (or a kept entry to refresh, or a failed read): one load per key
/// in the process. A follower takes the leader's value only from a flight
/// that began after it arrived; otherwise it reads again (see `flight.rs`).
async fn miss<C, O, P, L>(
    call: &Call<'_>,
    mut first: Read<P::Stored>,
    mut fill: Option<Fill>,
    load: L,
    policy: P,
    arrived: Arrival,
) -> O
where
    C: Codec,
    P: Policy<O> + Clone,
    L: Loader<O, Background<C, P>>,
{
    let cache = call.cache;
    let recursive = flight::leading(call.key);
    if !cache.settings().single_flight || recursive {
        // Off, or a recursive call with the same key (waiting would wait for itself).
        return lead::<C, O, P, L>(call, first, fill, load, policy, Publish(None), recursive).await;
    }
    for round in 0..ROUNDS {
        // A read that answered at once (memory) came before `arrived`: the
        // leader reads again after joining instead, so its stamp holds.
        let read_at = if arrived.before_read || round > 0 {
            arrived.at
        } else {
            std::time::Instant::now()
        };
        let slot = match cache.flights().join(call.key, arrived.at, read_at) {
            Join::Leader(leader) => {
                if round == 0 && !arrived.before_read {
                    let again = Call {
                        again: true,
                        ..*call
                    };
                    first = read_again::<C, P::Stored>(&again, policy.typed()).await;
                }
                let run = lead::<C, O, P, L>(
                    call,
                    first,
                    fill,
                    load,
                    policy,
                    Publish(Some(leader)),
                    false,
                );
                return flight::as_leader(call.key, run).await;
            }
            Join::Follower {
                slot,
                began_after,
                read_after,
            } => (slot, began_after, read_after),
        };
        // A claim this caller took is the leader's business now.
        fill = None;
        if round == 0 {
            call.rec.add(|c| &c.coalesced, 1);
            call.answer.note(Answered::Coalesced);
        }
        let (slot, began_after, read_after) = slot;
        // Bounded: a leader that awaits a task making the same call (where
        // its task-local is not seen) would otherwise never finish.
        let Ok(outcome) =
            tokio::time::timeout(cache.settings().lease_ttl, flight::wait(slot)).await
        else {
            return uncached(call, load, &policy).await;
        };
        let shared = match outcome {
            Outcome::Entry(bytes) | Outcome::Unstored(bytes) if began_after => Some((bytes, false)),
            Outcome::Stale(bytes) if read_after => Some((bytes, true)),
            // The leader had nothing to share: run this caller's own body.
            Outcome::Nothing if began_after => return uncached(call, load, &policy).await,
            _ => None,
        };
        if let Some((bytes, stale)) = shared {
            if let crate::codec::Decoded::Value(value) =
                crate::store::protocol::decode::<C, P::Stored>(&bytes)
            {
                if stale {
                    call.rec.add(|c| &c.stale_served, 1);
                    call.answer.note(Answered::Stale);
                }
                return policy.unstore(value);
            }
            return uncached(call, load, &policy).await;
        }
        // The flight began before this caller: its value may predate a
        // write that finished before this call began. Read again.
        let beta = call.options.beta.unwrap_or(cache.settings().beta);
        first = read::<C, P::Stored>(call, beta, policy.typed(), &mut None).await;
        if let Read::Fresh { value, .. } = first {
            return policy.unstore(value);
        }
    }
    uncached(call, load, &policy).await
}

/// The leader's path: claim the key, load, store, share. Reads again while
/// another caller's claim changes what the key holds, and, with `lock`,
/// while another process loads it (polling, 5 ms doubling to 100 ms, up to
/// the cache's lock wait, then loading itself rather than hang).
async fn lead<C, O, P, L>(
    call: &Call<'_>,
    mut read_now: Read<P::Stored>,
    mut fill: Option<Fill>,
    load: L,
    policy: P,
    mut publish: Publish<'_>,
    recursive: bool,
) -> O
where
    C: Codec,
    P: Policy<O> + Clone,
    L: Loader<O, Background<C, P>>,
{
    let cache = call.cache;
    let options = call.options;
    // A recursive call would wait on its own outer lease.
    let lock = options.lock.unwrap_or(cache.settings().lock) && !recursive;
    let mut waiting: Option<Wait> = None;
    let mut changes = 0;
    loop {
        match read_now {
            Read::Fresh { value, stored, .. } => {
                publish.send(Outcome::Entry(stored.bytes.clone()));
                return policy.unstore(value);
            }
            Read::Kept {
                value,
                stored,
                since,
            } => {
                let fill = match fill.take() {
                    Some(fill) => fill,
                    None => refresh_fill(call, &stored).await,
                };
                let old = Old::new(&stored, since);
                if L::SPAWNS && serves_kept_now(options, since, fill.refreshing) {
                    publish.send(Outcome::Stale(old.bytes.clone()));
                    return serve_kept::<C, O, P, L>(call, load, policy, fill, value, old);
                }
                let someone_else = !fill.refreshing;
                if lock
                    && someone_else
                    && !serves_kept_now(options, since, false)
                    && let Some(next) =
                        wait_for_other::<C, P::Stored>(call, &mut waiting, policy.typed()).await
                {
                    drop(fill);
                    read_now = next;
                    continue;
                }
                let fallback = fail_safe_allows(options, since).then_some((value, old));
                return load_and_store::<C, O, P, L>(
                    call,
                    load,
                    policy,
                    fill,
                    fallback,
                    &mut publish,
                )
                .await;
            }
            Read::Miss { expect, busy } => {
                drop(fill.take());
                if busy
                    && lock
                    && let Some(next) =
                        wait_for_other::<C, P::Stored>(call, &mut waiting, policy.typed()).await
                {
                    read_now = next;
                    continue;
                }
                match lease(call, expect).await {
                    Ok((Acquire::Changed, _)) if changes < ROUNDS => {
                        changes += 1;
                        read_now = read_again::<C, P::Stored>(call, policy.typed()).await;
                    }
                    Ok((Acquire::Busy, fill)) if lock => {
                        match wait_for_other::<C, P::Stored>(call, &mut waiting, policy.typed())
                            .await
                        {
                            Some(next) => read_now = next,
                            None => {
                                return load_and_store::<C, O, P, L>(
                                    call,
                                    load,
                                    policy,
                                    fill,
                                    None,
                                    &mut publish,
                                )
                                .await;
                            }
                        }
                    }
                    Ok((_, fill)) => {
                        return load_and_store::<C, O, P, L>(
                            call,
                            load,
                            policy,
                            fill,
                            None,
                            &mut publish,
                        )
                        .await;
                    }
                    Err(e) => {
                        call.rec.add(|c| &c.errors, 1);
                        call.answer.note(Answered::Error);
                        cache.log_failure("lease", options.family_name(), call.key, &e);
                        return bypass::<C, O, P, L>(call, load, policy, publish).await;
                    }
                }
            }
            Read::Failed => return bypass::<C, O, P, L>(call, load, policy, publish).await,
        }
    }
}

/// Reads again after the key changed under this caller's claim.
async fn read_again<C: Codec, T: Cacheable>(call: &Call<'_>, typed: Option<Typed<T>>) -> Read<T> {
    let beta = call.options.beta.unwrap_or(call.cache.settings().beta);
    read::<C, T>(call, beta, typed, &mut None).await
}

/// A `lock = true` wait for another process's load.
struct Wait {
    deadline: Instant,
    delay: Duration,
    over: bool,
}

/// With `lock`: waits a step for another process's load, then reads again;
/// `None` once the lock wait is spent (then this caller loads itself).
async fn wait_for_other<C: Codec, T: Cacheable>(
    call: &Call<'_>,
    waiting: &mut Option<Wait>,
    typed: Option<Typed<T>>,
) -> Option<Read<T>> {
    let now = Instant::now();
    let wait = waiting.get_or_insert_with(|| {
        call.rec.add(|c| &c.lock_waits, 1);
        let lock_wait = call.cache.settings().lock_wait;
        Wait {
            deadline: now.checked_add(lock_wait).unwrap_or(now + YEAR),
            delay: Duration::from_millis(5),
            over: false,
        }
    });
    if wait.over {
        return None;
    }
    if now + wait.delay > wait.deadline {
        wait.over = true;
        call.rec.add(|c| &c.lock_timeouts, 1);
        tracing::debug!(
            key = call.key,
            "waited the whole lock wait for another process's load; loading here"
        );
        return None;
    }
    tokio::time::sleep(wait.delay).await;
    wait.delay = (wait.delay * 2).min(Duration::from_millis(100));
    Some(read_again::<C, T>(call, typed).await)
}

/// Runs the body without the cache (the backend failed, or invalidations
/// wait to be replayed) and shares its value with the waiters.
async fn bypass<C, O, P, L>(call: &Call<'_>, load: L, policy: P, mut publish: Publish<'_>) -> O
where
    C: Codec,
    P: Policy<O> + Clone,
    L: Loader<O, Background<C, P>>,
{
    let out = uncached(call, load, &policy).await;
    let outcome = policy
        .store_as(call.options, &out)
        .map_or(Outcome::Nothing, |(value, _)| unstored::<C, _>(value));
    publish.send(outcome);
    out
}

/// Runs the loader without the cache (its key could not be built).
pub(crate) async fn without_cache<C, O, P, L>(
    cache: &Cache,
    options: &EntryOptions,
    function: &'static str,
    load: L,
    policy: P,
) -> O
where
    C: Codec,
    P: Policy<O> + Clone,
    L: Loader<O, Background<C, P>>,
{
    let span = trace::span(options.family_name());
    let answer = Answer::new(&span);
    answer.note(Answered::Error);
    let rec = cache.recorder(options.family_name());
    let call = Call {
        cache,
        rec: &rec,
        options,
        key: "",
        tags: &[],
        function,
        again: false,
        answer: &answer,
    };
    let out = uncached(&call, load, &policy)
        .instrument(span.clone())
        .await;
    answer.finish(&span);
    out
}
