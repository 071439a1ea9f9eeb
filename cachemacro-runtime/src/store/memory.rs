//! The in-process store: moka, bounded by bytes, applying the protocol's
//! rules atomically per key.
//!
//! ## Behavior
//!
//! * Entries honour their TTL, checked against tokio's clock on every read
//!   (so tests may use paused time). An expired entry is dropped when a read
//!   finds it, and otherwise by eviction once the store is full: moka keeps
//!   no timers of its own, so a hit reads the clock once.
//! * The total size of keys and values is bounded (64 MiB by default); past
//!   it moka evicts the least useful entries (TinyLFU).
//! * Every step that reads and then writes a key (lease, refresh lock,
//!   store, release, delete, `incr`, `set_if_absent`) runs inside moka's
//!   per-key compute lock, so it sees and changes the key in one step, as
//!   the Redis scripts do. A plain moka `remove` is not serialized with the
//!   compute lock, so deletes go through it too.
//! * Prefix deletes walk the entries, which is fine at in-process sizes.

use std::sync::Arc;
use std::time::Duration;

use moka::ops::compute::{CompResult, Op};
use moka::sync::Cache as Moka;
use tokio::time::Instant;

use super::protocol::{self, Acquire, Claim, EntryId, Expect, Seen, TOKEN_LEN, TagVersion, Token};
use super::{BoxFuture, Found, Store, Stored, Versioned};
use crate::Error;

/// What a key holds.
#[derive(Clone)]
enum Item {
    Lease(Token),
    /// An entry, and its refresh lock if someone holds it.
    Entry {
        stored: Arc<Stored>,
        /// The refresh lock's token and expiry (ms on the store's clock).
        lock: Option<(Token, u64)>,
    },
    /// Anything else: tag versions, counters, bytes that are not an entry.
    Bytes(Arc<[u8]>),
}

#[derive(Clone)]
struct Slot {
    item: Item,
    expires_at: Option<Instant>,
}

impl Slot {
    fn new(item: Item, ttl: Option<Duration>) -> Self {
        Slot {
            item,
            expires_at: ttl.map(|t| later(Instant::now(), t)),
        }
    }

    /// Framed bytes as an entry when they are one.
    fn from_bytes(bytes: Vec<u8>, ttl: Duration) -> Self {
        let item = match Stored::parse(bytes.clone()) {
            Some(stored) => Item::Entry {
                stored: Arc::new(stored),
                lock: None,
            },
            None => Item::Bytes(bytes.into()),
        };
        Slot::new(item, Some(ttl))
    }

    fn live(&self) -> bool {
        self.expires_at.is_none_or(|at| Instant::now() < at)
    }

    fn size(&self) -> usize {
        match &self.item {
            Item::Lease(_) => protocol::LEASE_LEN,
            // A typed value is counted as its bytes again (a fair guess of its size).
            Item::Entry { stored, .. } if stored.value.is_some() => 2 * stored.bytes.len(),
            Item::Entry { stored, .. } => stored.bytes.len(),
            Item::Bytes(b) => b.len(),
        }
    }

    /// What a read sees at `now`, with the entry as `f` maps it.
    fn seen<E>(&self, f: impl FnOnce(&Arc<Stored>) -> E) -> Seen<E> {
        self.seen_at(Instant::now(), f)
    }

    fn seen_at<E>(&self, now: Instant, f: impl FnOnce(&Arc<Stored>) -> E) -> Seen<E> {
        match &self.item {
            Item::Lease(_) => Seen::Lease,
            Item::Bytes(_) => Seen::Unreadable,
            Item::Entry { stored, .. } => {
                let pttl = self.expires_at.map(|at| {
                    u64::try_from(at.saturating_duration_since(now).as_millis()).unwrap_or(u64::MAX)
                });
                Seen::Entry {
                    left_ms: protocol::left_ms(pttl, stored.header.meta.grace),
                    entry: f(stored),
                }
            }
        }
    }

