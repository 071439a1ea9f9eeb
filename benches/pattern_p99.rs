//! Does a large prefix delete hurt everyone else? Measures the latency of
//! concurrent reads (p50, p99, max) against Redis while nothing else runs,
//! then while `delete_pattern` clears 100 000 keys (`SCAN` + `UNLINK` in
//! pages). Reports both and their ratio; the target is a p99 within 2x.
//!
//! The readers are paced (8 readers, one read per millisecond each: 8 000
//! reads/s), a busy service's load rather than a saturated Redis: on this
//! 2-core machine unpaced loops saturate Redis and the client alike, and
//! then any other work at all shows in the p99.
//!
//! `cargo bench --bench pattern_p99`. Bounded: each phase lasts at most a
//! few seconds and every loop stops by itself.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};

use cachemacro_runtime::Cache;
use cachemacro_tests::RedisServer;

const DOOMED: usize = 100_000;
const READERS: usize = 8;
const BASELINE: Duration = Duration::from_secs(3);

/// Readers loop on `get` until `stop`, returning every latency seen.
async fn read_until(cache: &Cache, stop: Arc<AtomicBool>) -> Vec<Duration> {
    let tasks: Vec<_> = (0..READERS)
        .map(|r| {
            let (cache, stop) = (cache.clone(), stop.clone());
            tokio::spawn(async move {
                let mut seen = Vec::new();
                let mut i = r;
                let mut tick = tokio::time::interval(Duration::from_millis(1));
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                while !stop.load(Relaxed) && seen.len() < 2_000_000 {
                    tick.tick().await;
                    let start = Instant::now();
                    let _ = cache.get::<u64>(&format!("hot:{}", i % 1_000)).await;
                    seen.push(start.elapsed());
                    i += 1;
                }
                seen
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort();
    all
}

fn quantile(sorted: &[Duration], q: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * q) as usize]
}

fn report(label: &str, sorted: &[Duration]) -> Duration {
    let p99 = quantile(sorted, 0.99);
    println!(
        "{label:<28} reads {:>8}  p50 {:>9.1?}  p99 {:>9.1?}  max {:>9.1?}",
        sorted.len(),
        quantile(sorted, 0.50),
        p99,
        sorted[sorted.len() - 1]
    );
    p99
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let Some(server) = RedisServer::start() else {
        println!("pattern_p99: skipped, no redis-server could be started");
        return;
    };
    rt.block_on(async {
        let cache = Cache::builder()
            .url(server.url())
            .operation_timeout(Duration::from_secs(2))
            .connect()
            .await
            .unwrap();
        let hot: Vec<(String, u64)> = (0..1_000).map(|i| (format!("hot:{i}"), i)).collect();
        let entries: Vec<(&str, &u64)> = hot.iter().map(|(k, v)| (k.as_str(), v)).collect();
        cache
            .set_many(&entries, Duration::from_secs(3600))
            .await
            .unwrap();
        let doomed: Vec<String> = (0..DOOMED)
            .map(|i| format!("explore:q=cats:page={i}"))
            .collect();
        for chunk in doomed.chunks(10_000) {
            let batch: Vec<(&str, &u64)> = chunk.iter().map(|k| (k.as_str(), &7)).collect();
            cache
                .set_many(&batch, Duration::from_secs(3600))
                .await
                .unwrap();
        }

        let stop = Arc::new(AtomicBool::new(false));
        let readers = tokio::spawn({
            let (cache, stop) = (cache.clone(), stop.clone());
            async move { read_until(&cache, stop).await }
        });
        tokio::time::sleep(BASELINE).await;
        stop.store(true, Relaxed);
        let baseline = readers.await.unwrap();

        let stop = Arc::new(AtomicBool::new(false));
        let readers = tokio::spawn({
            let (cache, stop) = (cache.clone(), stop.clone());
            async move { read_until(&cache, stop).await }
        });
        let start = Instant::now();
        let deleted = cache.delete_pattern("explore:q=cats:*").await.unwrap();
        let took = start.elapsed();
        stop.store(true, Relaxed);
        let during = readers.await.unwrap();
        assert_eq!(deleted, DOOMED as u64);

        println!("prefix delete of {deleted} keys took {took:.1?}");
        let before = report("reads, nothing else running", &baseline);
        let after = report("reads during the delete", &during);
        println!(
            "p99 ratio: {:.2}x (target: within 2x)",
            after.as_secs_f64() / before.as_secs_f64()
        );
    });
}
