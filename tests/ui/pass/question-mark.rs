//! `?` with a `From` conversion and an early `return` in the body.
use std::sync::atomic::{AtomicU32, Ordering};

use cachemacro_runtime::{Cache, cached, invalidates};

static LOADS: AtomicU32 = AtomicU32::new(0);

#[derive(Debug, thiserror::Error)]
enum AppError {
    #[error("bad number: {0}")]
    Parse(#[from] std::num::ParseIntError),
    #[error("negative")]
    Negative,
}

#[cached(key = "parsed:<text>", ttl = 60, cache = cache)]
async fn parse(cache: &Cache, text: &str) -> Result<i64, AppError> {
    LOADS.fetch_add(1, Ordering::SeqCst);
    let n: i64 = text.trim().parse()?;
    if n < 0 {
        return Err(AppError::Negative);
    }
    if n == 0 {
        return Ok(0);
    }
    Ok(n * 10)
}

#[invalidates("parsed:<text>", cache = cache)]
async fn forget(cache: &Cache, text: &str) -> Result<(), AppError> {
    let _: i64 = text.trim().parse()?;
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let cache = Cache::memory();
    assert_eq!(parse(&cache, "4").await.unwrap(), 40);
    assert_eq!(parse(&cache, "4").await.unwrap(), 40);
    assert_eq!(parse(&cache, "0").await.unwrap(), 0);
    assert!(matches!(parse(&cache, "x").await, Err(AppError::Parse(_))));
    assert!(matches!(parse(&cache, "-1").await, Err(AppError::Negative)));
    assert_eq!(LOADS.load(Ordering::SeqCst), 4);
    // An `Err` from the body does not invalidate.
    assert!(forget(&cache, "x").await.is_err());
    forget(&cache, "4").await.unwrap();
    assert_eq!(parse(&cache, "4").await.unwrap(), 40);
    assert_eq!(LOADS.load(Ordering::SeqCst), 5);
}
