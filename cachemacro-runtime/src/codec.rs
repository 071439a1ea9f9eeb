//! Codecs: how a value becomes bytes and back. The envelope around those
//! bytes is the storage protocol's (`store/protocol.rs`).
//!
//! ## Behavior
//!
//! Every stored value carries its codec's id and a fingerprint of its type.
//! The fingerprint hashes the *shape* of the Rust type as serde sees it
//! (field names, field types, enum variants, traced with `serde-reflection`),
//! so after a deploy that adds, removes, renames or retypes a field, old
//! entries read as a miss instead of as garbage. Bytes that carry another
//! codec or fingerprint, fail to decode, or leave trailing bytes are a miss
//! ([`Decoded::Mismatch`]); decoding never panics. Types whose shape cannot
//! be traced (those that need `deserialize_any`, such as
//! `serde_json::Value`) fall back to a fingerprint of their type name.

use std::any::TypeId;
use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{LazyLock, RwLock};

use serde::Serialize;
use serde::de::DeserializeOwned;

/// A boxed error from a codec.
pub type CodecError = Box<dyn std::error::Error + Send + Sync>;

/// Turns values into bytes and back. Pick one per function with
/// `#[cached(codec = MyCodec, …)]`; [`Bincode`] is the default.
///
/// ```
/// use cachemacro_runtime::{Codec, CodecError};
///
/// /// Human-readable entries, handy when reading Redis with redis-cli.
/// struct Json;
///
/// impl Codec for Json {
///     const ID: u8 = 200;
///     fn encode<T: serde::Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CodecError> {
///         serde_json::to_vec(value).map_err(Into::into)
///     }
///     fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
///         serde_json::from_slice(bytes).map_err(Into::into)
///     }
/// }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a cache codec",
    label = "`codec = …` names a type implementing `cachemacro_runtime::Codec`",
    note = "implement `cachemacro_runtime::Codec` for it, or drop `codec = …` to use bincode"
)]
pub trait Codec: 'static {
    /// Stored in every entry so that bytes written by one codec are never
    /// read by another. Ids below 128 are reserved for this crate.
    const ID: u8;
    /// Encodes a value.
    fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CodecError>;
    /// Decodes a value; must fail (not panic) on bytes it did not produce.
    fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError>;
}

/// The default codec: bincode 2 with its standard (varint) configuration.
/// Compact and fast; requires types whose serde impls do not depend on a
/// self-describing format (no `#[serde(flatten)]`, `untagged`,
/// `skip_serializing_if`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Bincode;

impl Codec for Bincode {
    const ID: u8 = 1;

    fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CodecError> {
        Ok(bincode::serde::encode_to_vec(
            value,
            bincode::config::standard(),
        )?)
    }

    fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
        let (value, read) = bincode::serde::decode_from_slice(bytes, bincode::config::standard())?;
        if read != bytes.len() {
            return Err(format!("{} trailing bytes", bytes.len() - read).into());
        }
        Ok(value)
    }
}

/// A type that can be stored in the cache: serde both ways and `'static`
/// (its fingerprint is memoised by `TypeId`).
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be stored in the cache",
    label = "the cached value must implement `Serialize` and `DeserializeOwned`",
    note = "derive `serde::Serialize` and `serde::Deserialize` for it (for `Result<T, E>` only `T` is stored, for `Option<T>` only `T`)"
)]
pub trait Cacheable: Serialize + DeserializeOwned + 'static {}

impl<T: Serialize + DeserializeOwned + 'static> Cacheable for T {}

/// Why stored bytes were not returned as a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mismatch {
    /// Not an entry of this crate (or truncated before the payload).
    Foreign,
    /// Written by another codec.
    OtherCodec,
    /// Written for a type of another shape (a changed struct after a deploy).
    OtherType,
    /// Header matched but the payload did not decode.
    Corrupt(String),
}

/// The outcome of reading stored bytes.
#[derive(Debug)]
pub enum Decoded<T> {
    /// The value.
    Value(T),
    /// The bytes are not a value of this type: treat as a miss.
    Mismatch(Mismatch),
}

