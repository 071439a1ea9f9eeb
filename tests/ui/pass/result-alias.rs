//! `Result` through a path and through aliases with one type argument
//! (`io::Result<T>`, a crate's own `Result<T>`): only `Ok` is stored.
use std::io;
use std::sync::atomic::{AtomicU32, Ordering};

use cachemacro_runtime::{Cache, cached};

static LOADS: AtomicU32 = AtomicU32::new(0);

#[derive(Debug, thiserror::Error)]
#[error("app error")]
struct AppError;

mod app {
    /// The usual crate-level alias.
    pub type Result<T> = std::result::Result<T, super::AppError>;
}

#[cached(key = "io:<id>", ttl = 60, cache = cache)]
async fn read(cache: &Cache, id: u64) -> io::Result<String> {
    LOADS.fetch_add(1, Ordering::SeqCst);
    if id == 0 {
        return Err(io::Error::other("no zero"));
    }
    Ok(format!("file {id}"))
}

#[cached(key = "app:<id>", ttl = 60, cache = cache)]
async fn app(cache: &Cache, id: u64) -> app::Result<u64> {
    LOADS.fetch_add(1, Ordering::SeqCst);
    if id == 0 { Err(AppError) } else { Ok(id * 2) }
}

#[cached(key = "std:<id>", ttl = 60, cache = cache)]
async fn full_path(cache: &Cache, id: u64) -> std::result::Result<u64, AppError> {
    LOADS.fetch_add(1, Ordering::SeqCst);
    Ok(id)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let cache = Cache::memory();
    assert_eq!(read(&cache, 1).await.unwrap(), "file 1");
    assert_eq!(read(&cache, 1).await.unwrap(), "file 1");
    assert!(read(&cache, 0).await.is_err());
    assert_eq!(app(&cache, 2).await.unwrap(), 4);
    assert_eq!(app(&cache, 2).await.unwrap(), 4);
    assert!(app(&cache, 0).await.is_err());
    assert_eq!(full_path(&cache, 3).await.unwrap(), 3);
    assert_eq!(full_path(&cache, 3).await.unwrap(), 3);
    assert_eq!(LOADS.load(Ordering::SeqCst), 5);
}
