//! With the `metrics` feature: a store that times each round trip of the
//! one behind it, in `cachemacro_backend_duration_seconds{op}`.
//!
//! ## Behavior
//!
//! * It sits right in front of the Redis store, behind the circuit
//!   breaker: an operation the open breaker refuses makes no round trip
//!   and is not timed. A failed or timed-out round trip is timed like any
//!   other (a timeout shows as the operation timeout).
//! * The in-memory store is not timed: its operations are a lookup, and
//!   two clock reads would be a real part of a hit's cost.
//! * The tier's clock probes and its subscription are not timed; they run
//!   in the background, on their own connections.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::{
    Acquire, BoxFuture, BreakerHealth, Claim, EntryId, Expect, Found, Probe, Store, TagVersion,
    Token, Versioned,
};
use crate::Error;
use crate::stats::metrics::{BackendTimes, Op};

pub(crate) struct Timed {
    inner: Arc<dyn Store>,
    times: BackendTimes,
}

impl Timed {
    pub(crate) fn new(inner: Arc<dyn Store>) -> Timed {
        Timed {
            inner,
            times: BackendTimes::default(),
        }
    }

    fn timed<'a, T: Send + 'a>(&'a self, op: Op, request: BoxFuture<'a, T>) -> BoxFuture<'a, T> {
        Box::pin(async move {
            let started = Instant::now();
            let out = request.await;
            self.times.record(op, started.elapsed());
            out
        })
    }
}

impl Store for Timed {
    fn describe(&self) -> String {
        self.inner.describe()
    }

    fn ping(&self, limit: Duration) -> BoxFuture<'_, Result<(), Error>> {
        self.timed(Op::Ping, self.inner.ping(limit))
    }

    fn breaker(&self) -> Option<BreakerHealth> {
        self.inner.breaker()
    }

    fn read_now(&self, key: &str, tags: &[String]) -> Option<Versioned> {
        self.inner.read_now(key, tags)
    }

    fn read<'a>(
        &'a self,
        key: &'a str,
        tags: &'a [String],
        beta: f64,
    ) -> BoxFuture<'a, Result<Versioned, Error>> {
        self.timed(Op::Get, self.inner.read(key, tags, beta))
    }

    fn read_many<'a>(&'a self, keys: &'a [String]) -> BoxFuture<'a, Result<Vec<Found>, Error>> {
        self.timed(Op::GetMany, self.inner.read_many(keys))
    }

    fn versions<'a>(
        &'a self,
        tags: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Option<TagVersion>>, Error>> {
        self.timed(Op::TagVersions, self.inner.versions(tags))
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
        let request = self
            .inner
            .acquire(key, expect, token, lease_ttl, tags, tag_ttl);
        self.timed(Op::Lease, request)
    }

    fn lock<'a>(
        &'a self,
        key: &'a str,
        id: EntryId,
        token: Token,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool, Error>> {
        self.timed(Op::RefreshLock, self.inner.lock(key, id, token, ttl))
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
        let request = self.inner.store(key, claim, bytes, value, tags, ttl);
        self.timed(Op::Store, request)
    }

    fn release<'a>(&'a self, key: &'a str, token: Token) -> BoxFuture<'a, Result<(), Error>> {
        self.timed(Op::Release, self.inner.release(key, token))
    }

    fn set_many(
        &self,
        entries: Vec<(String, Vec<u8>)>,
        ttl: Duration,
    ) -> BoxFuture<'_, Result<(), Error>> {
        self.timed(Op::Set, self.inner.set_many(entries, ttl))
    }

    fn set_if_absent<'a>(
        &'a self,
        key: &'a str,
        bytes: Vec<u8>,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool, Error>> {
        self.timed(Op::SetIfAbsent, self.inner.set_if_absent(key, bytes, ttl))
    }

    fn delete<'a>(&'a self, keys: &'a [String]) -> BoxFuture<'a, Result<u64, Error>> {
        self.timed(Op::Delete, self.inner.delete(keys))
    }

    fn delete_prefix<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<u64, Error>> {
        self.timed(Op::DeletePrefix, self.inner.delete_prefix(prefix))
    }

    fn incr<'a>(
        &'a self,
        key: &'a str,
        delta: i64,
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<i64, Error>> {
        self.timed(Op::Incr, self.inner.incr(key, delta, ttl))
    }

    fn shared(&self) -> bool {
        self.inner.shared()
    }

    fn shards(&self) -> usize {
        self.inner.shards()
    }

    fn shard_of(&self, key: &str) -> usize {
        self.inner.shard_of(key)
    }

    fn probe(&self, limit: Duration) -> BoxFuture<'_, Vec<Probe>> {
        self.inner.probe(limit)
    }

    fn publish<'a>(
        &'a self,
        channel: &'a str,
        message: Vec<u8>,
    ) -> BoxFuture<'a, Result<(), Error>> {
        self.timed(Op::Publish, self.inner.publish(channel, message))
    }

    fn before_replay(&self) -> BoxFuture<'_, Result<(), Error>> {
        self.timed(Op::BeforeReplay, self.inner.before_replay())
    }

    fn listen_on(&self) -> Vec<::redis::Client> {
        self.inner.listen_on()
    }
}
