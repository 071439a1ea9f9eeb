//! Codecs and the entry envelope: how a value becomes stored bytes and back.
//!
//! ## Behavior
//!
//! Every stored value is framed as
//! `[magic 0xCA 0xCE][format version][codec id][type fingerprint: u64 LE]`
//! `[load time µs: u32 LE][grace ms: u64 LE][entry id: 8 bytes][tags…][payload]`.
//! The load time drives early refresh, the grace is how long the entry is
//! kept past its freshness (for `stale` and `fail_safe`), and the random id
//! lets a refresh store only over the very entry it refreshed.
//! The fingerprint hashes the *shape* of the Rust type as serde sees it
//! (field names, field types, enum variants, traced with `serde-reflection`),
//! so after a deploy that adds, removes, renames or retypes a field, old
//! entries read as a miss instead of as garbage. Bytes that are too short,
//! carry another magic, codec or fingerprint, fail to decode, or leave
//! trailing bytes are a miss ([`Decoded::Mismatch`]); decoding never panics.
//! Types whose shape cannot be traced (those that need `deserialize_any`,
//! such as `serde_json::Value`) fall back to a fingerprint of their type name.

use std::any::TypeId;
use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{LazyLock, RwLock};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Error;

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

const MAGIC: [u8; 2] = [0xCA, 0xCE];
const FORMAT_VERSION: u8 = 3;
/// Where the load time, grace and entry id sit (the Redis scripts read them there).
const LOAD_AT: usize = 12;
const GRACE_AT: usize = 16;
const ID_AT: usize = 24;
/// Magic, version, codec, fingerprint, load time, grace, id, tag count.
const FIXED_LEN: usize = ID_AT + ID_LEN + 1;
/// Bytes of one tag version.
pub(crate) const VERSION_LEN: usize = 8;
const ID_LEN: usize = 8;

/// A tag's version: random bytes, replaced (deleted) on invalidation.
pub(crate) type TagVersion = [u8; VERSION_LEN];

/// Names one stored entry: fresh random bytes on every write.
pub(crate) type EntryId = [u8; ID_LEN];

/// What an entry records besides its value and tags.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Meta {
    /// How long the load that produced it took (XFetch's Δ).
    pub(crate) load: std::time::Duration,
    /// How long it is kept past its freshness: its physical TTL is the
    /// fresh TTL plus this.
    pub(crate) grace: std::time::Duration,
}

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

/// The parts of a stored entry, borrowed from its bytes.
pub(crate) struct Entry<'a> {
    pub(crate) codec: u8,
    pub(crate) fingerprint: u64,
    pub(crate) meta: Meta,
    pub(crate) id: EntryId,
    /// Each tag's full key and the version it had when the fill began.
    pub(crate) tags: Vec<(&'a [u8], &'a [u8])>,
    pub(crate) payload: &'a [u8],
}

/// Splits stored bytes into their parts; `None` for anything else.
///
/// Layout: `[CA CE][version][codec][fingerprint u64 LE][load µs u32 LE]`
/// `[grace ms u64 LE][id: 8 bytes][tag count u8]`, then per tag
/// `[key length u16 BE][key][version: 8 bytes]`, then the payload. The Redis
/// scripts parse the same layout (`backend/redis.rs`).
pub(crate) fn parse_entry(bytes: &[u8]) -> Option<Entry<'_>> {
    if bytes.len() < FIXED_LEN || bytes[..2] != MAGIC || bytes[2] != FORMAT_VERSION {
        return None;
    }
    let fingerprint = u64::from_le_bytes(bytes[4..LOAD_AT].try_into().ok()?);
    let load = u32::from_le_bytes(bytes[LOAD_AT..GRACE_AT].try_into().ok()?);
    let grace = u64::from_le_bytes(bytes[GRACE_AT..ID_AT].try_into().ok()?);
    let id = bytes[ID_AT..ID_AT + ID_LEN].try_into().ok()?;
    let count = bytes[FIXED_LEN - 1];
    let mut rest = &bytes[FIXED_LEN..];
    let mut tags = Vec::with_capacity(usize::from(count));
    for _ in 0..count {
        let len = usize::from(u16::from_be_bytes(rest.get(..2)?.try_into().ok()?));
        let key = rest.get(2..2 + len)?;
        let version = rest.get(2 + len..2 + len + VERSION_LEN)?;
        tags.push((key, version));
        rest = &rest[2 + len + VERSION_LEN..];
    }
    Some(Entry {
        codec: bytes[3],
        fingerprint,
        meta: Meta {
            load: std::time::Duration::from_micros(u64::from(load)),
            grace: std::time::Duration::from_millis(grace),
        },
        id,
        tags,
        payload: rest,
    })
}

/// Frames `value` for codec `C`, recording the tags' versions and `meta`,
/// under a fresh entry id.
pub(crate) fn encode_entry<C: Codec, T: Cacheable>(
    value: &T,
    tags: &[(String, TagVersion)],
    meta: Meta,
) -> Result<Vec<u8>, Error> {
    let payload = C::encode(value).map_err(Error::Encode)?;
    let count = u8::try_from(tags.len()).map_err(|_| Error::Encode("more than 255 tags".into()))?;
    let tags_len: usize = tags.iter().map(|(k, _)| 2 + k.len() + VERSION_LEN).sum();
    let mut out = Vec::with_capacity(FIXED_LEN + tags_len + payload.len());
    out.extend_from_slice(&MAGIC);
    out.push(FORMAT_VERSION);
    out.push(C::ID);
    out.extend_from_slice(&fingerprint::<T>().to_le_bytes());
    out.extend_from_slice(&[0; FIXED_LEN - LOAD_AT - 1]);
    write_meta(&mut out, meta);
    out.push(count);
    for (key, version) in tags {
        let len =
            u16::try_from(key.len()).map_err(|_| Error::Encode("tag key over 64 KiB".into()))?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(key.as_bytes());
        out.extend_from_slice(version);
    }
    out.extend_from_slice(&payload);
    Ok(out)
}

