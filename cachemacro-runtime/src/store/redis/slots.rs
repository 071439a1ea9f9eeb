//! Batches over many keys: one pipeline on a single node; on a cluster one
//! pipeline per hash slot, all sent at once (redis-rs refuses a pipeline
//! whose keys span slots, and a node refuses a multi-key command that does).

use std::collections::HashMap;

use redis::cluster_routing::Slot;
use redis::{Pipeline, Value};

use super::RedisStore;
use crate::Error;

impl RedisStore {
    /// Writes `each(pipe, item)` for every item, keyed by `key(item)`; each
    /// item's commands must leave `replies` replies (the rest `.ignore()`d).
    /// Returns the replies in item order. Bounded by one operation timeout:
    /// on a cluster the per-slot pipelines run concurrently.
    pub(super) async fn per_slot<T>(
        &self,
        items: &[T],
        key: impl Fn(&T) -> &str,
        replies: usize,
        each: impl Fn(&mut Pipeline, &T),
    ) -> Result<Vec<Value>, Error> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        if self.conn.as_cluster().is_none() {
            let mut pipe = redis::pipe();
            for item in items {
                each(&mut pipe, item);
            }
            let out: Vec<Value> = self
                .run(|mut c| async move { pipe.query_async(&mut c).await })
                .await?;
            return expect_len(out, items.len() * replies);
        }
        let mut groups: HashMap<Slot, (Pipeline, Vec<usize>)> = HashMap::new();
        for (i, item) in items.iter().enumerate() {
            let (pipe, members) = groups
                .entry(Slot::for_key(key(item)))
                .or_insert_with(|| (redis::pipe(), Vec::new()));
            each(pipe, item);
            members.push(i);
        }
        let sent = groups.into_values().map(|(pipe, members)| async move {
            let out: Vec<Value> = self
                .run(|mut c| async move { pipe.query_async(&mut c).await })
                .await?;
            Ok::<_, Error>((members, out))
        });
        let mut ordered = vec![Value::Nil; items.len() * replies];
        for (members, out) in futures_util::future::try_join_all(sent).await? {
            let out = expect_len(out, members.len() * replies)?;
            for (at, value) in out.into_iter().enumerate() {
                ordered[members[at / replies.max(1)] * replies + at % replies.max(1)] = value;
            }
        }
        Ok(ordered)
    }
}

fn expect_len(out: Vec<Value>, len: usize) -> Result<Vec<Value>, Error> {
    if out.len() == len {
        Ok(out)
    } else {
        Err(Error::Backend(
            format!("expected {len} replies from a pipeline, got {}", out.len()).into(),
        ))
    }
}
