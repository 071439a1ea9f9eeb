//! The read of a generated call: one round trip that finds a fresh entry,
//! an entry kept past its freshness, or a miss, and reserves the right to
//! store (a fill lease, or the refresh lock) in the same script.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::{Request, Site};
use crate::Cache;
use crate::backend::{Claim, Lease, MissKind, Read, ReadRequest, Refresh, new_lease};
use crate::codec::{Cacheable, Codec, Decoded, EntryId, TagVersion, decode_entry, parse_entry};
use crate::stats::Recorder;

/// Holds a fill lease or a refresh lock; if the body panics or the call is
/// cancelled, gives it back in the background instead of leaving the key
/// reserved for the whole lease time.
///
/// Borrows the cache and key while reading, so a hit costs no allocation
/// here; a miss or refresh owns them ([`LeaseGuard::into_owned`]).
pub(super) struct LeaseGuard<'a> {
    cache: Cow<'a, Cache>,
    pub(super) key: Cow<'a, str>,
    pub(super) lease: Lease,
    pub(super) armed: bool,
}

impl LeaseGuard<'_> {
    fn into_owned(mut self) -> LeaseGuard<'static> {
        let armed = std::mem::replace(&mut self.armed, false);
        LeaseGuard {
            cache: Cow::Owned(self.cache.as_ref().clone()),
            key: Cow::Owned(self.key.as_ref().to_owned()),
            lease: self.lease,
            armed,
        }
    }

    /// Gives the lease and lock back now; disarmed once that landed
    /// (otherwise the drop retries).
    async fn release(&mut self) {
        if self.armed
            && self
                .cache
                .0
                .backend
                .release(&self.key, &self.lease)
                .await
                .is_ok()
        {
            self.armed = false;
        }
    }
}

