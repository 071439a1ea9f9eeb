//! A call's reads and claims: what the key holds, judged by the protocol's
//! rules and decoded; and the right to store a load's value (a fill lease
//! over a miss, the refresh lock of a kept or due entry).

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::options::EntryOptions;
use super::policy::Typed;
use super::trace::{Answer, Answered};
use crate::Cache;
use crate::codec::{Cacheable, Codec, Decoded};
use crate::stats::Recorder;
use crate::store::protocol::State;
use crate::store::{Acquire, Claim, EntryId, Expect, Stored, TagVersion, Token};

/// One call's context.
#[derive(Clone, Copy)]
pub(super) struct Call<'a> {
    pub(super) cache: &'a Cache,
    pub(super) rec: &'a Recorder<'a>,
    pub(super) options: &'a EntryOptions,
    /// The full (namespaced) key.
    pub(super) key: &'a str,
    /// The full keys of the tags the entry must carry.
    pub(super) tags: &'a [String],
    /// Named in a [`LoadTimeout`](crate::LoadTimeout).
    pub(super) function: &'static str,
    /// A second read of the same call: what it finds was counted already.
    pub(super) again: bool,
    /// How the caller is being answered, for its span.
    pub(super) answer: &'a Answer,
}

/// What a read found, decoded.
pub(super) enum Read<T> {
    Fresh {
        value: T,
        stored: Arc<Stored>,
        /// Drawn for an early refresh (XFetch).
        due: bool,
    },
    /// Past freshness, kept for `stale`/`fail_safe`, since this long.
    Kept {
        value: T,
        stored: Arc<Stored>,
        since: Duration,
    },
    /// Nothing usable: `expect` is what a fill lease would replace; `busy`
    /// when another caller's lease holds the key.
    Miss { expect: Expect, busy: bool },
    /// The backend failed or timed out.
    Failed,
}

/// The largest `−ln u` a draw can give: `1 − u` is at least 2⁻⁵³.
const MAX_DRAW: f64 = 37.0;

/// XFetch's `β·(−ln u)` for one read, `u` uniform in (0, 1]; 0 when off.
fn early_factor(beta: f64) -> f64 {
    if beta > 0.0 {
        -beta * (1.0 - rand::random::<f64>()).ln()
    } else {
        0.0
    }
}