    /// What a read sees at `now`, the entry moved out (a hit's one `Arc`).
    fn into_seen(self, now: Instant) -> Found {
        let pttl = self.expires_at.map(|at| {
            u64::try_from(at.saturating_duration_since(now).as_millis()).unwrap_or(u64::MAX)
        });
        match self.item {
            Item::Lease(_) => Seen::Lease,
            Item::Bytes(_) => Seen::Unreadable,
            Item::Entry { stored, .. } => Seen::Entry {
                left_ms: protocol::left_ms(pttl, stored.header.meta.grace),
                entry: stored,
            },
        }
    }

    fn lease(&self) -> Option<&Token> {
        match &self.item {
            Item::Lease(token) => Some(token),
            _ => None,
        }
    }
}

/// `at + by`, or as far as the clock goes.
fn later(at: Instant, by: Duration) -> Instant {
    at.checked_add(by)
        .unwrap_or_else(|| at + Duration::from_secs(100 * 365 * 86_400))
}

pub(crate) struct MemoryStore {
    slots: Moka<String, Slot>,
    /// The store's clock starts here (tokio's, so tests may pause it).
    epoch: Instant,
}

fn ready<'a, T: Send + 'a>(value: T) -> BoxFuture<'a, Result<T, Error>> {
    Box::pin(std::future::ready(Ok(value)))
}

impl MemoryStore {
    pub(crate) fn new(max_bytes: u64) -> Self {
        let slots = Moka::builder()
            .max_capacity(max_bytes)
            .weigher(|k: &String, v: &Slot| {
                u32::try_from(k.len() + v.size() + 64).unwrap_or(u32::MAX)
            })
            .build();
        MemoryStore {
            slots,
            epoch: Instant::now(),
        }
    }

    /// Now, in ms on the store's clock.
    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn get(&self, key: &str) -> Option<Slot> {
        self.slots.get(key).filter(Slot::live)
    }

    fn found(&self, key: &str) -> Found {
        let now = Instant::now();
        match self.slots.get(key) {
            Some(slot) if slot.expires_at.is_none_or(|at| now < at) => slot.into_seen(now),
            Some(_) => {
                self.drop_expired(key);
                Seen::Nothing
            }
            None => Seen::Nothing,
        }
    }

    /// Drops `key` if it has expired (checked again under its lock).
    fn drop_expired(&self, key: &str) {
        let _: CompResult<String, Slot> =
            self.slots
                .entry_by_ref(key)
                .and_compute_with(|existing| match existing {
                    Some(e) if !e.value().live() => Op::Remove,
                    _ => Op::Nop,
                });
    }

    fn version(&self, tag: &str) -> Option<TagVersion> {
        match self.get(tag)?.item {
            Item::Bytes(b) => b.as_ref().try_into().ok(),
            _ => None,
        }
    }

    /// Runs `f` on the live slot of `key` (or `None`) under the key's
    /// compute lock; `f` says the key's new state. `None` only if moka
    /// did not run `f` (it always does).
    fn compute<R>(&self, key: &str, f: impl FnOnce(Option<&Slot>) -> (Change, R)) -> Option<R> {
        let mut out = None;
        let _: CompResult<String, Slot> =
            self.slots.entry_by_ref(key).and_compute_with(|existing| {
                let current = existing.as_ref().map(|e| e.value()).filter(|s| s.live());
                let (change, result) = f(current);
                out = Some(result);
                match change {
                    Change::Keep => Op::Nop,
                    Change::Put(slot) => Op::Put(slot),
                    Change::Remove if existing.is_some() => Op::Remove,
                    Change::Remove => Op::Nop,
                }
            });
        out
    }

    /// The tag's version, created (random) when it has none; lives at least `ttl`.
    fn ensure_version(&self, tag: &str, ttl: Duration) -> TagVersion {
        let fresh: TagVersion = rand::random();
        self.compute(tag, |slot| match slot.map(|s| &s.item) {
            Some(Item::Bytes(b)) if b.len() == protocol::VERSION_LEN => {
                let version = b.as_ref().try_into().unwrap_or(fresh);
                (Change::Keep, version)
            }
            _ => (
                Change::Put(Slot::new(Item::Bytes(fresh.to_vec().into()), Some(ttl))),
                fresh,
            ),
        })
        .unwrap_or(fresh)
    }

