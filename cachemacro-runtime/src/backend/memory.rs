//! The in-process backend: moka, bounded by bytes.
//!
//! ## Behavior
//!
//! Entries honour their TTL (checked against tokio's clock on every read, so
//! tests may use paused time; moka also drops them in the background). The
//! total size of keys and values is bounded (64 MiB by default); past it moka
//! evicts the least useful entries (TinyLFU). Prefix deletes walk the
//! entries, which is fine at in-process sizes. `incr` and `set_if_absent`
//! are atomic per key.

use std::sync::Arc;
use std::time::Duration;

use moka::future::Cache as Moka;
use moka::ops::compute::{CompResult, Op};
use tokio::time::Instant;

use super::{Claim, LEASE_MAGIC, Lease, MissKind, Read, ReadRequest, Refresh, refresh_lock};
use crate::Error;
use crate::codec::{TagVersion, parse_entry};

#[derive(Clone)]
pub(crate) struct Entry {
    bytes: Arc<[u8]>,
    ttl: Option<Duration>,
    expires_at: Option<Instant>,
}

impl Entry {
    fn new(bytes: Vec<u8>, ttl: Option<Duration>) -> Self {
        Entry {
            bytes: bytes.into(),
            ttl,
            expires_at: ttl.map(|t| Instant::now() + t),
        }
    }

    fn live(&self) -> bool {
        self.expires_at.is_none_or(|at| Instant::now() < at)
    }

    /// Time to live in ms, `None` without expiry (Redis `PTTL` -1).
    fn pttl(&self) -> Option<i64> {
        let at = self.expires_at?;
        Some(
            i64::try_from(at.saturating_duration_since(Instant::now()).as_millis())
                .unwrap_or(i64::MAX),
        )
    }
}

struct TtlExpiry;

impl moka::Expiry<String, Entry> for TtlExpiry {
    fn expire_after_create(
        &self,
        _: &String,
        v: &Entry,
        _: std::time::Instant,
    ) -> Option<Duration> {
        v.ttl
    }

    fn expire_after_update(
        &self,
        _: &String,
        v: &Entry,
        _: std::time::Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        v.ttl
    }
}

pub(crate) struct MemoryBackend {
    entries: Moka<String, Entry>,
}

impl MemoryBackend {
    pub(crate) fn new(max_bytes: u64) -> Self {
        let entries = Moka::builder()
            .max_capacity(max_bytes)
            .weigher(|k: &String, v: &Entry| {
                u32::try_from(k.len() + v.bytes.len() + 64).unwrap_or(u32::MAX)
            })
            .expire_after(TtlExpiry)
            .build();
        MemoryBackend { entries }
    }

    pub(crate) async fn get(&self, key: &str) -> Option<Vec<u8>> {
        let entry = self.entries.get(key).await?;
        entry.live().then(|| entry.bytes.to_vec())
    }

