//! One process of the cross-process stampede test (`tests/lock.rs`):
//! `lock_child <redis url> <lock|nolock>`. Waits for the parent's go signal
//! (`BLPOP go`), calls a cold cached function, counts its body runs in Redis
//! (`INCR runs`) and prints the value and its lock waits.

use std::time::Duration;

use cachemacro_runtime::{Cache, cached};

#[cached(key = "report:locked", ttl = "10m", lock = true, cache = cache)]
async fn locked(cache: &Cache, raw: &redis::Client) -> u64 {
    slow_body(raw).await
}

#[cached(key = "report:unlocked", ttl = "10m", cache = cache)]
async fn unlocked(cache: &Cache, raw: &redis::Client) -> u64 {
    slow_body(raw).await
}

/// A slow query: long enough that the other processes arrive during it.
async fn slow_body(raw: &redis::Client) -> u64 {
    let mut conn = raw
        .get_multiplexed_async_connection()
        .await
        .expect("raw connection");
    let _: u64 = redis::cmd("INCR")
        .arg("runs")
        .query_async(&mut conn)
        .await
        .expect("INCR");
    tokio::time::sleep(Duration::from_millis(300)).await;
    42
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let (url, mode) = (args.next().expect("url"), args.next().expect("mode"));
    let cache = Cache::builder()
        .url(&url)
        .lock_wait(Duration::from_secs(5))
        .connect()
        .await
        .expect("cache");
    let raw = redis::Client::open(url).expect("url");
    let mut conn = raw
        .get_multiplexed_async_connection()
        .await
        .expect("raw connection");
    let _: (String, String) = redis::cmd("BLPOP")
        .arg("go")
        .arg(30)
        .query_async(&mut conn)
        .await
        .expect("go signal");
    let value = if mode == "lock" {
        locked(&cache, &raw).await
    } else {
        unlocked(&cache, &raw).await
    };
    println!("{value} {}", cache.stats().lock_waits);
}
