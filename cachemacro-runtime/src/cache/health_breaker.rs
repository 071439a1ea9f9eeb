//! [`Cache::breaker_health`]: a snapshot of the circuit breaker in front
//! of the cache's Redis.

use super::handle::Cache;
use crate::BreakerHealth;

impl Cache {
    /// The state of the circuit breaker in front of Redis: closed, open or
    /// half-open, failures in a row, times opened, and the last error with
    /// what it says about the setup. `None` for a cache without a breaker
    /// (in memory, or [`CacheBuilder::breaker`](crate::CacheBuilder::breaker)
    /// with a threshold of 0).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use cachemacro_runtime::Cache;
    ///
    /// let cache = Cache::builder().url("redis://127.0.0.1:1").build().unwrap();
    /// let health = cache.breaker_health().expect("a Redis cache has a breaker");
    /// println!("{}", serde_json::to_string(&health).unwrap());
    /// # }
    /// ```
    pub fn breaker_health(&self) -> Option<BreakerHealth> {
        self.store().breaker()
    }
}
