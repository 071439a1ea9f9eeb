//! Storage backends. A closed set, so dispatch is a `match`, not a vtable.
//! Every key reaching a backend already carries the namespace.

pub(crate) mod memory;
pub(crate) mod redis;

use std::time::Duration;

use crate::Error;

pub(crate) enum Backend {
    Memory(memory::MemoryBackend),
    Redis(redis::RedisBackend),
    /// A misconfigured process default: every operation fails, so every
    /// cached function runs its body (correct, uncached, loud in the logs).
    Unavailable(String),
}

macro_rules! dispatch {
    ($self:ident . $method:ident ( $($arg:expr),* )) => {
        match $self {
            Backend::Memory(b) => Ok(b.$method($($arg),*).await),
            Backend::Redis(b) => b.$method($($arg),*).await,
            Backend::Unavailable(why) => Err(Error::Unavailable(why.clone())),
        }
    };
}

impl Backend {
    pub(crate) async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        dispatch!(self.get(key))
    }

    pub(crate) async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, Error> {
        dispatch!(self.get_many(keys))
    }

    pub(crate) async fn set(&self, key: &str, value: Vec<u8>, ttl: Duration) -> Result<(), Error> {
        dispatch!(self.set(key, value, ttl))
    }

    pub(crate) async fn set_many(
        &self,
        entries: Vec<(String, Vec<u8>)>,
        ttl: Duration,
    ) -> Result<(), Error> {
        dispatch!(self.set_many(entries, ttl))
    }

    pub(crate) async fn set_if_absent(
        &self,
        key: &str,
        value: Vec<u8>,
        ttl: Duration,
    ) -> Result<bool, Error> {
        dispatch!(self.set_if_absent(key, value, ttl))
    }

    pub(crate) async fn delete(&self, keys: &[String]) -> Result<u64, Error> {
        dispatch!(self.delete(keys))
    }

    pub(crate) async fn delete_prefix(&self, prefix: &str) -> Result<u64, Error> {
        dispatch!(self.delete_prefix(prefix))
    }

    pub(crate) async fn incr(
        &self,
        key: &str,
        delta: i64,
        ttl: Option<Duration>,
    ) -> Result<i64, Error> {
        match self {
            Backend::Memory(b) => b.incr(key, delta, ttl).await,
            Backend::Redis(b) => b.incr(key, delta, ttl).await,
            Backend::Unavailable(why) => Err(Error::Unavailable(why.clone())),
        }
    }

    pub(crate) fn describe(&self) -> String {
        match self {
            Backend::Memory(_) => "memory".into(),
            Backend::Redis(b) => b.describe(),
            Backend::Unavailable(why) => format!("unavailable ({why})"),
        }
    }
}