impl Drop for LeaseGuard<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let (cache, key, lease) = (
                self.cache.as_ref().clone(),
                self.key.as_ref().to_owned(),
                self.lease,
            );
            // A read that timed out may still run on a stalled server and
            // take its lease later: retry the (idempotent) release a while.
            runtime.spawn(async move {
                let mut delay = Duration::from_millis(100);
                for _ in 0..6 {
                    if cache.0.backend.release(&key, &lease).await.is_ok()
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
    pub(super) guard: LeaseGuard<'static>,
    pub(super) holds: Holds,
    pub(super) tags: Vec<(String, TagVersion)>,
}

impl Fill {
    pub(super) fn key(&self) -> &str {
        &self.guard.key
    }

    pub(super) fn claim(&self) -> Option<Claim<'_>> {
        match &self.holds {
            Holds::Lease => Some(Claim::Lease(&self.guard.lease)),
            Holds::Entry(id) => Some(Claim::Entry {
                id,
                lock: &self.guard.lease,
            }),
            Holds::Nothing => None,
        }
    }

    /// Gives the key back when nothing will be stored (an `Err`, an
    /// uncached `None`), so the next caller can fill it at once.
    pub(super) async fn give_back(mut self) {
        self.guard.release().await;
    }
}

/// An entry kept past its freshness: what fail-safe and `stale` serve.
#[derive(Clone)]
pub(super) struct Old {
    pub(super) bytes: Arc<Vec<u8>>,
    /// When it leaves the backend (the end of its grace).
    pub(super) gone_at: Instant,
}

pub(super) enum Lookup<T> {
    /// A fresh entry; with a fill when this caller drew its early refresh.
    Fresh {
        value: T,
        bytes: Vec<u8>,
        refresh: Option<Fill>,
    },
    /// An entry past its freshness, kept for `stale`/`fail_safe`, expired
    /// `since` ago. The fill may store over it; its guard is armed when this
    /// caller holds the refresh lock.
    Kept {
        value: T,
        old: Old,
        since: Duration,
        fill: Fill,
    },
    /// Absent, unreadable or invalidated: load, then store if the fill may.
    Miss(Fill),
    /// The backend failed or invalidations are pending: load, don't store.
    Bypass,
}

/// XFetch's `β·(−ln u)` for one read, `u` uniform in (0, 1]; 0 when off.
fn early_factor(beta: f64) -> f64 {
    if beta > 0.0 {
        -beta * (1.0 - rand::random::<f64>()).ln()
    } else {
        0.0
    }
}

/// Whether `stale` lets a value `since` past its freshness be served.
fn stale_allows(site: &Site, since: Duration) -> bool {
    site.stale.is_some_and(|window| since <= window)
}

/// Whether `fail_safe` (or `stale`, which keeps it too) lets a value
/// `since` past its freshness stand in for a failed load.
pub(super) fn fail_safe_allows(site: &Site, since: Duration) -> bool {
    site.fail_safe.is_some_and(|window| since <= window) || stale_allows(site, since)
}

/// Whether a caller gets a kept value at once instead of loading or
/// waiting: under `stale`; or under `timeout` while another caller's load
/// runs (it holds the refresh lock), as an old value beats waiting on a
/// slow source.
pub(super) fn serves_kept_now(site: &Site, since: Duration, refreshing: bool) -> bool {
    stale_allows(site, since)
        || (site.timeout.is_some() && !refreshing && fail_safe_allows(site, since))
}

/// Past freshness, as a duration, from a hit's freshness left.
fn since_expiry(left_ms: i64) -> Duration {
    Duration::from_millis(left_ms.saturating_neg().max(0).unsigned_abs())
}

/// With `lock`, whether this read should wait for another process's load:
/// the key holds its fill lease, or its refresh lock over an entry that
/// would not be served at once ([`serves_kept_now`]).
fn waits(site: &Site, outcome: &Result<Read, crate::Error>) -> bool {
    match outcome {
        Ok(Read::Miss {
            kind: MissKind::Leased,
            leased: false,
            ..
        }) => true,
        Ok(Read::Hit {
            left_ms,
            refresh: Refresh::Theirs,
            ..
        }) if *left_ms <= 0 => !serves_kept_now(site, since_expiry(*left_ms), false),
        _ => false,
    }
}

/// The tags an entry recorded, to record again on a refresh of it.
fn recorded_tags(bytes: &[u8]) -> Option<(EntryId, Vec<(String, TagVersion)>)> {
    let entry = parse_entry(bytes)?;
    let tags = entry
        .tags
        .iter()
        .map(|(name, version)| {
            Some((
                String::from_utf8_lossy(name).into_owned(),
                TagVersion::try_from(*version).ok()?,
            ))
        })
        .collect::<Option<_>>()?;
    Some((entry.id, tags))
}

/// Reads `key` for a generated call; with `lock`, waits while another
/// process holds the key's fill lease or refresh lock (polling, 5 ms
/// doubling to 100 ms, up to the cache's lock wait), then loads itself
/// rather than hang.
pub(super) async fn lookup<'a, C: Codec, T: Cacheable>(
    cache: &'a Cache,
    rec: &Recorder<'_>,
    site: &'static Site,
    key: &'a str,
    request: &Request,
    recursive: bool,
) -> Lookup<T> {
    if !cache.ready() {
        rec.add(|c| &c.bypassed, 1);
        return Lookup::Bypass;
    }
    let tags: Vec<String> = request.tags.iter().map(|t| cache.tag_key(t)).collect();
    let lease = new_lease();
    // Armed before the read: if the read errors, times out or is cancelled,
    // the script may still have taken the lease on the server; the guard
    // gives it back (a compare-and-delete, harmless if it was never taken).
    let mut guard = LeaseGuard {
        cache: Cow::Borrowed(cache),
        key: Cow::Borrowed(key),
        lease,
        armed: true,
    };
    let grace = site.grace();
    let mut read = ReadRequest {
        tags: &tags,
        lease: &lease,
        lease_ttl: cache.0.lease_ttl,
        tag_ttl: site.ttl.max(site.none_ttl.unwrap_or_default()) + grace,
        force_miss: false,
        early: early_factor(site.beta.unwrap_or(cache.0.defaults.beta)),
    };
    let mut outcome = cache.0.backend.read(key, &read).await;
    // A recursive call would wait on its own outer lease.
    let lock = site.lock.unwrap_or(cache.0.defaults.lock);
    if lock && !recursive && waits(site, &outcome) {
        rec.add(|c| &c.lock_waits, 1);
        let now = Instant::now();
        let deadline = now
            .checked_add(cache.0.lock_wait)
            .unwrap_or(now + Duration::from_secs(86_400 * 365));
        let mut delay = Duration::from_millis(5);
        while waits(site, &outcome) {
            if Instant::now() + delay > deadline {
                rec.add(|c| &c.lock_timeouts, 1);
                tracing::debug!(
                    key,
                    "waited the whole lock wait for another process's load; loading here"
                );
                break;
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_millis(100));
            outcome = cache.0.backend.read(key, &read).await;
        }
    }
    // Whether a hit that did not decode had taken the refresh lock.
    let mut locked = false;
    if let Ok(Read::Hit { bytes, refresh, .. }) = &outcome {
        locked = *refresh == Refresh::Mine;
        match decode_entry::<C, T>(bytes) {
            Decoded::Value(value) => {
                let Ok(Read::Hit {
                    bytes,
                    left_ms,
                    refresh,
                }) = outcome
                else {
                    unreachable!("matched above")
                };
                guard.armed = refresh == Refresh::Mine;
                let recorded = if left_ms > 0 && refresh != Refresh::Mine {
                    None
                } else {
                    recorded_tags(&bytes)
                };
                let Some((id, tags)) = recorded else {
                    rec.add(|c| &c.hits, 1);
                    return Lookup::Fresh {
                        value,
                        bytes,
                        refresh: None,
                    };
                };
                let fill = Fill {
                    guard: guard.into_owned(),
                    holds: Holds::Entry(id),
                    tags,
                };
                if left_ms > 0 {
                    rec.add(|c| &c.hits, 1);
                    return Lookup::Fresh {
                        value,
                        bytes,
                        refresh: Some(fill),
                    };
                }
                rec.add(|c| &c.misses, 1);
                let since = since_expiry(left_ms);
                let gone_at = Instant::now() + grace.saturating_sub(since);
                return Lookup::Kept {
                    value,
                    old: Old {
                        bytes: Arc::new(bytes),
                        gone_at,
                    },
                    since,
                    fill,
                };
            }
            Decoded::Mismatch(why) => {
                rec.add(|c| &c.decode_errors, 1);
                tracing::debug!(key, reason = ?why, "cached bytes do not decode as {}; treating as a miss", std::any::type_name::<T>());
                // Rare: a second round trip to reserve the key over the bad bytes.
                read.force_miss = true;
                outcome = cache.0.backend.read(key, &read).await;
            }
        }
    }
    match outcome {
        Ok(Read::Miss {
            kind,
            leased,
            versions,
        }) => {
            rec.add(|c| &c.misses, 1);
            if kind == MissKind::Unreadable && !read.force_miss {
                rec.add(|c| &c.decode_errors, 1);
            }
            // Also armed if this caller took the refresh lock before a
            // forced miss: the store or release frees both.
            guard.armed = leased || locked;
            Lookup::Miss(Fill {
                guard: guard.into_owned(),
                holds: if leased { Holds::Lease } else { Holds::Nothing },
                tags: tags.into_iter().zip(versions).collect(),
            })
        }
        Ok(Read::Hit { .. }) => {
            rec.add(|c| &c.misses, 1);
            Lookup::Bypass // the guard releases any lock the reads took
        }
        Err(e) => {
            rec.add(|c| &c.errors, 1);
            cache.log_failure("read", site.template, key, &e);
            Lookup::Bypass // the guard releases any lease the read took
        }
    }
}