/// Reads the key and its tags' versions (one round trip) and judges them,
/// with XFetch's β (drawn only for an entry close enough to its expiry for
/// the draw to matter).
///
/// Also when this caller "arrived" for single-flight: before a read over
/// the network (so callers that time out at slightly different moments in
/// an outage still share one load), after one answered at once (no clock
/// read on a memory hit; the order is the same).
pub(super) async fn read<C: Codec, T: Cacheable>(
    call: &Call<'_>,
    beta: f64,
    typed: Option<Typed<T>>,
    arrived: &mut Option<std::time::Instant>,
) -> Read<T> {
    let store = call.cache.store();
    let tier = call.cache.tier();
    // The in-process tier, while this instance hears announcements.
    let local = tier
        .filter(|t| t.coherent() && call.options.local_allowed())
        .and_then(|t| Some((t, t.local.as_ref()?)));
    let mut from_local = false;
    let mut seen = None;
    let read = match store.read_now(call.key, call.tags) {
        Some(read) => Ok(read),
        None => match local.and_then(|(tier, local)| {
            let (held, left_ms, versions) = local.get(call.key, call.tags)?;
            let trusted = tier
                .trust
                .trusts(|| held.shard, held.stored.header.filled_at);
            trusted.then(|| {
                let found = crate::store::Seen::Entry {
                    entry: held.stored.clone(),
                    left_ms,
                };
                (found, versions)
            })
        }) {
            Some(read) => {
                from_local = true;
                Ok(read)
            }
            None => {
                seen = local.map(|(_, local)| local.seen(call.key, call.tags));
                arrived.get_or_insert_with(std::time::Instant::now);
                store.read(call.key, call.tags, beta).await
            }
        },
    };
    let (found, versions) = match read {
        Ok(read) => read,
        Err(e) => {
            call.rec.add(|c| &c.errors, 1);
            call.answer.note(Answered::Error);
            call.cache
                .log_failure("read", call.options.family_name(), call.key, &e);
            return Read::Failed;
        }
    };
    let mut state = found.state(call.tags, &versions, beta * MAX_DRAW);
    if state == (State::Fresh { due: true }) {
        state = found.state(call.tags, &versions, early_factor(beta));
    }
    // An entry stored before this instance may have missed an invalidation
    // (its own, or another's) is refilled, not served.
    if let (Some(tier), Some(entry)) = (tier, found.stored())
        && matches!(state, State::Fresh { .. } | State::Kept { .. })
        && !from_local
        && !tier
            .trust
            .trusts(|| store.shard_of(call.key), entry.header.filled_at)
    {
        if !call.again {
            call.rec.add(|c| &c.distrusted, 1);
        }
        state = State::Stale;
    }
    let left_ms = match &found {
        crate::store::Seen::Entry { left_ms, .. } => *left_ms,
        _ => 0,
    };
    let expect = |stored: Option<&Stored>| match stored {
        Some(stored) => Expect::Entry(stored.header.id),
        None => Expect::Anything,
    };
    let stored = match state {
        State::Absent => {
            return Read::Miss {
                expect: Expect::Nothing,
                busy: false,
            };
        }
        State::Leased => {
            return Read::Miss {
                expect: Expect::Nothing,
                busy: true,
            };
        }
        State::Unreadable => {
            if !call.again {
                call.rec.add(|c| &c.decode_errors, 1);
            }
            return Read::Miss {
                expect: Expect::Anything,
                busy: false,
            };
        }
        State::Stale => {
            return Read::Miss {
                expect: expect(found.stored()),
                busy: false,
            };
        }
        State::Fresh { .. } | State::Kept { .. } => match found {
            crate::store::Seen::Entry { entry, .. } => entry,
            _ => {
                return Read::Miss {
                    expect: Expect::Anything,
                    busy: false,
                };
            }
        },
    };
    // A value the memory store or the local tier kept as itself: cloned
    // out, not decoded.
    let kept = match (typed, &stored.value) {
        (Some(typed), Some(shared)) => typed.take(shared),
        (Some(typed), None) => stored.decoded.get().and_then(|shared| typed.take(shared)),
        _ => None,
    };
    let cloned = kept.is_some();
    let decoded = match kept {
        Some(value) => Decoded::Value(value),
        None => stored.decode::<C, T>(),
    };
    let value = match decoded {
        Decoded::Value(value) => value,
        Decoded::Mismatch(why) => {
            if !call.again {
                call.rec.add(|c| &c.decode_errors, 1);
            }
            tracing::debug!(key = call.key, reason = ?why, "cached bytes do not decode as {}; treating as a miss", std::any::type_name::<T>());
            return Read::Miss {
                expect: Expect::Entry(stored.header.id),
                busy: false,
            };
        }
    };
    if let State::Fresh { .. } = state {
        if from_local {
            call.rec.add(|c| &c.local_hits, 1);
            call.answer.note(Answered::LocalHit);
        }
        let kept_locally = from_local
            || match (local, seen) {
                (Some((_, local)), Some(seen)) => local.keep(
                    call.key,
                    &stored,
                    left_ms,
                    call.tags,
                    &versions,
                    call.options.local_ttl_cap().unwrap_or(Duration::MAX),
                    store.shard_of(call.key),
                    seen,
                ),
                _ => false,
            };
        if kept_locally
            && !cloned
            && let Some(typed) = typed
        {
            let _ = stored.decoded.set(typed.share(&value));
        }
    }
    match state {
        State::Kept { since } => Read::Kept {
            value,
            stored,
            since,
        },
        State::Fresh { due } => Read::Fresh { value, stored, due },
        _ => Read::Failed,
    }
}

/// Holds a claim (a fill lease or a refresh lock); if the body panics or
/// the call is cancelled, gives it back in the background instead of
/// leaving the key reserved for the whole lease time.
pub(super) struct Guard {
    cache: Cache,
    key: String,
    token: Token,
    pub(super) armed: bool,
}

impl Guard {
    fn new(call: &Call<'_>, token: Token, armed: bool) -> Guard {
        Guard {
            cache: call.cache.clone(),
            key: call.key.to_owned(),
            token,
            armed,
        }
    }

    /// Gives the claim back now; disarmed once that landed (otherwise the
    /// drop retries).
    async fn release(&mut self) {
        if self.armed
            && self
                .cache
                .store()
                .release(&self.key, self.token)
                .await
                .is_ok()
        {
            self.armed = false;
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let (cache, key, token) = (
                self.cache.clone(),
                std::mem::take(&mut self.key),
                self.token,
            );
            // A claim taken by a request that timed out may still land on a
            // stalled server later: retry the (idempotent) release a while.
            runtime.spawn(async move {
                let mut delay = Duration::from_millis(100);
                for _ in 0..6 {
                    if cache.store().release(&key, token).await.is_ok()
                        && delay > Duration::from_millis(100)
                    {
                        return;
                    }
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
            });
        }
    }
}

/// What a load may store over.
#[derive(Clone, Copy)]
pub(super) enum Holds {
    /// The key holds this caller's fill lease.
    Lease,
    /// The key held this entry when read (fresh or kept); a store lands only
    /// while it still does.
    Entry(EntryId),
    /// Another caller is filling the key: nothing may be stored.
    Nothing,
}

/// The right to store a loaded value, and what it records.
pub(super) struct Fill {
    pub(super) guard: Guard,
    pub(super) holds: Holds,
    pub(super) tags: Vec<(String, TagVersion)>,
    /// This caller holds the entry's refresh lock: it refreshes, and only
    /// it may re-store an old value for the fail-safe throttle.
    pub(super) refreshing: bool,
    /// The tier's trust epoch when the claim was taken (see `write.rs`).
    pub(super) epoch: Option<u64>,
}

impl Fill {
    pub(super) fn key(&self) -> &str {
        &self.guard.key
    }