/// Writes `meta` and a fresh id into a header (at least `FIXED_LEN - 1` bytes).
fn write_meta(header: &mut [u8], meta: Meta) {
    let load = u32::try_from(meta.load.as_micros()).unwrap_or(u32::MAX);
    let grace = u64::try_from(meta.grace.as_millis()).unwrap_or(u64::MAX);
    header[LOAD_AT..GRACE_AT].copy_from_slice(&load.to_le_bytes());
    header[GRACE_AT..ID_AT].copy_from_slice(&grace.to_le_bytes());
    header[ID_AT..ID_AT + ID_LEN].copy_from_slice(&rand::random::<EntryId>());
}

/// The same entry with another grace and a fresh id (its load time, tags
/// and value kept): how fail-safe re-stores an old value for a while.
pub(crate) fn restamp(bytes: &[u8], grace: std::time::Duration) -> Option<Vec<u8>> {
    let entry = parse_entry(bytes)?;
    let load = entry.meta.load;
    let mut out = bytes.to_vec();
    write_meta(&mut out, Meta { load, grace });
    Some(out)
}

/// Reads bytes framed by [`encode_entry`]; never panics. Tag versions are
/// checked by the backend, which knows the current ones.
pub(crate) fn decode_entry<C: Codec, T: Cacheable>(bytes: &[u8]) -> Decoded<T> {
    let Some(entry) = parse_entry(bytes) else {
        return Decoded::Mismatch(Mismatch::Foreign);
    };
    if entry.codec != C::ID {
        return Decoded::Mismatch(Mismatch::OtherCodec);
    }
    if entry.fingerprint != fingerprint::<T>() {
        return Decoded::Mismatch(Mismatch::OtherType);
    }
    // A user's Deserialize impl may panic on bytes it never expected.
    match catch_unwind(AssertUnwindSafe(|| C::decode::<T>(entry.payload))) {
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
        let bytes = encode_entry::<Bincode, _>(&user, &[], Meta::default()).unwrap();
        match decode_entry::<Bincode, v1::User>(&bytes) {
            Decoded::Value(v) => assert_eq!(v, user),
            Decoded::Mismatch(m) => panic!("mismatch {m:?}"),
        }
    }

    #[test]
    fn changed_struct_is_a_mismatch() {
        let bytes = encode_entry::<Bincode, _>(
            &v1::User {
                id: 7,
                name: "ann".into(),
            },
            &[],
            Meta::default(),
        )
        .unwrap();
        assert!(matches!(
            decode_entry::<Bincode, v2::User>(&bytes),
            Decoded::Mismatch(Mismatch::OtherType)
        ));
        let bytes = encode_entry::<Bincode, _>(&Pair { a: 1, b: 2 }, &[], Meta::default()).unwrap();
        assert!(matches!(
            decode_entry::<Bincode, v3::Pair>(&bytes),
            Decoded::Mismatch(Mismatch::OtherType)
        ));
    }

    #[test]
    fn garbage_never_panics() {
        let good = encode_entry::<Bincode, _>(
            &vec![String::from("x"); 3],
            &[("tag:a".into(), [7; 8])],
            Meta::default(),
        )
        .unwrap();
        let mut inputs: Vec<Vec<u8>> = vec![vec![], b"hello".to_vec(), vec![0xff; 64]];
        // A valid header followed by a huge claimed length and truncations.
        let header = good.len() - Bincode::encode(&vec![String::from("x"); 3]).unwrap().len();
        let mut huge = good[..header].to_vec();
        huge.extend_from_slice(&[0xfd, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]);
        inputs.push(huge);
        for cut in 0..good.len() {
            inputs.push(good[..cut].to_vec());
        }
        let mut trailing = good.clone();
        trailing.push(0);
        inputs.push(trailing);
        for bytes in inputs {
            assert!(matches!(
                decode_entry::<Bincode, Vec<String>>(&bytes),
                Decoded::Mismatch(_)
            ));
        }
    }

    #[test]
    fn tags_round_trip_through_the_header() {
        let tags = [
            ("ns:__cachemacro:tag:user:1".to_string(), [1; 8]),
            ("t".to_string(), [2; 8]),
        ];
        let meta = Meta {
            load: std::time::Duration::from_micros(1_500),
            grace: std::time::Duration::from_secs(600),
        };
        let bytes = encode_entry::<Bincode, _>(&5u32, &tags, meta).unwrap();
        let entry = parse_entry(&bytes).unwrap();
        let got: Vec<(&[u8], &[u8])> = entry.tags;
        assert_eq!(
            got,
            vec![
                (&b"ns:__cachemacro:tag:user:1"[..], &[1u8; 8][..]),
                (&b"t"[..], &[2u8; 8][..])
            ]
        );
        assert!(matches!(
            decode_entry::<Bincode, u32>(&bytes),
            Decoded::Value(5)
        ));
        let entry = parse_entry(&bytes).unwrap();
        assert_eq!(entry.meta, meta);
        // A restamp keeps value, tags and load time; changes grace and id.
        let again = restamp(&bytes, std::time::Duration::from_secs(1)).unwrap();
        let parsed = parse_entry(&again).unwrap();
        assert_eq!(parsed.meta.load, meta.load);
        assert_eq!(parsed.meta.grace, std::time::Duration::from_secs(1));
        assert_ne!(parsed.id, entry.id);
        assert_eq!(parsed.tags, entry.tags);
        assert!(matches!(
            decode_entry::<Bincode, u32>(&again),
            Decoded::Value(5)
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
