//! The store in front of a shared Redis: everything passes through, and
//! what changes entries other instances may hold is announced.
//!
//! ## Behavior
//!
//! * A delete (keys, tag versions) or prefix delete drops the matching
//!   local entries, deletes in Redis, drops them again (a fill that read
//!   Redis before the delete cannot stay), then publishes the
//!   announcement. If the publish fails the call fails, so the caller
//!   queues and replays it like any invalidation that did not land.
//! * A store that replaced an entry (a refresh, the manual `set`) drops it
//!   locally and is announced. A refresh whose announcement fails is only
//!   logged (the entry it replaced was valid, not invalidated); a manual
//!   `set` whose announcement fails returns the error.
//! * A read that fails makes its shard suspect (`trust.rs`).
//! * Before a replay, the instance asks every node for its clock and
//!   announces that entries stored before it are not to be trusted.

use std::sync::Arc;
use std::time::Duration;

use super::Tier;
use super::message::Announcement;
use crate::Error;
use crate::engine::Shared;
use crate::store::{
    Acquire, BoxFuture, Claim, EntryId, Expect, Found, Probe, Store, TagVersion, Token, Versioned,
};

pub(crate) struct Coherent {
    remote: Arc<dyn Store>,
    tier: Arc<Tier>,
}

impl Coherent {
    pub(crate) fn new(remote: Arc<dyn Store>, tier: Arc<Tier>) -> Coherent {
        Coherent { remote, tier }
    }

    async fn announce(&self, announcement: Announcement) -> Result<(), Error> {
        if self.tier.unsupported() {
            return Ok(());
        }
        let (message, number) = self.tier.message(&announcement);
        match self.remote.publish(&self.tier.channel, message).await {
            Ok(()) => {
                self.tier.published(number);
                Ok(())
            }
            // Pub/sub refused (an ACL without channels, a proxy without
            // pub/sub): there is no fleet to tell, and no local tier.
            Err(e) if super::pubsub_refused(&e.to_string()) => {
                self.tier.refused(e.to_string());
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// A read that timed out or lost its connection: the key's node may
    /// have missed invalidations (an error reply proves it answered).
    fn failed<T>(&self, key: &str, result: Result<T, Error>) -> Result<T, Error> {
        if let Err(e) = &result
            && unreachable(e)
        {
            let shard = self.remote.shard_of(key);
            self.tier.trust.suspect(&[shard..=shard]);
        }
        result
    }
}

impl Store for Coherent {
    fn describe(&self) -> String {
        self.remote.describe()
    }

    fn ping(&self, limit: Duration) -> BoxFuture<'_, Result<(), Error>> {
        self.remote.ping(limit)
    }

    fn read<'a>(
        &'a self,
        key: &'a str,
        tags: &'a [String],
        beta: f64,
    ) -> BoxFuture<'a, Result<Versioned, Error>> {
        Box::pin(async move {
            let result = self.remote.read(key, tags, beta).await;
            self.failed(key, result)
        })
    }

    fn read_many<'a>(&'a self, keys: &'a [String]) -> BoxFuture<'a, Result<Vec<Found>, Error>> {
        Box::pin(async move {
            let result = self.remote.read_many(keys).await;
            if let Err(e) = &result
                && unreachable(e)
            {
                for key in keys {
                    let shard = self.remote.shard_of(key);
                    self.tier.trust.suspect(&[shard..=shard]);
                }
            }
            result
        })
    }

    fn versions<'a>(
        &'a self,
        tags: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Option<TagVersion>>, Error>> {
        self.remote.versions(tags)
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
        self.remote
            .acquire(key, expect, token, lease_ttl, tags, tag_ttl)
    }

    fn lock<'a>(
        &'a self,
        key: &'a str,
        id: EntryId,
        token: Token,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool, Error>> {
        self.remote.lock(key, id, token, ttl)
    }

    fn store<'a>(
        &'a self,
        key: &'a str,
        claim: Claim,
        bytes: Arc<Vec<u8>>,
        value: Option<Shared>,
        tags: &'a [String],
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool, Error>> {
        Box::pin(async move {
            let stored = self
                .remote
                .store(key, claim, bytes, value, tags, ttl)
                .await?;
            if stored && matches!(claim, Claim::Entry(_)) {
                let keys = [key.to_owned()];
                self.tier.drop_keys(&keys);
                if let Err(e) = self.announce(Announcement::Keys(keys.into())).await {
                    tracing::debug!(key, error = %e, "a replaced entry was not announced");
                }
            }
            Ok(stored)
        })
    }

