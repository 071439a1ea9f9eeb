//! What a load's output leaves in the cache: which outputs are stored, for
//! how long, and how a stored value becomes an output again.
//!
//! ## Behavior
//!
//! * `T`: every value is stored (that `cache_if`/`unless` accept).
//! * `Result<T, E>`: `Ok` is stored; an `Err` passes through, unstored, and
//!   is what fail-safe may replace.
//! * `Option<T>`, and `Ok(None)` of a `Result<Option<T>, E>`: a `None` is
//!   stored only with `none_ttl`, for that long, so a row created after a
//!   404 is not hidden for the whole TTL.

use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use super::options::EntryOptions;
use crate::codec::Cacheable;
use crate::error::LoadTimeout;

/// What a cached call stores of its output `O`.
pub trait Policy<O> {
    /// The stored type: `T` of `T`, `Result<T, E>`; `Option<T>` of `Option<T>`.
    type Stored: Cacheable;
    /// How a stored value is kept as a value in memory, when it can be.
    fn typed(&self) -> Option<Typed<Self::Stored>>;
    /// The value to store and its TTL, if this output is stored.
    fn store_as<'a>(
        &self,
        options: &EntryOptions,
        out: &'a O,
    ) -> Option<(&'a Self::Stored, Duration)>;
    /// The output a stored value stands for.
    fn unstore(&self, value: Self::Stored) -> O;
    /// Whether the output is a failure (an `Err`): fail-safe may replace it.
    fn failed(&self, out: &O) -> bool;
    /// How the caller answers a load given up at its hard timeout.
    type Timeout: Copy;
    /// Whether the caller can answer a load given up at its hard timeout.
    fn on_timeout(&self) -> Option<Self::Timeout>;
    /// The output for a load given up at its hard timeout.
    fn timed_out(&self, how: Self::Timeout, timeout: LoadTimeout) -> O;
}

/// A stored value's TTL: `None`s only with `none_ttl`.
fn ttl_of<T: Serialize>(options: &EntryOptions, value: &T) -> Option<Duration> {
    if is_none(value) {
        options.none_ttl
    } else {
        Some(options.ttl)
    }
}

/// A value shared as itself rather than as bytes.
pub type Shared = Arc<dyn Any + Send + Sync>;

/// How a value of a `Clone + Send + Sync` type is kept in the memory store
/// as a value (an `Arc`) and handed out by cloning, instead of being
/// encoded and decoded: a memory hit is then a lookup and a clone.
pub struct Typed<T> {
    clone: fn(&T) -> T,
    share: fn(&T) -> Shared,
}

impl<T> Clone for Typed<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Typed<T> {}

impl<T: Clone + Send + Sync + 'static> Typed<T> {
    /// The typed path of `T`.
    pub fn new() -> Self {
        Typed {
            clone: T::clone,
            share: |value| Arc::new(value.clone()),
        }
    }
}

impl<T: Clone + Send + Sync + 'static> Default for Typed<T> {
    fn default() -> Self {
        Typed::new()
    }
}

impl<T: 'static> Typed<T> {
    /// The value as the memory store keeps it.
    pub(crate) fn share(&self, value: &T) -> Shared {
        (self.share)(value)
    }

    /// A value kept by the memory store, cloned out, if it is a `T`.
    pub(crate) fn take(&self, shared: &Shared) -> Option<T> {
        shared.downcast_ref::<T>().map(self.clone)
    }
}

/// A plain `T`: every value is stored (that `keep` accepts).
pub struct Plain<K, T> {
    /// Which values are stored (`cache_if`/`unless`).
    pub keep: K,
    /// The memory store's typed path, for `Clone` types.
    pub typed: Option<Typed<T>>,
}

impl<K: Clone, T> Clone for Plain<K, T> {
    fn clone(&self) -> Self {
        Plain {
            keep: self.keep.clone(),
            typed: self.typed,
        }
    }
}

impl<T: Cacheable, K: Fn(&T) -> bool> Policy<T> for Plain<K, T> {
    type Stored = T;

    fn typed(&self) -> Option<Typed<T>> {
        self.typed
    }

    fn store_as<'a>(&self, options: &EntryOptions, out: &'a T) -> Option<(&'a T, Duration)> {
        (self.keep)(out).then_some(())?;
        Some((out, ttl_of(options, out)?))
    }

    fn unstore(&self, value: T) -> T {
        value
    }

    fn failed(&self, _: &T) -> bool {
        false
    }

    type Timeout = Never;

    fn on_timeout(&self) -> Option<Never> {
        None
    }

    fn timed_out(&self, how: Never, _: LoadTimeout) -> T {
        match how {}
    }
}

/// A policy that cannot answer a timeout (only `Result`s can).
#[derive(Debug, Clone, Copy)]
pub enum Never {}

/// `Result<T, E>`: `Ok` values are stored; an `Err` is a failure. With
/// `on_timeout`, a load given up at its hard timeout is that `Err`.
pub struct ResultOf<K, T, E> {
    /// Which `Ok` values are stored (`cache_if`/`unless`).
    pub keep: K,
    /// The `Err` for a load given up at its hard timeout.
    pub on_timeout: Option<fn(LoadTimeout) -> E>,
    /// The memory store's typed path, for `Clone` types.
    pub typed: Option<Typed<T>>,
}

impl<K: Clone, T, E> Clone for ResultOf<K, T, E> {
    fn clone(&self) -> Self {
        ResultOf {
            keep: self.keep.clone(),
            on_timeout: self.on_timeout,
            typed: self.typed,
        }
    }
}

impl<T: Cacheable, E, K: Fn(&T) -> bool> Policy<Result<T, E>> for ResultOf<K, T, E> {
    type Stored = T;

