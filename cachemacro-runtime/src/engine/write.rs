//! What a load leaves in the cache: its value under the fill's claim, the
//! old value re-stored for the fail-safe throttle, or nothing.
//!
//! [`plan`] decides from the loaded output without awaiting, so a
//! background load never holds its output across an await (the output then
//! need only be `Send`); [`apply`] does the round trip.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::lookup::{Call, Fill, Old};
use super::options::EntryOptions;
use super::policy::{Policy, Shared};
use crate::Cache;
use crate::codec::{Cacheable, Codec};
use crate::engine::flight::Outcome;
use crate::store::protocol::{self, Meta};

/// What to do with a loaded output.
pub(super) enum Plan {
    /// Store an entry under the fill's claim for `ttl` (its physical TTL).
    Store {
        fill: Fill,
        bytes: Arc<Vec<u8>>,
        /// The value itself, for a store that keeps values (memory).
        value: Option<Shared>,
        ttl: Duration,
    },
    /// The load failed: re-store the old entry, fresh for the throttle.
    Throttle {
        fill: Fill,
        bytes: Vec<u8>,
        ttl: Duration,
    },
    /// Nothing to store: give the claim back; waiters get the outcome.
    GiveBack(Fill, Outcome),
}

/// Decides what `out` leaves in the cache. A failed load with an old value
/// to fall back on re-stores that value for the cache's fail-safe throttle.
pub(super) fn plan<C: Codec, O, P: Policy<O>>(
    call: &Call<'_>,
    fill: Fill,
    policy: &P,
    out: &O,
    took: Duration,
    fallback: Option<&Old>,
) -> Plan {
    if policy.failed(out) {
        return failed(call.cache, fill, fallback);
    }
    let Some((value, ttl)) = policy.store_as(call.options, out) else {
        return Plan::GiveBack(fill, Outcome::Nothing);
    };
    if fill.claim().is_none() {
        // Another caller is filling the key: waiters may still share this value.
        return Plan::GiveBack(fill, unstored::<C, _>(value));
    }
    let grace = call.options.grace();
    match protocol::encode::<C, _>(value, &fill.tags, Meta { load: took, grace }) {
        Ok(bytes) => Plan::Store {
            ttl: jittered(ttl, jitter(call.cache, call.options)).saturating_add(grace),
            fill,
            bytes: Arc::new(bytes),
            value: policy.typed().map(|typed| typed.share(value)),
        },
        Err(e) => {
            call.rec.add(|c| &c.errors, 1);
            call.cache
                .log_failure("write", call.options.family_name(), fill.key(), &e);
            Plan::GiveBack(fill, Outcome::Nothing)
        }
    }
}

fn jitter(cache: &Cache, options: &EntryOptions) -> f64 {
    options.jitter.unwrap_or(cache.settings().jitter)
}

/// For a load that failed or was given up: the old value kept fresh for
/// the throttle if there is one, else the key given back.
pub(super) fn failed(cache: &Cache, fill: Fill, fallback: Option<&Old>) -> Plan {
    match fallback {
        Some(old) => throttle(cache, fill, old),
        None => Plan::GiveBack(fill, Outcome::Nothing),
    }
}

/// Re-stores `old` as fresh for the throttle (never past its own end), so
/// the next calls are hits instead of loads against a failing source. Only
/// the caller holding the refresh lock does: another caller's failure must
/// not put the old value over the refresh the lock holder is storing.
fn throttle(cache: &Cache, fill: Fill, old: &Old) -> Plan {
    let left = old.gone_at.saturating_duration_since(Instant::now());
    if !fill.refreshing || left < Duration::from_millis(1) {
        return Plan::GiveBack(fill, Outcome::Nothing);
    }
    let fresh = cache.settings().fail_safe_throttle.min(left);
    match protocol::restamp(&old.bytes, left - fresh) {
        Some(bytes) => Plan::Throttle {
            fill,
            bytes,
            ttl: left,
        },
        None => Plan::GiveBack(fill, Outcome::Nothing),
    }
}

/// Carries a plan out; what waiting callers get.
pub(super) async fn apply(call: &Call<'_>, plan: Plan) -> Outcome {
    match plan {
        Plan::GiveBack(fill, outcome) => {
            fill.give_back().await;
            outcome
        }
        Plan::Store {
            fill,
            bytes,
            value,
            ttl,
        } => match write(call, fill, &bytes, value, ttl).await {
            Written::Landed => {
                call.rec.add(|c| &c.stores, 1);
                Outcome::Entry(bytes)
            }
            Written::Refused => Outcome::Nothing,
            Written::Failed => Outcome::Unstored(bytes),
        },
        Plan::Throttle { fill, bytes, ttl } => {
            let bytes = Arc::new(bytes);
            write(call, fill, &bytes, None, ttl).await;
            Outcome::Stale(bytes)
        }
    }
}

/// What became of a write.
enum Written {
    Landed,
    /// The key no longer holds what the fill claimed: an invalidation came
    /// while the value loaded (or another refresh stored first).
    Refused,
    /// The backend failed; the value is as good as the caller's own.
    Failed,
}

async fn write(
    call: &Call<'_>,
    mut fill: Fill,
    bytes: &Arc<Vec<u8>>,
    value: Option<Shared>,
    ttl: Duration,
) -> Written {
    let Some(claim) = fill.claim() else {
        return Written::Refused;
    };
    // Since the claim was taken this instance learned it may have missed an
    // invalidation (an outage, a replay elsewhere): the value may predate a
    // write whose invalidation never reached this key. Not stored; the
    // guard gives the claim back.
    if call.cache.tier().map(|t| t.trust.epoch()) != fill.epoch {
        call.rec.add(|c| &c.fills_dropped, 1);
        tracing::debug!(
            key = fill.key(),
            "invalidations may have been missed while this value loaded; not storing it"
        );
        return Written::Refused;
    }
    let tags: Vec<String> = std::mem::take(&mut fill.tags)
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    let stored = call
        .cache
        .store()
        .store(fill.key(), claim, bytes.clone(), value, &tags, ttl)
        .await;
    match stored {
        Ok(true) => {
            // The new entry replaced the lease and any lock.
            fill.guard.armed = false;
            Written::Landed
        }
        Ok(false) => {
            fill.guard.armed = false;
            call.rec.add(|c| &c.fills_dropped, 1);
            tracing::debug!(
                key = fill.key(),
                "an invalidation came while this value loaded; not storing it"
            );
            Written::Refused
        }
        Err(e) => {
            call.rec.add(|c| &c.errors, 1);
            call.cache
                .log_failure("write", call.options.family_name(), fill.key(), &e);
            // The store may not have run: the guard gives the claim back.
            Written::Failed
        }
    }
}

/// Shortens a TTL by a random part of `jitter` (0 to < 1), so entries
/// written together do not all expire together; never longer than `ttl`.
fn jittered(ttl: Duration, jitter: f64) -> Duration {
    if jitter <= 0.0 {
        return ttl;
    }
    ttl.mul_f64(1.0 - jitter * rand::random::<f64>())
        .max(Duration::from_millis(1))
}

/// The leader's value for its waiters when it could not be stored.
pub(super) fn unstored<C: Codec, S: Cacheable>(value: &S) -> Outcome {
    protocol::encode::<C, S>(value, &[], Meta::default())
        .map_or(Outcome::Nothing, |bytes| Outcome::Unstored(Arc::new(bytes)))
}
