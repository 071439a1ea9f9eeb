//! Storage backends. A closed set, so dispatch is a `match`, not a vtable.
//! Every key reaching a backend already carries the namespace.

pub(crate) mod memory;
pub(crate) mod redis;

use std::time::Duration;

use crate::Error;
use crate::codec::{EntryId, TagVersion};

/// Marks a fill lease stored in an entry's key; entries start `CA CE`.
pub(crate) const LEASE_MAGIC: [u8; 2] = [0xCA, 0x1E];

/// A fill lease: [`LEASE_MAGIC`] and 16 random bytes.
pub(crate) type Lease = [u8; 18];

pub(crate) fn new_lease() -> Lease {
    let mut lease = [0; 18];
    lease[..2].copy_from_slice(&LEASE_MAGIC);
    lease[2..].copy_from_slice(&rand::random::<[u8; 16]>());
    lease
}

/// How a generated read behaves on a miss.
pub(crate) struct ReadRequest<'a> {
    /// The caller's tag keys (full); a hit needs the entry to carry exactly these, all current.
    pub(crate) tags: &'a [String],
    /// Take this lease on a miss, for this long; also the refresh lock's
    /// token and lifetime.
    pub(crate) lease: &'a Lease,
    pub(crate) lease_ttl: Duration,
    /// Lifetime of a tag version this read creates.
    pub(crate) tag_ttl: Duration,
    /// Treat whatever is stored as a miss (it did not decode).
    pub(crate) force_miss: bool,
    /// XFetch's `β·(−ln u)`, `u` uniform in (0, 1]: a fresh entry is due
    /// for refresh once its freshness left is at most its load time times
    /// this. 0 turns early refresh off.
    pub(crate) early: f64,
}

/// The key of the lock that lets one caller refresh `key`. Coordination
/// only: a refresh stores only over the entry it read (by entry id), so a
/// lock that outlives an invalidation cannot make a refresh land over it.
pub(crate) fn refresh_lock(key: &str) -> String {
    format!("{key}:__cachemacro:refresh")
}

/// Whether a hit's entry should be refreshed, and by whom.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refresh {
    /// Fresh, and not due for an early refresh.
    No,
    /// Due (early, or past its freshness); this caller took the refresh lock.
    Mine,
    /// Due, but another caller holds the refresh lock.
    Theirs,
}

/// How a stored value may claim its key (the refresh lock of the key, if
/// held with the claim's token, is freed either way).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Claim<'a> {
    /// The key must still hold this fill lease (a miss's).
    Lease(&'a Lease),
    /// The key must still hold the entry with this id (a refresh of a
    /// fresh or kept entry); the refresh lock, if `lock` holds it, is freed.
    Entry { id: &'a EntryId, lock: &'a Lease },
}

/// Why a read missed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MissKind {
    /// Nothing stored (or expired).
    Absent,
    /// Bytes that are not an entry (foreign, corrupt, or rejected by the caller).
    Unreadable,
    /// An entry whose tags were invalidated, or whose tag list differs.
    Stale,
    /// Another caller's fill lease.
    Leased,
}

/// What a generated read found.
pub(crate) enum Read {
    /// An entry whose tags are current: fresh, or kept past its freshness.
    Hit {
        bytes: Vec<u8>,
        /// Freshness left (its physical TTL less its grace), in ms:
        /// negative for an entry kept past its freshness; `i64::MAX` for
        /// one without expiry.
        left_ms: i64,
        refresh: Refresh,
    },
    Miss {
        kind: MissKind,
        /// This caller now holds the lease and may fill.
        leased: bool,
        /// The current version of each requested tag (created if absent).
        versions: Vec<TagVersion>,
    },
}

pub(crate) enum Backend {
    Memory(memory::MemoryBackend),
    Redis(redis::RedisBackend),
    /// A misconfigured process default: every operation fails, so every
    /// cached function runs its body (correct, uncached, loud in the logs).
    Unavailable(String),
}

macro_rules! dispatch {
    ($self:ident . $method:ident ( $($arg:expr),* )) => {
        match $self {
            Backend::Memory(b) => Ok(b.$method($($arg),*).await),
            Backend::Redis(b) => b.$method($($arg),*).await,
            Backend::Unavailable(why) => Err(Error::Unavailable(why.clone())),
        }
    };
}

impl Backend {
    pub(crate) async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, Error> {
        dispatch!(self.get_many(keys))
    }

    pub(crate) async fn set(&self, key: &str, value: Vec<u8>, ttl: Duration) -> Result<(), Error> {
        dispatch!(self.set(key, value, ttl))
    }

    pub(crate) async fn set_many(
        &self,
        entries: Vec<(String, Vec<u8>)>,
        ttl: Duration,
    ) -> Result<(), Error> {
        dispatch!(self.set_many(entries, ttl))
    }

    pub(crate) async fn set_if_absent(
        &self,
        key: &str,
        value: Vec<u8>,
        ttl: Duration,
    ) -> Result<bool, Error> {
        dispatch!(self.set_if_absent(key, value, ttl))
    }

    pub(crate) async fn delete(&self, keys: &[String]) -> Result<u64, Error> {
        dispatch!(self.delete(keys))
    }

    pub(crate) async fn delete_prefix(&self, prefix: &str) -> Result<u64, Error> {
        dispatch!(self.delete_prefix(prefix))
    }

    /// Reads an entry for generated code, checking its tags and taking a
    /// fill lease on a miss, atomically.
    pub(crate) async fn read(&self, key: &str, req: &ReadRequest<'_>) -> Result<Read, Error> {
        dispatch!(self.read(key, req))
    }

    /// Stores `bytes` for `ttl` only if the key still holds what `claim`
    /// names: an invalidation since the read deleted it (or replaced the
    /// entry), and then nothing is stored. Makes the tags outlive it.
    pub(crate) async fn store(
        &self,
        key: &str,
        claim: Claim<'_>,
        tags: &[String],
        bytes: &[u8],
        ttl: Duration,
    ) -> Result<bool, Error> {
        dispatch!(self.store(key, claim, tags, bytes, ttl))
    }

    /// Gives a lease back: deletes the key if it still holds `lease`, and
    /// the key's refresh lock if it does.
    pub(crate) async fn release(&self, key: &str, lease: &Lease) -> Result<(), Error> {
        dispatch!(self.release(key, lease))
    }

    /// Each key's time to live in ms, as Redis `PTTL` says it: -2 absent,
    /// -1 no expiry.
    pub(crate) async fn pttls(&self, keys: &[String]) -> Result<Vec<i64>, Error> {
        dispatch!(self.pttls(keys))
    }

    pub(crate) async fn incr(
        &self,
        key: &str,
        delta: i64,
        ttl: Option<Duration>,
    ) -> Result<i64, Error> {
        match self {
            Backend::Memory(b) => b.incr(key, delta, ttl).await,
            Backend::Redis(b) => b.incr(key, delta, ttl).await,
            Backend::Unavailable(why) => Err(Error::Unavailable(why.clone())),
        }
    }

    pub(crate) fn describe(&self) -> String {
        match self {
            Backend::Memory(_) => "memory".into(),
            Backend::Redis(b) => b.describe(),
            Backend::Unavailable(why) => format!("unavailable ({why})"),
        }
    }
}
