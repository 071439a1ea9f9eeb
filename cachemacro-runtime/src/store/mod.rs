//! Storage: the protocol every backend follows, and the backends behind
//! one trait. Every key reaching a store already carries the namespace.

pub(crate) mod breaker;
pub(crate) mod diagnose;
pub(crate) mod memory;
pub(crate) mod protocol;
pub(crate) mod redis;
pub(crate) mod tier;
#[cfg(feature = "metrics")]
pub(crate) mod timed;
mod unavailable;

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::Error;
use crate::codec::{Cacheable, Codec, Decoded};
use crate::engine::Shared;
pub(crate) use protocol::{Acquire, Claim, EntryId, Expect, Header, Seen, TagVersion, Token};
pub(crate) use unavailable::Unavailable;

pub use breaker::{BreakerHealth, BreakerState};
pub use diagnose::Problem;

/// A boxed future: stores are trait objects, so a new backend or a tier
/// in front of one composes without editing the others.
pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A stored entry as read: its header, and its framed bytes.
#[derive(Clone)]
pub(crate) struct Stored {
    pub(crate) header: Header,
    /// The whole framed entry (header, tags, payload).
    pub(crate) bytes: Arc<Vec<u8>>,
    /// Where the payload starts in `bytes`.
    payload_at: usize,
    /// The value itself, kept by the memory store for types that can be
    /// cloned out of it (a hit is then a clone, not a decode).
    pub(crate) value: Option<Shared>,
    /// The value as the first read that decoded it left it, for entries
    /// the in-process tier keeps (its later hits clone it).
    pub(crate) decoded: std::sync::OnceLock<Shared>,
}

impl std::fmt::Debug for Stored {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stored")
            .field("header", &self.header)
            .field("len", &self.bytes.len())
            .field("typed", &self.value.is_some())
            .finish()
    }
}

impl Stored {
    /// Parses framed bytes; `None` when they are not an entry.
    pub(crate) fn parse(bytes: Vec<u8>) -> Option<Stored> {
        let (header, payload) = protocol::parse(&bytes)?;
        let payload_at = bytes.len() - payload.len();
        Some(Stored {
            header,
            bytes: Arc::new(bytes),
            payload_at,
            value: None,
            decoded: std::sync::OnceLock::new(),
        })
    }

    /// As [`Stored::parse`], keeping the bytes where they are.
    pub(crate) fn from_shared(bytes: Arc<Vec<u8>>) -> Option<Stored> {
        let (header, payload) = protocol::parse(&bytes)?;
        let payload_at = bytes.len() - payload.len();
        Some(Stored {
            header,
            bytes,
            payload_at,
            value: None,
            decoded: std::sync::OnceLock::new(),
        })
    }

    /// The value, decoded without parsing the header again.
    pub(crate) fn decode<C: Codec, T: Cacheable>(&self) -> Decoded<T> {
        let payload = self.bytes.get(self.payload_at..).unwrap_or_default();
        crate::codec::decode_payload::<C, T>(self.header.codec, self.header.fingerprint, payload)
    }
}

/// What one key holds, as a read saw it.
pub(crate) type Found = Seen<Arc<Stored>>;

/// A read of one key, with the current version of each tag asked for.
pub(crate) type Versioned = (Found, Vec<Option<TagVersion>>);

impl Found {
    /// Judges this read by the protocol's rules.
    pub(crate) fn state(
        &self,
        tags: &[String],
        versions: &[Option<TagVersion>],
        early: f64,
    ) -> protocol::State {
        let (header, seen) = match self {
            Seen::Nothing => (None, Seen::Nothing),
            Seen::Lease => (None, Seen::Lease),
            Seen::Unreadable => (None, Seen::Unreadable),
            Seen::Entry { entry, left_ms } => (
                Some(&entry.header),
                Seen::Entry {
                    entry: (),
                    left_ms: *left_ms,
                },
            ),
        };
        protocol::classify(header, &seen, tags, versions, early)
    }

    /// The stored entry, if any.
    pub(crate) fn stored(&self) -> Option<&Stored> {
        match self {
            Seen::Entry { entry, .. } => Some(entry),
            _ => None,
        }
    }

    /// Classifies raw bytes and a remaining TTL (`None`: no expiry).
    pub(crate) fn from_raw(raw: Option<Vec<u8>>, pttl: Option<u64>) -> Found {
        match raw {
            None => Seen::Nothing,
            Some(bytes) if protocol::is_lease(&bytes) => Seen::Lease,
            Some(bytes) => match Stored::parse(bytes) {
                None => Seen::Unreadable,
                Some(entry) => {
                    let left_ms = protocol::left_ms(pttl, entry.header.meta.grace);
                    Seen::Entry {
                        entry: Arc::new(entry),
                        left_ms,
                    }
                }
            },
        }
    }
}

