//! Test support for the cachemacro workspace: the Redis a test runs on
//! (a redis-server of its own, or a Redis Cluster), and the backends and
//! macros that run one behavioural test on each.
//!
//! * [`RedisServer`] (`server.rs`): a redis-server on a free loopback port,
//!   which a test can stop, pause and restart.
//! * [`RedisCluster`] (`cluster.rs`): three primaries with a replica each,
//!   one shared per test binary or one of a test's own to fail over.
//! * [`Backend`], [`Server`] and [`on_every_backend!`] (`backend.rs`).
//! * The keeper (`keeper.rs`) starts every server, so that none outlives
//!   the test binary.
//! * [`Proxy`] (`proxy.rs`): a loopback TCP proxy in front of a server, which
//!   a test can slow down, stall or cut.

mod backend;
mod cluster;
mod keeper;
mod proxy;
mod server;

use std::time::Duration;

pub use backend::{Backend, Raw, Server};
pub use cluster::RedisCluster;
pub use proxy::Proxy;
pub use server::RedisServer;

/// Polls `check` every 50 ms until it holds, for up to 10 s (of real or
/// paused time); panics naming `what` if it never does.
pub async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    for _ in 0..200 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("never happened: {what}");
}