    fn typed(&self) -> Option<Typed<T>> {
        self.typed
    }

    fn store_as<'a>(
        &self,
        options: &EntryOptions,
        out: &'a Result<T, E>,
    ) -> Option<(&'a T, Duration)> {
        let value = out.as_ref().ok().filter(|v| (self.keep)(v))?;
        Some((value, ttl_of(options, value)?))
    }

    fn unstore(&self, value: T) -> Result<T, E> {
        Ok(value)
    }

    fn failed(&self, out: &Result<T, E>) -> bool {
        out.is_err()
    }

    type Timeout = fn(LoadTimeout) -> E;

    fn on_timeout(&self) -> Option<fn(LoadTimeout) -> E> {
        self.on_timeout
    }

    fn timed_out(&self, how: fn(LoadTimeout) -> E, timeout: LoadTimeout) -> Result<T, E> {
        Err(how(timeout))
    }
}

/// `Option<T>`: `Some` is stored for the TTL; `None` only with `none_ttl`.
pub struct OptionOf<K, T> {
    /// Which `Some` values are stored (`cache_if`/`unless`).
    pub keep: K,
    /// The memory store's typed path, for `Clone` types.
    pub typed: Option<Typed<Option<T>>>,
}

impl<K: Clone, T> Clone for OptionOf<K, T> {
    fn clone(&self) -> Self {
        OptionOf {
            keep: self.keep.clone(),
            typed: self.typed,
        }
    }
}

impl<T: Cacheable, K: Fn(&T) -> bool> Policy<Option<T>> for OptionOf<K, T> {
    type Stored = Option<T>;

    fn typed(&self) -> Option<Typed<Option<T>>> {
        self.typed
    }

    fn store_as<'a>(
        &self,
        options: &EntryOptions,
        out: &'a Option<T>,
    ) -> Option<(&'a Option<T>, Duration)> {
        match out {
            Some(v) => (self.keep)(v).then_some((out, options.ttl)),
            None => options.none_ttl.map(|ttl| (out, ttl)),
        }
    }

    fn unstore(&self, value: Option<T>) -> Option<T> {
        value
    }

    fn failed(&self, _: &Option<T>) -> bool {
        false
    }

    type Timeout = Never;

    fn on_timeout(&self) -> Option<Never> {
        None
    }

    fn timed_out(&self, how: Never, _: LoadTimeout) -> Option<T> {
        match how {}
    }
}

/// Whether `value` is a `None` (serde sees every `Option` the same way, so
/// `Ok(None)` of any `Result<Option<T>, E>` is caught without
/// specialization).
pub(crate) fn is_none<T: Serialize + ?Sized>(value: &T) -> bool {
    value.serialize(NoneProbe).unwrap_or(false)
}

/// A serializer that only answers "was it `None`?".
struct NoneProbe;

#[derive(Debug)]
struct NotNone;

impl std::fmt::Display for NotNone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("not none")
    }
}

impl std::error::Error for NotNone {}

impl serde::ser::Error for NotNone {
    fn custom<M: std::fmt::Display>(_: M) -> Self {
        NotNone
    }
}

macro_rules! not_none {
    ($($method:ident($($arg:ty),*)),* $(,)?) => {
        $(fn $method(self, $(_: $arg),*) -> Result<bool, NotNone> { Ok(false) })*
    };
}

impl serde::Serializer for NoneProbe {
    type Ok = bool;
    type Error = NotNone;
    type SerializeSeq = serde::ser::Impossible<bool, NotNone>;
    type SerializeTuple = serde::ser::Impossible<bool, NotNone>;
    type SerializeTupleStruct = serde::ser::Impossible<bool, NotNone>;
    type SerializeTupleVariant = serde::ser::Impossible<bool, NotNone>;
    type SerializeMap = serde::ser::Impossible<bool, NotNone>;
    type SerializeStruct = serde::ser::Impossible<bool, NotNone>;
    type SerializeStructVariant = serde::ser::Impossible<bool, NotNone>;

    fn serialize_none(self) -> Result<bool, NotNone> {
        Ok(true)
    }

    not_none!(
        serialize_bool(bool),
        serialize_i8(i8),
        serialize_i16(i16),
        serialize_i32(i32),
        serialize_i64(i64),
        serialize_u8(u8),
        serialize_u16(u16),
        serialize_u32(u32),
        serialize_u64(u64),
        serialize_f32(f32),
        serialize_f64(f64),
        serialize_char(char),
        serialize_str(&str),
        serialize_bytes(&[u8]),
        serialize_unit(),
        serialize_unit_struct(&'static str),
        serialize_unit_variant(&'static str, u32, &'static str),
    );

    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<bool, NotNone> {
        Ok(false)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: &T,
    ) -> Result<bool, NotNone> {
        Ok(false)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<bool, NotNone> {
        Ok(false)
    }

    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, NotNone> {
        Err(NotNone)
    }

    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, NotNone> {
        Err(NotNone)
    }

    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, NotNone> {
        Err(NotNone)
    }

    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, NotNone> {
        Err(NotNone)
    }

    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, NotNone> {
        Err(NotNone)
    }

    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeStruct, NotNone> {
        Err(NotNone)
    }

    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, NotNone> {
        Err(NotNone)
    }
}

#[cfg(test)]
mod tests {
    use super::is_none;

    #[test]
    fn only_a_none_is_none() {
        assert!(is_none(&None::<u32>));
        assert!(!is_none(&Some(1)));
        assert!(!is_none(&vec![1, 2]));
        assert!(!is_none(&"text"));
        assert!(!is_none(&()));
        #[derive(serde::Serialize)]
        struct Row {
            id: u32,
        }
        assert!(!is_none(&Row { id: 1 }));
    }
}