    fn release<'a>(&'a self, key: &'a str, token: Token) -> BoxFuture<'a, Result<(), Error>> {
        self.remote.release(key, token)
    }

    fn set_many(
        &self,
        entries: Vec<(String, Vec<u8>)>,
        ttl: Duration,
    ) -> BoxFuture<'_, Result<(), Error>> {
        Box::pin(async move {
            let keys: Vec<String> = entries.iter().map(|(k, _)| k.clone()).collect();
            self.tier.drop_keys(&keys);
            self.remote.set_many(entries, ttl).await?;
            self.tier.drop_keys(&keys);
            // Not silent: the caller hears that other instances may still
            // hold the old entries locally (until their local TTL), and can
            // set again.
            self.announce(Announcement::Keys(keys)).await
        })
    }

    fn set_if_absent<'a>(
        &'a self,
        key: &'a str,
        bytes: Vec<u8>,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool, Error>> {
        self.remote.set_if_absent(key, bytes, ttl)
    }

    fn delete<'a>(&'a self, keys: &'a [String]) -> BoxFuture<'a, Result<u64, Error>> {
        Box::pin(async move {
            self.tier.drop_keys(keys);
            let deleted = self.remote.delete(keys).await;
            self.tier.drop_keys(keys);
            // Announced even when part of it failed (on a cluster, the keys
            // on live primaries are gone): dropping a local entry is always
            // safe, and the replay announces again.
            let announced = self.announce(Announcement::Keys(keys.to_vec())).await;
            let deleted = deleted?;
            announced?;
            Ok(deleted)
        })
    }

    fn delete_prefix<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<u64, Error>> {
        Box::pin(async move {
            self.tier.drop_prefix(prefix);
            let deleted = self.remote.delete_prefix(prefix).await;
            self.tier.drop_prefix(prefix);
            let announced = self.announce(Announcement::Prefix(prefix.to_owned())).await;
            let deleted = deleted?;
            announced?;
            Ok(deleted)
        })
    }

    fn incr<'a>(
        &'a self,
        key: &'a str,
        delta: i64,
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<i64, Error>> {
        self.remote.incr(key, delta, ttl)
    }

    fn shared(&self) -> bool {
        self.remote.shared()
    }

    fn shards(&self) -> usize {
        self.remote.shards()
    }

    fn shard_of(&self, key: &str) -> usize {
        self.remote.shard_of(key)
    }

    fn probe(&self, limit: Duration) -> BoxFuture<'_, Vec<Probe>> {
        self.remote.probe(limit)
    }

    fn publish<'a>(
        &'a self,
        channel: &'a str,
        message: Vec<u8>,
    ) -> BoxFuture<'a, Result<(), Error>> {
        self.remote.publish(channel, message)
    }

    fn before_replay(&self) -> BoxFuture<'_, Result<(), Error>> {
        Box::pin(async move {
            // The newest clock among the nodes that answer: one node down
            // must not hold back the announcement the others need.
            let probes = self.remote.probe(self.tier.deaf_after).await;
            let mut newest = None;
            let mut failed = None;
            for probe in probes {
                match probe.now_ms {
                    Ok(ms) => newest = newest.max(Some(ms)),
                    Err(e) => failed = Some(e),
                }
            }
            match (newest, failed) {
                (Some(ms), _) => self.announce(Announcement::Distrust(ms)).await,
                (None, Some(e)) => Err(e),
                (None, None) => Ok(()),
            }
        })
    }

    fn listen_on(&self) -> Vec<redis::Client> {
        self.remote.listen_on()
    }

    fn breaker(&self) -> Option<crate::BreakerHealth> {
        self.remote.breaker()
    }
}

/// Whether an error means the node could not be reached (as opposed to an
/// answer that was an error).
fn unreachable(e: &Error) -> bool {
    match e {
        Error::Timeout(_)
        | Error::Connect { .. }
        | Error::Unavailable(_)
        | Error::CircuitOpen { .. } => true,
        Error::Backend(source) => source
            .downcast_ref::<redis::RedisError>()
            .is_none_or(|e| e.is_io_error() || e.is_connection_dropped() || e.is_timeout()),
        _ => false,
    }
}