    /// Makes a tag version live at least `ttl` from now.
    fn extend(&self, tag: &str, ttl: Duration) {
        let until = later(Instant::now(), ttl);
        self.compute(tag, |slot| match slot {
            Some(s) if s.expires_at.is_some_and(|at| at < until) => (
                Change::Put(Slot {
                    item: s.item.clone(),
                    expires_at: Some(until),
                }),
                (),
            ),
            _ => (Change::Keep, ()),
        });
    }

    fn remove(&self, key: &str) -> bool {
        self.compute(key, |slot| (Change::Remove, slot.is_some()))
            .unwrap_or(false)
    }
}

/// A key's next state.
enum Change {
    Keep,
    Put(Slot),
    Remove,
}

fn id_of(stored: &Arc<Stored>) -> EntryId {
    stored.header.id
}

impl Store for MemoryStore {
    fn describe(&self) -> String {
        "memory".into()
    }

    fn ping(&self, _: Duration) -> BoxFuture<'_, Result<(), Error>> {
        ready(())
    }

    fn read_now(&self, key: &str, tags: &[String]) -> Option<Versioned> {
        let found = self.found(key);
        let versions = tags.iter().map(|t| self.version(t)).collect();
        Some((found, versions))
    }

    fn read<'a>(
        &'a self,
        key: &'a str,
        tags: &'a [String],
        _: f64,
    ) -> BoxFuture<'a, Result<Versioned, Error>> {
        let found = self.found(key);
        let versions = tags.iter().map(|t| self.version(t)).collect();
        ready((found, versions))
    }

    fn read_many<'a>(&'a self, keys: &'a [String]) -> BoxFuture<'a, Result<Vec<Found>, Error>> {
        ready(keys.iter().map(|k| self.found(k)).collect())
    }

    fn versions<'a>(
        &'a self,
        tags: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Option<TagVersion>>, Error>> {
        ready(tags.iter().map(|t| self.version(t)).collect())
    }

    fn acquire<'a>(
        &'a self,
        key: &'a str,
        expect: Expect,
        token: Token,
        lease_ttl: Duration,
        tags: &'a [String],
        tag_ttl: Duration,
    ) -> BoxFuture<'a, Result<(Acquire, Vec<TagVersion>), Error>> {
        let outcome = self
            .compute(key, |slot| {
                let now = slot.map_or(Seen::Nothing, |s| s.seen(id_of));
                match protocol::acquire(&now, expect) {
                    Acquire::Leased => (
                        Change::Put(Slot::new(Item::Lease(token), Some(lease_ttl))),
                        Acquire::Leased,
                    ),
                    other => (Change::Keep, other),
                }
            })
            .unwrap_or(Acquire::Changed);
        let versions = tags
            .iter()
            .map(|t| self.ensure_version(t, tag_ttl))
            .collect();
        ready((outcome, versions))
    }

    fn lock<'a>(
        &'a self,
        key: &'a str,
        id: EntryId,
        token: Token,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool, Error>> {
        let now = self.now_ms();
        let taken = self
            .compute(key, |slot| match slot {
                Some(
                    s @ Slot {
                        item: Item::Entry { stored, lock },
                        ..
                    },
                ) if stored.header.id == id && {
                    let (held, until) = lock.map_or(([0; TOKEN_LEN], 0), |(t, u)| (t.0, u));
                    protocol::lock_free(&held, until, now)
                } =>
                {
                    let mut next = s.clone();
                    let ttl = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
                    next.item = Item::Entry {
                        stored: stored.clone(),
                        lock: Some((token, now.saturating_add(ttl))),
                    };
                    (Change::Put(next), true)
                }
                _ => (Change::Keep, false),
            })
            .unwrap_or(false);
        ready(taken)
    }

    fn store<'a>(
        &'a self,
        key: &'a str,
        claim: Claim,
        bytes: Arc<Vec<u8>>,
        value: Option<crate::engine::Shared>,
        tags: &'a [String],
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool, Error>> {
        let stored = self
            .compute(key, |slot| {
                let now = slot.map_or(Seen::Nothing, |s| s.seen(id_of));
                if !protocol::claim_holds(&now, slot.and_then(Slot::lease), claim) {
                    return (Change::Keep, false);
                }
                match Stored::from_shared(bytes.clone()) {
                    Some(mut stored) => (
                        Change::Put(Slot::new(
                            Item::Entry {
                                stored: {
                                    stored.value = value.clone();
                                    Arc::new(stored)
                                },
                                lock: None,
                            },
                            Some(ttl),
                        )),
                        true,
                    ),
                    None => (Change::Keep, false),
                }
            })
            .unwrap_or(false);
        if stored {
            for tag in tags {
                self.extend(tag, ttl);
            }
        }
        ready(stored)
    }

    fn release<'a>(&'a self, key: &'a str, token: Token) -> BoxFuture<'a, Result<(), Error>> {
        self.compute(key, |slot| match slot {
            Some(Slot {
                item: Item::Lease(held),
                ..
            }) if *held == token => (Change::Remove, ()),
            Some(
                s @ Slot {
                    item:
                        Item::Entry {
                            stored,
                            lock: Some((held, _)),
                        },
                    ..
                },
            ) if *held == token => {
                let mut next = s.clone();
                next.item = Item::Entry {
                    stored: stored.clone(),
                    lock: None,
                };
                (Change::Put(next), ())
            }
            _ => (Change::Keep, ()),
        });
        ready(())
    }

    fn set_many(
        &self,
        entries: Vec<(String, Vec<u8>)>,
        ttl: Duration,
    ) -> BoxFuture<'_, Result<(), Error>> {
        for (key, bytes) in entries {
            let slot = Slot::from_bytes(bytes, ttl);
            self.compute(&key, |_| (Change::Put(slot), ()));
        }
        ready(())
    }

    fn set_if_absent<'a>(
        &'a self,
        key: &'a str,
        bytes: Vec<u8>,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool, Error>> {
        let stored = self
            .compute(key, |slot| match slot {
                Some(_) => (Change::Keep, false),
                None => (Change::Put(Slot::from_bytes(bytes, ttl)), true),
            })
            .unwrap_or(false);
        ready(stored)
    }

    fn delete<'a>(&'a self, keys: &'a [String]) -> BoxFuture<'a, Result<u64, Error>> {
        ready(keys.iter().map(|k| u64::from(self.remove(k))).sum())
    }

    fn delete_prefix<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<u64, Error>> {
        let doomed: Vec<Arc<String>> = self
            .slots
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(k, _)| k)
            .collect();
        ready(doomed.iter().map(|k| u64::from(self.remove(k))).sum())
    }

    fn incr<'a>(
        &'a self,
        key: &'a str,
        delta: i64,
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<i64, Error>> {
        let result = self.compute(key, |slot| {
            let (current, expires_at) = match slot {
                None => (0, None),
                Some(s) => {
                    let parsed = match &s.item {
                        Item::Bytes(b) => std::str::from_utf8(b).ok().and_then(|t| t.parse().ok()),
                        _ => None,
                    };
                    match parsed {
                        Some(n) => (n, s.expires_at),
                        None => return (Change::Keep, Err(Error::NotAnInteger(key.to_owned()))),
                    }
                }
            };
            let Some(next) = i64::checked_add(current, delta) else {
                return (Change::Keep, Err(Error::NotAnInteger(key.to_owned())));
            };
            let expires_at = expires_at.or_else(|| ttl.map(|t| later(Instant::now(), t)));
            let slot = Slot {
                item: Item::Bytes(next.to_string().into_bytes().into()),
                expires_at,
            };
            (Change::Put(slot), Ok(next))
        });
        let result = result.unwrap_or_else(|| Err(Error::NotAnInteger(key.to_owned())));
        Box::pin(std::future::ready(result))
    }
}