    pub(crate) async fn get_many(&self, keys: &[String]) -> Vec<Option<Vec<u8>>> {
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            out.push(self.get(key).await);
        }
        out
    }

    /// Through the key's compute lock, like every write that may race a
    /// fill (see [`MemoryBackend::remove`]).
    pub(crate) async fn set(&self, key: &str, value: Vec<u8>, ttl: Duration) {
        let entry = Entry::new(value, Some(ttl));
        self.entries
            .entry(key.to_owned())
            .and_compute_with(|_| async move { Op::Put(entry) })
            .await;
    }

    pub(crate) async fn set_many(&self, entries: Vec<(String, Vec<u8>)>, ttl: Duration) {
        for (key, value) in entries {
            self.set(&key, value, ttl).await;
        }
    }

    pub(crate) async fn set_if_absent(&self, key: &str, value: Vec<u8>, ttl: Duration) -> bool {
        let result = self
            .entries
            .entry(key.to_owned())
            .and_compute_with(|existing| async move {
                match existing {
                    Some(e) if e.value().live() => Op::Nop,
                    _ => Op::Put(Entry::new(value, Some(ttl))),
                }
            })
            .await;
        matches!(
            result,
            CompResult::Inserted(_) | CompResult::ReplacedWith(_)
        )
    }

    /// Removes one key through the key's compute lock. moka serializes
    /// `and_compute_with` calls per key but not a plain `remove`, so a fill
    /// that had just checked its lease could otherwise put its value back
    /// after the removal: exactly the stale fill this backend must prevent.
    async fn remove(&self, key: &str) -> bool {
        let result = self
            .entries
            .entry(key.to_owned())
            .and_compute_with(|existing| async move {
                match existing {
                    Some(_) => Op::Remove,
                    None => Op::Nop,
                }
            })
            .await;
        matches!(result, CompResult::Removed(e) if e.value().live())
    }

    pub(crate) async fn delete(&self, keys: &[String]) -> u64 {
        let mut deleted = 0;
        for key in keys {
            deleted += u64::from(self.remove(key).await);
        }
        deleted
    }

    pub(crate) async fn delete_prefix(&self, prefix: &str) -> u64 {
        let doomed: Vec<Arc<String>> = self
            .entries
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(k, _)| k)
            .collect();
        let mut deleted = 0;
        for key in doomed {
            deleted += u64::from(self.remove(&key).await);
        }
        deleted
    }

    async fn live(&self, key: &str) -> Option<Arc<[u8]>> {
        self.live_entry(key).await.map(|e| e.bytes)
    }

    async fn live_entry(&self, key: &str) -> Option<Entry> {
        self.entries.get(key).await.filter(Entry::live)
    }

    /// Takes `key` for `lease` unless a live value holds it (`SET NX PX`).
    async fn lock(&self, key: &str, lease: &Lease, ttl: Duration) -> bool {
        self.set_if_absent(key, lease.to_vec(), ttl).await
    }

    /// Deletes `key` if it holds `lease`.
    async fn unlock(&self, key: &str, lease: &Lease) {
        self.entries
            .entry(key.to_owned())
            .and_compute_with(|existing| async move {
                match existing {
                    Some(e) if *e.value().bytes == lease[..] => Op::Remove,
                    _ => Op::Nop,
                }
            })
            .await;
    }

    /// The tag's current version, created (random) when it has none.
    async fn tag_version(&self, tag: &str, ttl: Duration) -> TagVersion {
        let fresh: TagVersion = rand::random();
        let result = self
            .entries
            .entry(tag.to_owned())
            .and_compute_with(|existing| async move {
                match existing {
                    Some(e) if e.value().live() && e.value().bytes.len() == fresh.len() => Op::Nop,
                    _ => Op::Put(Entry::new(fresh.to_vec(), Some(ttl))),
                }
            })
            .await;
        let stored = match result {
            CompResult::Unchanged(e) | CompResult::Inserted(e) | CompResult::ReplacedWith(e) => {
                e.into_value().bytes
            }
            CompResult::StillNone(_) | CompResult::Removed(_) => return fresh,
        };
        stored.as_ref().try_into().unwrap_or(fresh)
    }

    /// Whether the entry carries exactly `tags`, each at its current version.
    async fn tags_current(&self, recorded: &[(&[u8], &[u8])], tags: &[String]) -> bool {
        if recorded.len() != tags.len() {
            return false;
        }
        for ((name, version), tag) in recorded.iter().zip(tags) {
            if *name != tag.as_bytes() || self.live(tag).await.as_deref() != Some(*version) {
                return false;
            }
        }
        true
    }

    /// See [`Backend::read`](super::Backend::read); mirrors the Redis script.
    pub(crate) async fn read(&self, key: &str, req: &ReadRequest<'_>) -> Read {
        let kind = match self.live_entry(key).await {
            None => MissKind::Absent,
            Some(e) if e.bytes.starts_with(&LEASE_MAGIC) => MissKind::Leased,
            Some(_) if req.force_miss => MissKind::Unreadable,
            Some(e) => match parse_entry(&e.bytes) {
                None => MissKind::Unreadable,
                Some(entry) => {
                    if self.tags_current(&entry.tags, req.tags).await {
                        let Some(pttl) = e.pttl() else {
                            return Read::Hit {
                                bytes: e.bytes.to_vec(),
                                left_ms: i64::MAX,
                                refresh: Refresh::No,
                            };
                        };
                        let left_ms =
                            pttl - i64::try_from(entry.meta.grace.as_millis()).unwrap_or(i64::MAX);
                        let window = entry.meta.load.as_secs_f64() * 1000.0 * req.early;
                        let due = left_ms <= 0 || (req.early > 0.0 && left_ms as f64 <= window);
                        let refresh = if !due {
                            Refresh::No
                        } else if self
                            .lock(&refresh_lock(key), req.lease, req.lease_ttl)
                            .await
                        {
                            Refresh::Mine
                        } else {
                            Refresh::Theirs
                        };
                        return Read::Hit {
                            bytes: e.bytes.to_vec(),
                            left_ms,
                            refresh,
                        };
                    }
                    MissKind::Stale
                }
            },
        };
        let mut versions = Vec::with_capacity(req.tags.len());
        for tag in req.tags {
            versions.push(self.tag_version(tag, req.tag_ttl).await);
        }
        let lease = Entry::new(req.lease.to_vec(), Some(req.lease_ttl));
        let result = self
            .entries
            .entry(key.to_owned())
            .and_compute_with(|existing| async move {
                match existing {
                    Some(e) if e.value().live() && e.value().bytes.starts_with(&LEASE_MAGIC) => {
                        Op::Nop
                    }
                    _ => Op::Put(lease),
                }
            })
            .await;
        let leased = matches!(
            result,
            CompResult::Inserted(_) | CompResult::ReplacedWith(_)
        );
        Read::Miss {
            kind,
            leased,
            versions,
        }
    }

    /// See [`Backend::store`](super::Backend::store).
    pub(crate) async fn store(
        &self,
        key: &str,
        claim: Claim<'_>,
        tags: &[String],
        bytes: &[u8],
        ttl: Duration,
    ) -> bool {
        let bytes = bytes.to_vec();
        let result = self
            .entries
            .entry(key.to_owned())
            .and_compute_with(|existing| async move {
                let mine = existing.is_some_and(|e| {
                    let e = e.value();
                    e.live()
                        && match claim {
                            Claim::Lease(lease) => *e.bytes == lease[..],
                            Claim::Entry { id, .. } => {
                                parse_entry(&e.bytes).is_some_and(|entry| entry.id == *id)
                            }
                        }
                });
                if mine {
                    Op::Put(Entry::new(bytes, Some(ttl)))
                } else {
                    Op::Nop
                }
            })
            .await;
        // As the store script: the refresh lock goes too if this caller
        // holds it (a lease read over undecodable bytes may have taken it).
        let token = match claim {
            Claim::Lease(lease) => lease,
            Claim::Entry { lock, .. } => lock,
        };
        self.unlock(&refresh_lock(key), token).await;
        if !matches!(result, CompResult::ReplacedWith(_)) {
            return false;
        }
        // Tag versions must outlive the entries that recorded them.
        let until = Instant::now() + ttl;
        for tag in tags {
            self.entries
                .entry(tag.clone())
                .and_compute_with(|existing| async move {
                    match existing.map(|e| e.into_value()) {
                        Some(e) if e.live() && e.expires_at.is_some_and(|at| at < until) => {
                            Op::Put(Entry {
                                bytes: e.bytes,
                                ttl: Some(ttl),
                                expires_at: Some(until),
                            })
                        }
                        _ => Op::Nop,
                    }
                })
                .await;
        }
        true
    }

    /// See [`Backend::release`](super::Backend::release).
    pub(crate) async fn release(&self, key: &str, lease: &Lease) {
        self.unlock(key, lease).await;
        self.unlock(&refresh_lock(key), lease).await;
    }

    /// See [`Backend::pttls`](super::Backend::pttls).
    pub(crate) async fn pttls(&self, keys: &[String]) -> Vec<i64> {
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            out.push(match self.live_entry(key).await {
                None => -2,
                Some(e) => e.pttl().unwrap_or(-1),
            });
        }
        out
    }

    /// Like Redis `INCRBY`: the value is stored as decimal text. A TTL, when
    /// given, is set only if the key has none (as `PEXPIRE … NX`).
    pub(crate) async fn incr(
        &self,
        key: &str,
        delta: i64,
        ttl: Option<Duration>,
    ) -> Result<i64, Error> {
        let mut outcome = Ok(0);
        let out = &mut outcome;
        self.entries
            .entry(key.to_owned())
            .and_compute_with(|existing| async move {
                let (current, expires_at) =
                    match existing.map(|e| e.into_value()).filter(Entry::live) {
                        Some(e) => {
                            let parsed = std::str::from_utf8(&e.bytes)
                                .ok()
                                .and_then(|s| s.parse::<i64>().ok());
                            match parsed {
                                Some(n) => (n, e.expires_at),
                                None => {
                                    *out = Err(Error::NotAnInteger(key.to_owned()));
                                    return Op::Nop;
                                }
                            }
                        }
                        None => (0, None),
                    };
                let Some(next) = current.checked_add(delta) else {
                    *out = Err(Error::NotAnInteger(key.to_owned()));
                    return Op::Nop;
                };
                *out = Ok(next);
                let expires_at = expires_at.or_else(|| ttl.map(|t| Instant::now() + t));
                let ttl = expires_at.map(|at| at.saturating_duration_since(Instant::now()));
                Op::Put(Entry {
                    bytes: next.to_string().into_bytes().into(),
                    ttl,
                    expires_at,
                })
            })
            .await;
        outcome
    }
}
