//! Bodies that `stale` and `timeout` run in a task of their own: `self`
//! (in expressions and in macros), `self::` paths, nested items with their
//! own `self`, `&str`, `mut` and owned parameters, and a `hard_timeout` error.
use std::sync::Arc;

use cachemacro_runtime::{Cache, LoadTimeout, cached};

#[derive(Debug)]
pub enum RepoError {
    Slow(LoadTimeout),
}

impl From<LoadTimeout> for RepoError {
    fn from(t: LoadTimeout) -> Self {
        RepoError::Slow(t)
    }
}

mod names {
    pub fn greet(name: &str) -> String {
        format!("hello {name}")
    }
}

#[derive(Clone)]
pub struct Repo {
    cache: Cache,
    prefix: Arc<str>,
}

impl Repo {
    #[cached(key = "greeting:<name>", ttl = 60, stale = "10m", cache = self.cache)]
    async fn greeting(&self, name: &str) -> String {
        struct Shout;
        impl Shout {
            fn loud(&self, s: String) -> String {
                s.to_uppercase()
            }
        }
        let text = format!("{}{}", self.prefix, self::names::greet(name));
        Shout.loud(text)
    }

    #[cached(key = "count:<n>", ttl = 60, fail_safe = "1h", timeout = "1s", hard_timeout = "5s", cache = self.cache)]
    async fn count(self, mut n: u32, tags: Vec<String>) -> Result<u32, RepoError> {
        n += tags.len() as u32;
        Ok(n + self.prefix.len() as u32)
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let repo = Repo {
        cache: Cache::memory(),
        prefix: Arc::from(">"),
    };
    assert_eq!(repo.greeting("ann").await, ">HELLO ANN");
    assert_eq!(repo.greeting("ann").await, ">HELLO ANN");
    assert_eq!(repo.clone().count(1, vec!["a".into()]).await.unwrap(), 3);
    assert_eq!(repo.cache.stats().hits, 1);
}