/// A storage backend. Each method is one atomic step of the protocol
/// (`protocol.rs`), one round trip on a remote store, and touches one key
/// (or independent single keys): nothing spans two Redis Cluster slots.
pub(crate) trait Store: Send + Sync + 'static {
    /// `memory`, the URL without password, or why it is unavailable.
    fn describe(&self) -> String;

    /// Round-trips to the backend, bounded by `limit`.
    fn ping(&self, limit: Duration) -> BoxFuture<'_, Result<(), Error>>;

    /// The circuit breaker's state, for a store behind one (`breaker.rs`).
    fn breaker(&self) -> Option<BreakerHealth> {
        None
    }

    /// [`Store::read`] without a future, for a store that can answer at
    /// once (in memory); `None` when it must go over the network.
    fn read_now(&self, _key: &str, _tags: &[String]) -> Option<Versioned> {
        None
    }

    /// The hit path: what `key` holds and the current version of each of
    /// `tags`, read with (or after) it. Writes nothing. `beta` (XFetch's β)
    /// tells how close to expiry the remaining TTL must be exact.
    fn read<'a>(
        &'a self,
        key: &'a str,
        tags: &'a [String],
        beta: f64,
    ) -> BoxFuture<'a, Result<Versioned, Error>>;

    /// What each key holds (the manual API), in one round trip.
    fn read_many<'a>(&'a self, keys: &'a [String]) -> BoxFuture<'a, Result<Vec<Found>, Error>>;

    /// The current version of each tag (absent: `None`).
    fn versions<'a>(
        &'a self,
        tags: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Option<TagVersion>>, Error>>;

    /// Takes a fill lease over what a read saw (see [`protocol::acquire`]),
    /// and reads each tag's version for the fill to record, creating the
    /// ones that have none so that they live at least `tag_ttl`.
    fn acquire<'a>(
        &'a self,
        key: &'a str,
        expect: Expect,
        token: Token,
        lease_ttl: Duration,
        tags: &'a [String],
        tag_ttl: Duration,
    ) -> BoxFuture<'a, Result<(Acquire, Vec<TagVersion>), Error>>;

    /// Takes the refresh lock of the entry `id` at `key` for `ttl`, unless
    /// another caller holds it or the key holds something else.
    fn lock<'a>(
        &'a self,
        key: &'a str,
        id: EntryId,
        token: Token,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool, Error>>;

    /// Stores a framed entry for `ttl` only while `claim` holds, then makes
    /// each tag's version live at least as long. `false`: the claim was
    /// gone (an invalidation came, or another refresh landed first). A store
    /// in process memory may keep `value` beside the bytes.
    #[allow(clippy::too_many_arguments)]
    fn store<'a>(
        &'a self,
        key: &'a str,
        claim: Claim,
        bytes: Arc<Vec<u8>>,
        value: Option<Shared>,
        tags: &'a [String],
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool, Error>>;

    /// Gives a claim back: deletes the key if it holds this token's lease,
    /// frees the entry's refresh lock if this token holds it.
    fn release<'a>(&'a self, key: &'a str, token: Token) -> BoxFuture<'a, Result<(), Error>>;

    /// Stores framed entries unconditionally (the manual API).
    fn set_many(
        &self,
        entries: Vec<(String, Vec<u8>)>,
        ttl: Duration,
    ) -> BoxFuture<'_, Result<(), Error>>;

    /// Stores a framed entry if the key holds nothing.
    fn set_if_absent<'a>(
        &'a self,
        key: &'a str,
        bytes: Vec<u8>,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool, Error>>;

    /// Deletes exact keys; how many existed.
    fn delete<'a>(&'a self, keys: &'a [String]) -> BoxFuture<'a, Result<u64, Error>>;

    /// Deletes every key starting with `prefix`; how many went.
    fn delete_prefix<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<u64, Error>>;

    /// Like Redis `INCRBY`, with a TTL set only on a key that has none.
    fn incr<'a>(
        &'a self,
        key: &'a str,
        delta: i64,
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<i64, Error>>;

    /// Whether other processes share this store (Redis): only then are
    /// invalidations announced and entries judged by their fill time.
    fn shared(&self) -> bool {
        false
    }

    /// How many shards this store's keys fall in, each with its own server
    /// clock and its own outages: 1, or a cluster's 16 384 slots.
    fn shards(&self) -> usize {
        1
    }

    /// The shard of a full key.
    fn shard_of(&self, _key: &str) -> usize {
        0
    }

    /// Asks every node for its clock, each answer bounded by `limit`: what
    /// tells an instance that a node is back (and since when).
    fn probe(&self, _limit: Duration) -> BoxFuture<'_, Vec<Probe>> {
        Box::pin(std::future::ready(Vec::new()))
    }

    /// Publishes `message` on the pub/sub `channel` (every node of a cluster
    /// hears it).
    fn publish<'a>(
        &'a self,
        _channel: &'a str,
        _message: Vec<u8>,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(std::future::ready(Ok(())))
    }

    /// Runs before a replay of failed invalidations: a store others share
    /// tells them not to trust entries stored before now.
    fn before_replay(&self) -> BoxFuture<'_, Result<(), Error>> {
        Box::pin(std::future::ready(Ok(())))
    }

    /// Where to subscribe to announcements, in order of preference (a
    /// cluster: its seed nodes). Empty for a store no one else shares.
    fn listen_on(&self) -> Vec<::redis::Client> {
        Vec::new()
    }
}

/// One node's answer to [`Store::probe`].
#[derive(Debug)]
pub(crate) struct Probe {
    /// The shards it serves.
    pub(crate) shards: Vec<std::ops::RangeInclusive<usize>>,
    /// Its clock (server ms), or why it did not answer.
    pub(crate) now_ms: Result<u64, Error>,
}

#[cfg(test)]
mod parity_tests;
