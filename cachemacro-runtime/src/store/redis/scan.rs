//! Prefix deletes: `SCAN … MATCH <escaped prefix>* COUNT 100` and `UNLINK`
//! page by page, never `KEYS`, on the store's second connection.

use redis::AsyncCommands as _;

use super::{RedisStore, SCAN_COUNT};
use crate::Error;
use crate::key::glob_escape;

impl RedisStore {
    /// Deletes every key starting with `prefix`; how many went.
    pub(super) async fn scan_delete(&self, prefix: &str) -> Result<u64, Error> {
        let pattern = format!("{}*", glob_escape(prefix));
        let mut cursor: u64 = 0;
        let mut deleted = 0;
        loop {
            let (next, keys): (u64, Vec<Vec<u8>>) = self
                .run_bulk(|mut c| {
                    let pattern = &pattern;
                    async move {
                        redis::cmd("SCAN")
                            .arg(cursor)
                            .arg("MATCH")
                            .arg(pattern)
                            .arg("COUNT")
                            .arg(SCAN_COUNT)
                            .query_async(&mut c)
                            .await
                    }
                })
                .await?;
            if !keys.is_empty() {
                let n: u64 = self
                    .run_bulk(|mut c| async move { c.unlink(&keys).await })
                    .await?;
                deleted += n;
            }
            if next == 0 {
                return Ok(deleted);
            }
            cursor = next;
        }
    }
}
