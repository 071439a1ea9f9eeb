//! Batches over many keys, one command per key: one pipeline on a single
//! node; on a cluster each command on its own, all sent at once over the
//! multiplexed connections. Not a pipeline per slot: a pipeline holding two
//! keyed commands cannot follow a slot migration's `ASK` (redis-rs sends
//! one `ASKING`, which covers the first command only).

use redis::{Cmd, Value};

use super::RedisStore;
use crate::Error;

impl RedisStore {
    /// Sends `command(item)` (a command on one key) for every item; the
    /// replies in item order. Bounded by one operation timeout.
    pub(super) async fn batch<T>(
        &self,
        items: &[T],
        command: impl Fn(&T) -> Cmd,
    ) -> Result<Vec<Value>, Error> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        if self.conn.as_cluster().is_none() {
            let mut pipe = redis::pipe();
            for item in items {
                pipe.add_command(command(item));
            }
            let out: Vec<Value> = self
                .run(|mut c| async move { pipe.query_async(&mut c).await })
                .await?;
            if out.len() != items.len() {
                return Err(Error::Backend(
                    format!(
                        "expected {} replies from a pipeline, got {}",
                        items.len(),
                        out.len()
                    )
                    .into(),
                ));
            }
            return Ok(out);
        }
        let sent = items.iter().map(|item| {
            let cmd = command(item);
            self.run(|mut c| async move { cmd.query_async::<Value>(&mut c).await })
        });
        futures_util::future::try_join_all(sent).await
    }
}
