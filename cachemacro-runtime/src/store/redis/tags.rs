//! Tag versions: read for a hit, created for a fill.

use std::time::Duration;

use redis::AsyncCommands as _;

use super::{RedisStore, get, scripts, ttl_millis};
use crate::Error;
use crate::store::TagVersion;

/// A stored tag version, if the bytes are one.
pub(super) fn version(raw: Option<Vec<u8>>) -> Option<TagVersion> {
    raw?.as_slice().try_into().ok()
}

impl RedisStore {
    pub(super) async fn tag_versions(
        &self,
        tags: &[String],
    ) -> Result<Vec<Option<TagVersion>>, Error> {
        if tags.is_empty() {
            return Ok(Vec::new());
        }
        let raw = self.batch(tags, |tag| get(tag)).await?;
        Ok(raw
            .into_iter()
            .map(|v| version(redis::from_redis_value(v).ok().flatten()))
            .collect())
    }

    /// Each tag's version, created when absent (`SET NX`, then `GET`); a
    /// value that is not a version (foreign bytes) is replaced.
    pub(super) async fn ensure_versions(
        &self,
        tags: &[String],
        ttl: Duration,
    ) -> Result<Vec<TagVersion>, Error> {
        if tags.is_empty() {
            return Ok(Vec::new());
        }
        let ms = ttl_millis(ttl);
        let raw = self
            .batch(tags, |tag| {
                let mut create = redis::cmd("EVAL");
                create
                    .arg(scripts::TAG_VERSION)
                    .arg(1)
                    .arg(tag)
                    .arg(&rand::random::<TagVersion>()[..])
                    .arg(ms);
                create
            })
            .await?;
        let mut versions = Vec::with_capacity(tags.len());
        for (tag, raw) in tags.iter().zip(raw) {
            let raw: Option<Vec<u8>> = redis::from_redis_value(raw).ok().flatten();
            let current = match version(raw) {
                Some(current) => current,
                None => {
                    let fresh = rand::random::<TagVersion>();
                    self.run(
                        |mut c| async move { c.pset_ex::<_, _, ()>(tag, &fresh[..], ms).await },
                    )
                    .await?;
                    fresh
                }
            };
            versions.push(current);
        }
        Ok(versions)
    }
}