    pub(super) fn claim(&self) -> Option<Claim> {
        match self.holds {
            Holds::Lease => Some(Claim::Lease(self.guard.token)),
            Holds::Entry(id) => Some(Claim::Entry(id)),
            Holds::Nothing => None,
        }
    }

    /// Gives the key back when nothing will be stored (an `Err`, an
    /// uncached `None`), so the next caller can fill it at once.
    pub(super) async fn give_back(mut self) {
        self.guard.release().await;
    }
}

/// Takes the refresh lock of a fresh-but-due or kept entry; the fill stores
/// over that entry (by id) whether or not this caller got the lock, which
/// only keeps refreshers from duplicating work.
pub(super) async fn refresh_fill(call: &Call<'_>, stored: &Stored) -> Fill {
    let token = Token::new();
    let id = stored.header.id;
    let lease_ttl = call.cache.settings().lease_ttl;
    let epoch = call.cache.tier().map(|t| t.trust.epoch());
    // Armed before the request: if it is cancelled, or times out here but
    // lands on the server, the guard frees the lock (a compare, harmless
    // if it was never taken).
    let mut guard = Guard::new(call, token, true);
    let refreshing = match call
        .cache
        .store()
        .lock(call.key, id, token, lease_ttl)
        .await
    {
        Ok(taken) => {
            guard.armed = taken;
            taken
        }
        // Not ours to count on: serve what was read rather than refresh.
        Err(e) => {
            call.rec.add(|c| &c.errors, 1);
            call.cache
                .log_failure("refresh lock", call.options.family_name(), call.key, &e);
            false
        }
    };
    Fill {
        guard,
        holds: Holds::Entry(id),
        tags: stored.header.tags.clone(),
        refreshing,
        epoch,
    }
}

/// Takes a fill lease over what a read saw, with the tag versions the fill
/// records.
pub(super) async fn lease(
    call: &Call<'_>,
    expect: Expect,
) -> Result<(Acquire, Fill), crate::Error> {
    let token = Token::new();
    let guard = Guard::new(call, token, true);
    let options = call.options;
    let epoch = call.cache.tier().map(|t| t.trust.epoch());
    let tag_ttl = options
        .ttl
        .max(options.none_ttl.unwrap_or_default())
        .saturating_add(options.grace());
    let lease_ttl = call.cache.settings().lease_ttl;
    let (outcome, versions) = call
        .cache
        .store()
        .acquire(call.key, expect, token, lease_ttl, call.tags, tag_ttl)
        .await?;
    let mut guard = guard;
    guard.armed = outcome == Acquire::Leased;
    let holds = if guard.armed {
        Holds::Lease
    } else {
        Holds::Nothing
    };
    let tags = call.tags.iter().cloned().zip(versions).collect();
    let fill = Fill {
        guard,
        holds,
        tags,
        refreshing: false,
        epoch,
    };
    Ok((outcome, fill))
}

/// An entry kept past its freshness: what fail-safe and `stale` serve.
#[derive(Clone)]
pub(super) struct Old {
    pub(super) bytes: Arc<Vec<u8>>,
    /// When it leaves the backend (the end of its grace).
    pub(super) gone_at: Instant,
}

impl Old {
    pub(super) fn new(stored: &Stored, since: Duration) -> Old {
        Old {
            bytes: stored.bytes.clone(),
            gone_at: {
                let now = Instant::now();
                let left = stored.header.meta.grace.saturating_sub(since);
                now.checked_add(left).unwrap_or(now)
            },
        }
    }
}

/// Whether `stale` lets a value `since` past its freshness be served.
fn stale_allows(options: &EntryOptions, since: Duration) -> bool {
    options.stale.is_some_and(|window| since <= window)
}

/// Whether `fail_safe` (or `stale`, which keeps it too) lets a value
/// `since` past its freshness stand in for a failed load.
pub(super) fn fail_safe_allows(options: &EntryOptions, since: Duration) -> bool {
    options.fail_safe.is_some_and(|window| since <= window) || stale_allows(options, since)
}

/// Whether a caller gets a kept value at once instead of loading or
/// waiting: under `stale`; or under `timeout` while another caller's load
/// runs (it holds the refresh lock), as an old value beats waiting on a
/// slow source.
pub(super) fn serves_kept_now(options: &EntryOptions, since: Duration, refreshing: bool) -> bool {
    stale_allows(options, since)
        || (options.timeout.is_some() && !refreshing && fail_safe_allows(options, since))
}
