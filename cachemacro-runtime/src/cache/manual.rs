//! The manual API: reads and writes by key, outside `get_or_load`.

use std::time::Duration;

use tracing::Instrument as _;

use super::handle::Cache;
use crate::Error;
use crate::codec::{Bincode, Cacheable, Decoded};
use crate::key::Pattern;
use crate::store::protocol::{self, Meta, State};
use crate::store::{Found, TagVersion};

impl Cache {
    /// Reads a value written by [`Cache::set`], [`Cache::get_or_load`] or a
    /// `#[cached]` function. Absent, expired and undecodable entries are
    /// `Ok(None)`, and so is an entry one of whose tags was invalidated, one
    /// kept past its freshness (for `stale`/`fail_safe`), or, on Redis, one
    /// stored before an outage this instance noticed (it may have missed an
    /// invalidation of it; see the README's "Two tiers").
    ///
    /// # Errors
    /// A backend failure or timeout; [`Error::InvalidationsPending`] while
    /// failed invalidations wait to be replayed.
    pub async fn get<T: Cacheable>(&self, key: &str) -> Result<Option<T>, Error> {
        Ok(self.get_many(&[key]).await?.pop().flatten())
    }

    /// Reads several values in one round trip (a second one only to check
    /// tags, when entries carry any), in the order asked. Each is judged by
    /// the same rules as a cached call's read, against the tags it carries.
    ///
    /// # Errors
    /// As [`Cache::get`].
    pub async fn get_many<T: Cacheable>(&self, keys: &[&str]) -> Result<Vec<Option<T>>, Error> {
        self.gate()?;
        let rec = self.manual_recorder();
        let full: Vec<String> = keys.iter().map(|k| self.full_key(k)).collect();
        let found = self
            .store()
            .read_many(&full)
            .await
            .inspect_err(|_| rec.add(|c| &c.errors, 1))?;
        let mut tags: Vec<String> = found
            .iter()
            .filter_map(Found::stored)
            .flat_map(|s| s.header.tags.iter().map(|(name, _)| name.clone()))
            .collect();
        tags.sort();
        tags.dedup();
        let versions = self
            .store()
            .versions(&tags)
            .await
            .inspect_err(|_| rec.add(|c| &c.errors, 1))?;
        let current = |name: &String| -> Option<TagVersion> {
            tags.binary_search(name).ok().and_then(|i| versions[i])
        };
        let mut out = Vec::with_capacity(found.len());
        for (found, key) in found.into_iter().zip(keys) {
            let (own, now): (Vec<String>, Vec<Option<TagVersion>>) = match found.stored() {
                Some(s) => s
                    .header
                    .tags
                    .iter()
                    .map(|(n, _)| (n.clone(), current(n)))
                    .unzip(),
                None => (Vec::new(), Vec::new()),
            };
            let mut state = found.state(&own, &now, 0.0);
            if let (Some(tier), Some(stored)) = (self.tier(), found.stored())
                && !tier.trust.trusts(
                    || self.store().shard_of(&self.full_key(key)),
                    stored.header.filled_at,
                )
            {
                // Stored before this instance may have missed an invalidation.
                rec.add(|c| &c.distrusted, 1);
                state = State::Stale;
            }
            let value = match (state, found.stored()) {
                (State::Fresh { .. }, Some(stored)) => match stored.decode::<Bincode, T>() {
                    Decoded::Value(value) => Some(value),
                    Decoded::Mismatch(why) => {
                        rec.add(|c| &c.decode_errors, 1);
                        tracing::debug!(key, reason = ?why, "cached bytes do not decode as {}; treating as a miss", std::any::type_name::<T>());
                        None
                    }
                },
                (State::Unreadable, _) => {
                    rec.add(|c| &c.decode_errors, 1);
                    None
                }
                _ => None,
            };
            if value.is_some() {
                rec.add(|c| &c.hits, 1);
            } else {
                rec.add(|c| &c.misses, 1);
            }
            out.push(value);
        }
        Ok(out)
    }

    /// Refuses while invalidations wait to be replayed.
    fn gate(&self) -> Result<(), Error> {
        if self.ready() {
            Ok(())
        } else {
            self.manual_recorder().add(|c| &c.bypassed, 1);
            Err(Error::InvalidationsPending)
        }
    }

    /// Stores a value for `ttl`, and (on Redis) tells the other instances
    /// to drop the old one from their local tier.
    ///
    /// # Errors
    /// An encoding failure, or a backend failure or timeout; or the value
    /// is stored but the announcement failed, so other instances may serve
    /// the old value from their local tier until their local TTL (set again
    /// to announce it).
    pub async fn set<T: Cacheable>(
        &self,
        key: &str,
        value: &T,
        ttl: Duration,
    ) -> Result<(), Error> {
        self.set_many(&[(key, value)], ttl).await
    }

    /// Stores several values for `ttl` in one round trip (a pipeline).
    ///
    /// # Errors
    /// An encoding failure, or a backend failure or timeout.
    pub async fn set_many<T: Cacheable>(
        &self,
        entries: &[(&str, &T)],
        ttl: Duration,
    ) -> Result<(), Error> {
        self.gate()?;
        let rec = self.manual_recorder();
        let mut encoded = Vec::with_capacity(entries.len());
        for (key, value) in entries {
            encoded.push((
                self.full_key(key),
                protocol::encode::<Bincode, T>(value, &[], Meta::default())?,
            ));
        }
        let n = encoded.len() as u64;
        self.store()
            .set_many(encoded, ttl)
            .await
            .inspect_err(|_| rec.add(|c| &c.errors, 1))?;
        rec.add(|c| &c.stores, n);
        Ok(())
    }

