//! The workload the benches share: a user's collections (4 `Collection`s,
//! 217 bytes of bincode), 64 hot user ids, and the timing helpers. Each
//! bench includes this file (`#[path]`), using what it needs.
#![allow(dead_code)] // not every bench uses every helper

use std::hint::black_box;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// A typical small cached value: a user's collections.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Collection {
    pub id: u64,
    pub name: String,
    pub image_ids: Vec<u64>,
}

/// The function body: cheap on purpose, so the cache's own cost shows.
pub fn body(user_id: u64) -> Vec<Collection> {
    (0..4)
        .map(|i| Collection {
            id: user_id * 10 + i,
            name: format!("collection {i} of user {user_id}"),
            image_ids: (0..8).map(|n| 1_000 + n * i).collect(),
        })
        .collect()
}

/// The hot keys: user ids 1000..1064.
pub const HOT: u64 = 64;
pub const FIRST_USER: u64 = 1_000;

pub fn user(i: u64) -> u64 {
    FIRST_USER + i % HOT
}

/// `iters` calls of `op`, cycling the hot keys; the wall time they took.
pub async fn time_calls<T>(iters: u64, mut op: impl AsyncFnMut(u64) -> T) -> Duration {
    let start = Instant::now();
    for i in 0..iters {
        black_box(op(black_box(user(i))).await);
    }
    start.elapsed()
}

pub fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}
