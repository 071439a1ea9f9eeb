//! A misconfigured process default: every operation fails, so every cached
//! function runs its body (correct, uncached, loud in the logs).

use std::sync::Arc;
use std::time::Duration;

use super::{
    Acquire, BoxFuture, Claim, EntryId, Expect, Found, Store, TagVersion, Token, Versioned,
};
use crate::Error;

pub(crate) struct Unavailable(pub(crate) String);

impl Unavailable {
    fn fail<'a, T: Send + 'a>(&self) -> BoxFuture<'a, Result<T, Error>> {
        let why = self.0.clone();
        Box::pin(async move { Err(Error::Unavailable(why)) })
    }
}

impl Store for Unavailable {
    fn describe(&self) -> String {
        format!("unavailable ({})", self.0)
    }

    fn ping(&self, _: Duration) -> BoxFuture<'_, Result<(), Error>> {
        self.fail()
    }

    fn read<'a>(
        &'a self,
        _: &'a str,
        _: &'a [String],
        _: f64,
    ) -> BoxFuture<'a, Result<Versioned, Error>> {
        self.fail()
    }

    fn read_many<'a>(&'a self, _: &'a [String]) -> BoxFuture<'a, Result<Vec<Found>, Error>> {
        self.fail()
    }

    fn versions<'a>(
        &'a self,
        _: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Option<TagVersion>>, Error>> {
        self.fail()
    }

    fn acquire<'a>(
        &'a self,
        _: &'a str,
        _: Expect,
        _: Token,
        _: Duration,
        _: &'a [String],
        _: Duration,
    ) -> BoxFuture<'a, Result<(Acquire, Vec<TagVersion>), Error>> {
        self.fail()
    }

    fn lock<'a>(
        &'a self,
        _: &'a str,
        _: EntryId,
        _: Token,
        _: Duration,
    ) -> BoxFuture<'a, Result<bool, Error>> {
        self.fail()
    }

    fn store<'a>(
        &'a self,
        _: &'a str,
        _: Claim,
        _: Arc<Vec<u8>>,
        _: Option<crate::engine::Shared>,
        _: &'a [String],
        _: Duration,
    ) -> BoxFuture<'a, Result<bool, Error>> {
        self.fail()
    }

    fn release<'a>(&'a self, _: &'a str, _: Token) -> BoxFuture<'a, Result<(), Error>> {
        self.fail()
    }

    fn set_many(&self, _: Vec<(String, Vec<u8>)>, _: Duration) -> BoxFuture<'_, Result<(), Error>> {
        self.fail()
    }

    fn set_if_absent<'a>(
        &'a self,
        _: &'a str,
        _: Vec<u8>,
        _: Duration,
    ) -> BoxFuture<'a, Result<bool, Error>> {
        self.fail()
    }

    fn delete<'a>(&'a self, _: &'a [String]) -> BoxFuture<'a, Result<u64, Error>> {
        self.fail()
    }

    fn delete_prefix<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<u64, Error>> {
        self.fail()
    }

    fn incr<'a>(
        &'a self,
        _: &'a str,
        _: i64,
        _: Option<Duration>,
    ) -> BoxFuture<'a, Result<i64, Error>> {
        self.fail()
    }
}