    /// Stores a value only if the key holds none (`SET NX`); `true` if stored.
    ///
    /// # Errors
    /// An encoding failure, or a backend failure or timeout.
    pub async fn set_if_absent<T: Cacheable>(
        &self,
        key: &str,
        value: &T,
        ttl: Duration,
    ) -> Result<bool, Error> {
        self.gate()?;
        let rec = self.manual_recorder();
        let bytes = protocol::encode::<Bincode, T>(value, &[], Meta::default())?;
        let stored = self
            .store()
            .set_if_absent(&self.full_key(key), bytes, ttl)
            .await
            .inspect_err(|_| rec.add(|c| &c.errors, 1))?;
        if stored {
            rec.add(|c| &c.stores, 1);
        }
        Ok(stored)
    }

    /// Adds `delta` to the integer at `key` (starting from 0) and returns the
    /// result, like Redis `INCRBY`. With `ttl`, a key that has no expiry gets
    /// one, so a rate-limit window starts at its first increment.
    ///
    /// Counters are stored as decimal text, not as cached values: read them
    /// with `incr(key, 0, None)`, not [`Cache::get`].
    ///
    /// # Errors
    /// [`Error::NotAnInteger`] if the key holds something else or the sum
    /// overflows; a backend failure or timeout.
    pub async fn incr(&self, key: &str, delta: i64, ttl: Option<Duration>) -> Result<i64, Error> {
        let rec = self.manual_recorder();
        self.store()
            .incr(&self.full_key(key), delta, ttl)
            .await
            .map_err(|e| match e {
                // The caller's key, not the namespaced one.
                Error::NotAnInteger(_) => Error::NotAnInteger(key.to_owned()),
                e => {
                    rec.add(|c| &c.errors, 1);
                    e
                }
            })
    }

    /// Deletes one key; `true` if it existed.
    ///
    /// # Errors
    /// A backend failure or timeout; the deletion is queued and replayed
    /// (and the cache bypassed) until it lands.
    pub async fn delete(&self, key: &str) -> Result<bool, Error> {
        let n = self.invalidate("", &Pattern::Exact(key.to_owned())).await?;
        Ok(n > 0)
    }

    /// Deletes every key under a prefix: `"sets:user:42:*"` deletes all keys
    /// starting with `sets:user:42:`. Only a trailing `*` is a wildcard; every
    /// other character, `?` and `[` included, is literal. Without a trailing
    /// `*` this deletes the one exact key. Returns how many keys went.
    ///
    /// On Redis this is `SCAN` + `UNLINK` in batches, never `KEYS`.
    ///
    /// # Errors
    /// A backend failure or timeout (keys already unlinked stay deleted);
    /// what did not land is queued and replayed, as for [`Cache::delete`].
    pub async fn delete_pattern(&self, pattern: &str) -> Result<u64, Error> {
        self.invalidate("", &Pattern::parse(pattern)).await
    }

    /// Invalidates every entry carrying `tag` (by
    /// [`EntryOptions::tags`](crate::EntryOptions::tags) or
    /// `#[cached(tags = […])]`): one deletion, however many entries carry it.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), cachemacro_runtime::Error> {
    /// use std::time::Duration;
    /// use cachemacro_runtime::{Cache, EntryOptions};
    ///
    /// let cache = Cache::memory();
    /// let options = EntryOptions::new(Duration::from_secs(60)).tags(["catalog"]);
    /// let page: Result<String, String> =
    ///     cache.get_or_load("page:/shoes", &options, || async { Ok("<html>".to_string()) }).await;
    /// cache.invalidate_tag("catalog").await?; // every page tagged `catalog` is now a miss
    /// # assert_eq!(page.unwrap(), "<html>");
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// A backend failure or timeout; the invalidation is queued and replayed
    /// (and the cache bypassed) until it lands, as for `#[invalidates]`.
    pub async fn invalidate_tag(&self, tag: &str) -> Result<(), Error> {
        self.invalidate("", &Pattern::Tag(tag.to_owned()))
            .await
            .map(drop)
    }

    /// Deletes one exact key, prefix or tag, counting the invalidation (or
    /// its failure) for `family`. A failure is also logged at warn and
    /// queued for replay, as for generated invalidations, and returned.
    ///
    /// Runs in a `cachemacro.invalidate` span at debug level, with
    /// `family` (`""` for the manual API), `target` (`key`, `prefix` or
    /// `tag`: never the key itself) and `outcome` (`ok`, or `failed`:
    /// queued for replay).
    pub(crate) async fn invalidate(&self, family: &str, pattern: &Pattern) -> Result<u64, Error> {
        let span = tracing::debug_span!(
            "cachemacro.invalidate",
            family,
            target = match pattern {
                Pattern::Exact(_) => "key",
                Pattern::Prefix(_) | Pattern::TagPrefix(_) => "prefix",
                Pattern::Tag(_) => "tag",
            },
            outcome = tracing::field::Empty,
        );
        let result = self
            .invalidate_in(family, pattern)
            .instrument(span.clone())
            .await;
        span.record("outcome", if result.is_ok() { "ok" } else { "failed" });
        result
    }

    async fn invalidate_in(&self, family: &str, pattern: &Pattern) -> Result<u64, Error> {
        let rec = self.invalidation_recorder(family);
        let target = self.target(pattern);
        let mut unfinished = super::handle::Unfinished {
            cache: self,
            targets: Some(vec![target.clone()]),
        };
        let result = self.delete_targets(std::slice::from_ref(&target)).await;
        unfinished.targets = None;
        rec.record_invalidation(result.is_ok());
        result.map_err(|(e, _)| {
            tracing::warn!(target = ?target, error = %e, backend = %self.describe(),
                "cache delete failed; queued for replay, and this cache is bypassed until it lands");
            e
        })
    }
}