/// Decodes an entry's payload, written by codec `codec` for a type of
/// shape `fingerprint`; never panics.
pub(crate) fn decode_payload<C: Codec, T: Cacheable>(
    codec: u8,
    fingerprint: u64,
    payload: &[u8],
) -> Decoded<T> {
    if codec != C::ID {
        return Decoded::Mismatch(Mismatch::OtherCodec);
    }
    if fingerprint != self::fingerprint::<T>() {
        return Decoded::Mismatch(Mismatch::OtherType);
    }
    // A user's Deserialize impl may panic on bytes it never expected.
    match catch_unwind(AssertUnwindSafe(|| C::decode::<T>(payload))) {
        Ok(Ok(value)) => Decoded::Value(value),
        Ok(Err(e)) => Decoded::Mismatch(Mismatch::Corrupt(e.to_string())),
        Err(_) => Decoded::Mismatch(Mismatch::Corrupt("the decoder panicked".into())),
    }
}

static FINGERPRINTS: LazyLock<RwLock<HashMap<TypeId, u64>>> = LazyLock::new(Default::default);

/// A stable hash of `T`'s serde shape, computed once per type.
pub fn fingerprint<T: Cacheable>() -> u64 {
    let id = TypeId::of::<T>();
    if let Some(fp) = FINGERPRINTS
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .get(&id)
    {
        return *fp;
    }
    let fp = trace_fingerprint::<T>();
    FINGERPRINTS
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .insert(id, fp);
    fp
}

fn trace_fingerprint<T: Cacheable>() -> u64 {
    let traced = catch_unwind(|| {
        let mut tracer = serde_reflection::Tracer::new(serde_reflection::TracerConfig::default());
        let (format, _) = tracer.trace_simple_type::<T>().ok()?;
        let registry = tracer.registry().ok()?;
        bincode::serde::encode_to_vec((&format, &registry), bincode::config::standard()).ok()
    });
    match traced {
        Ok(Some(shape)) => xxhash_rust::xxh3::xxh3_64(&shape),
        _ => xxhash_rust::xxh3::xxh3_64_with_seed(std::any::type_name::<T>().as_bytes(), 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::protocol::{Meta, decode, encode};
    use serde::{Deserialize, Serialize};

    mod v1 {
        #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
        pub struct User {
            pub id: u64,
            pub name: String,
        }
    }
    mod v2 {
        #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
        pub struct User {
            pub id: u64,
            pub name: String,
            pub email: Option<String>,
        }
    }
    mod v3 {
        /// Same field types, swapped: bincode alone would decode garbage.
        #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
        pub struct Pair {
            pub b: u32,
            pub a: u32,
        }
    }
    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Pair {
        a: u32,
        b: u32,
    }

    #[test]
    fn round_trip() {
        let user = v1::User {
            id: 7,
            name: "ann".into(),
        };
        let bytes = encode::<Bincode, _>(&user, &[], Meta::default()).unwrap();
        match decode::<Bincode, v1::User>(&bytes) {
            Decoded::Value(v) => assert_eq!(v, user),
            Decoded::Mismatch(m) => panic!("mismatch {m:?}"),
        }
    }

    #[test]
    fn changed_struct_is_a_mismatch() {
        let bytes = encode::<Bincode, _>(
            &v1::User {
                id: 7,
                name: "ann".into(),
            },
            &[],
            Meta::default(),
        )
        .unwrap();
        assert!(matches!(
            decode::<Bincode, v2::User>(&bytes),
            Decoded::Mismatch(Mismatch::OtherType)
        ));
        let bytes = encode::<Bincode, _>(&Pair { a: 1, b: 2 }, &[], Meta::default()).unwrap();
        assert!(matches!(
            decode::<Bincode, v3::Pair>(&bytes),
            Decoded::Mismatch(Mismatch::OtherType)
        ));
    }

    #[test]
    fn untraceable_types_still_get_a_fingerprint() {
        struct Any;
        impl Serialize for Any {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_unit()
            }
        }
        impl<'de> Deserialize<'de> for Any {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_any(serde::de::IgnoredAny).map(|_| Any)
            }
        }
        assert_eq!(fingerprint::<Any>(), fingerprint::<Any>());
        assert_ne!(fingerprint::<Any>(), fingerprint::<()>());
    }
}
