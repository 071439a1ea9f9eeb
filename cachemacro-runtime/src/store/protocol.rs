//! The storage protocol, defined once: the entry envelope every backend
//! stores, the lease marker, and the rules that decide what a read found.
//! The memory store applies these functions; the Redis scripts are
//! generated from these constants (`redis/scripts.rs`), and
//! `tests/protocol_parity.rs` drives both through the same trace.
//!
//! ## Behavior
//!
//! * **Envelope** (format 5): `[CA CE][format][codec][fingerprint u64]`
//!   `[load µs u32][grace ms u64][id 8][lock token 16][lock until ms u64]`
//!   `[filled at ms u64][expires at ms u64][tag count u8]`, then per tag `[len u16 BE][full tag
//!   key][version 8]`, then the payload. Little-endian unless noted. Bytes of
//!   any other format (older versions included) read as unreadable: a miss.
//! * **Lease**: `[CA 1E]` and a 16-byte token, stored in the entry's own key
//!   while a miss loads. A fill stores only over its own lease.
//! * **Refresh lock**: written in place into the entry's header (token and
//!   expiry, server clock), so it lives in the entry's key: no operation
//!   ever touches two keys, and every script runs in one hash slot.
//! * **Tags**: an entry records each tag's version when its fill began.
//!   Versions are read separately and compared here; a version only ever
//!   changes to a fresh random value, so a version read after (or with) the
//!   entry that still matches proves the entry was valid during the read.
//! * **Freshness**: physical TTL = fresh TTL + grace, so freshness left is
//!   the key's remaining TTL less the grace. On Redis the store script
//!   stamps the fill time and the expiry on the server's clock into the
//!   header; a read far from the expiry judges by the stamp, one near it
//!   asks the server for the key's remaining TTL (`redis/mod.rs`).

use std::time::Duration;

use crate::Error;
use crate::codec::{Cacheable, Codec, Decoded, Mismatch, fingerprint};

/// The first bytes of every entry.
pub(crate) const MAGIC: [u8; 2] = [0xCA, 0xCE];
/// Bumped on any layout change: entries of another format are misses.
pub(crate) const FORMAT_VERSION: u8 = 5;
/// The first bytes of a fill lease.
pub(crate) const LEASE_MAGIC: [u8; 2] = [0xCA, 0x1E];

pub(crate) const CODEC_AT: usize = 3;
pub(crate) const FINGERPRINT_AT: usize = 4;
pub(crate) const LOAD_AT: usize = 12;
pub(crate) const GRACE_AT: usize = 16;
pub(crate) const ID_AT: usize = 24;
pub(crate) const LOCK_TOKEN_AT: usize = 32;
pub(crate) const LOCK_UNTIL_AT: usize = 48;
pub(crate) const FILLED_AT: usize = 56;
pub(crate) const EXPIRES_AT: usize = 64;
pub(crate) const TAG_COUNT_AT: usize = 72;
/// Everything before the tags.
pub(crate) const HEADER_LEN: usize = TAG_COUNT_AT + 1;

pub(crate) const ID_LEN: usize = 8;
pub(crate) const TOKEN_LEN: usize = 16;
pub(crate) const VERSION_LEN: usize = 8;
/// `LEASE_MAGIC` and a token.
pub(crate) const LEASE_LEN: usize = 2 + TOKEN_LEN;

/// A tag's version: random bytes, replaced (deleted) on invalidation.
pub(crate) type TagVersion = [u8; VERSION_LEN];
/// Names one stored entry: fresh random bytes on every write.
pub(crate) type EntryId = [u8; ID_LEN];

/// One caller's claim on a key: the random part of its fill lease and of
/// its refresh lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Token(pub(crate) [u8; TOKEN_LEN]);

impl Token {
    pub(crate) fn new() -> Token {
        Token(rand::random())
    }

    /// The bytes a lease leaves in the key.
    pub(crate) fn lease(&self) -> [u8; LEASE_LEN] {
        let mut lease = [0; LEASE_LEN];
        lease[..2].copy_from_slice(&LEASE_MAGIC);
        lease[2..].copy_from_slice(&self.0);
        lease
    }
}

/// What an entry records besides its value and tags.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Meta {
    /// How long the load that produced it took (XFetch's Δ).
    pub(crate) load: Duration,
    /// How long it is kept past its freshness.
    pub(crate) grace: Duration,
}

/// An entry's header, parsed (tags owned: they are few and short).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) codec: u8,
    pub(crate) fingerprint: u64,
    pub(crate) meta: Meta,
    pub(crate) id: EntryId,
    /// Each tag's full key and the version it had when the fill began.
    pub(crate) tags: Vec<(String, TagVersion)>,
    /// When the key expires, in ms on the server's clock, as the store
    /// stamped it; 0 when unknown (written by the manual API).
    pub(crate) expires_at: u64,
    /// When it was stored, in ms on the server's clock; 0 when unknown.
    /// An instance that may have missed invalidations trusts only entries
    /// stored after it knew it missed none (`store/tier/trust.rs`).
    pub(crate) filled_at: u64,
}

/// Whether stored bytes are a lease.
pub(crate) fn is_lease(bytes: &[u8]) -> bool {
    bytes.len() == LEASE_LEN && bytes[..2] == LEASE_MAGIC
}

fn le_u64(bytes: &[u8], at: usize) -> u64 {
    let mut b = [0; 8];
    b.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(b)
}

/// Splits stored bytes into header and payload; `None` for anything that
/// is not an entry of this format.
pub(crate) fn parse(bytes: &[u8]) -> Option<(Header, &[u8])> {
    if bytes.len() < HEADER_LEN || bytes[..2] != MAGIC || bytes[2] != FORMAT_VERSION {
        return None;
    }
    let load = u32::from_le_bytes(bytes[LOAD_AT..GRACE_AT].try_into().ok()?);
    let mut rest = &bytes[HEADER_LEN..];
    let count = bytes[TAG_COUNT_AT];
    let mut tags = Vec::with_capacity(usize::from(count));
    for _ in 0..count {
        let len = usize::from(u16::from_be_bytes(rest.get(..2)?.try_into().ok()?));
        let key = std::str::from_utf8(rest.get(2..2 + len)?).ok()?;
        let version = rest.get(2 + len..2 + len + VERSION_LEN)?.try_into().ok()?;
        tags.push((key.to_owned(), version));
        rest = &rest[2 + len + VERSION_LEN..];
    }
    let header = Header {
        codec: bytes[CODEC_AT],
        fingerprint: le_u64(bytes, FINGERPRINT_AT),
        meta: Meta {
            load: Duration::from_micros(u64::from(load)),
            grace: Duration::from_millis(le_u64(bytes, GRACE_AT)),
        },
        id: bytes[ID_AT..ID_AT + ID_LEN].try_into().ok()?,
        tags,
        expires_at: le_u64(bytes, EXPIRES_AT),
        filled_at: le_u64(bytes, FILLED_AT),
    };
    Some((header, rest))
}

/// Frames an encoded payload with a header under a fresh entry id (no
/// lock, fill time 0 until the store stamps it).
pub(crate) fn frame(
    codec: u8,
    fingerprint: u64,
    payload: &[u8],
    tags: &[(String, TagVersion)],
    meta: Meta,
) -> Result<Vec<u8>, Error> {
    let count = u8::try_from(tags.len()).map_err(|_| Error::Encode("more than 255 tags".into()))?;
    let tags_len: usize = tags.iter().map(|(k, _)| 2 + k.len() + VERSION_LEN).sum();
    let mut out = vec![0; HEADER_LEN];
    out.reserve(tags_len + payload.len());
    out[..2].copy_from_slice(&MAGIC);
    out[2] = FORMAT_VERSION;
    out[CODEC_AT] = codec;
    out[FINGERPRINT_AT..LOAD_AT].copy_from_slice(&fingerprint.to_le_bytes());
    let load = u32::try_from(meta.load.as_micros()).unwrap_or(u32::MAX);
    let grace = u64::try_from(meta.grace.as_millis()).unwrap_or(u64::MAX);
    out[LOAD_AT..GRACE_AT].copy_from_slice(&load.to_le_bytes());
    out[GRACE_AT..ID_AT].copy_from_slice(&grace.to_le_bytes());
    out[ID_AT..ID_AT + ID_LEN].copy_from_slice(&rand::random::<EntryId>());
    out[TAG_COUNT_AT] = count;
    for (key, version) in tags {
        let len =
            u16::try_from(key.len()).map_err(|_| Error::Encode("tag key over 64 KiB".into()))?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(key.as_bytes());
        out.extend_from_slice(version);
    }
    out.extend_from_slice(payload);
    Ok(out)
}

/// Encodes `value` with codec `C` and frames it.
pub(crate) fn encode<C: Codec, T: Cacheable>(
    value: &T,
    tags: &[(String, TagVersion)],
    meta: Meta,
) -> Result<Vec<u8>, Error> {
    let payload = C::encode(value).map_err(Error::Encode)?;
    frame(C::ID, fingerprint::<T>(), &payload, tags, meta)
}

/// The same entry with another grace, a fresh id and no lock (value, tags
/// and load time kept): how fail-safe re-stores an old value for a while.
pub(crate) fn restamp(bytes: &[u8], grace: Duration) -> Option<Vec<u8>> {
    parse(bytes)?;
    let mut out = bytes.to_vec();
    let grace = u64::try_from(grace.as_millis()).unwrap_or(u64::MAX);
    out[GRACE_AT..ID_AT].copy_from_slice(&grace.to_le_bytes());
    out[ID_AT..ID_AT + ID_LEN].copy_from_slice(&rand::random::<EntryId>());
    out[LOCK_TOKEN_AT..TAG_COUNT_AT].fill(0);
    Some(out)
}

/// Reads a value out of stored bytes; never panics.
pub(crate) fn decode<C: Codec, T: Cacheable>(bytes: &[u8]) -> Decoded<T> {
    let Some((header, payload)) = parse(bytes) else {
        return Decoded::Mismatch(Mismatch::Foreign);
    };
    crate::codec::decode_payload::<C, T>(header.codec, header.fingerprint, payload)
}

/// What a read found in a key, before the rules judge it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Seen<E> {
    Nothing,
    /// Another caller's fill lease.
    Lease,
    /// Bytes that are not an entry (foreign, corrupt, another format).
    Unreadable,
    /// An entry and its freshness left in ms (remaining TTL less grace;
    /// negative past freshness; `i64::MAX` without expiry).
    Entry {
        entry: E,
        left_ms: i64,
    },
}

/// What the rules make of a read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    Absent,
    Leased,
    Unreadable,
    /// Its tags were invalidated, or it carries other tags than asked.
    Stale,
    /// Fresh; `due` when XFetch draws it for an early refresh.
    Fresh {
        due: bool,
    },
    /// Past freshness, kept for `stale`/`fail_safe`, since this long.
    Kept {
        since: Duration,
    },
}

/// Judges what a read saw. `tags` are the tags the caller expects (full
/// keys) and `versions` their current versions, read with or after the
/// entry; `early` is XFetch's `β·(−ln u)` for this read (0: off).
pub(crate) fn classify(
    header: Option<&Header>,
    seen: &Seen<()>,
    tags: &[String],
    versions: &[Option<TagVersion>],
    early: f64,
) -> State {
    match (seen, header) {
        (Seen::Nothing, _) => State::Absent,
        (Seen::Lease, _) => State::Leased,
        (Seen::Unreadable, _) | (Seen::Entry { .. }, None) => State::Unreadable,
        (Seen::Entry { left_ms, .. }, Some(header)) => {
            if !tags_current(header, tags, versions) {
                return State::Stale;
            }
            freshness(header.meta, *left_ms, early)
        }
    }
}

/// Whether an entry carries exactly `tags`, each at its current version.
pub(crate) fn tags_current(
    header: &Header,
    tags: &[String],
    versions: &[Option<TagVersion>],
) -> bool {
    header.tags.len() == tags.len()
        && versions.len() == tags.len()
        && header.tags.iter().zip(tags.iter().zip(versions)).all(
            |((name, recorded), (tag, current))| name == tag && current.as_ref() == Some(recorded),
        )
}

/// Fresh (and whether due for early refresh) or kept, from freshness left.
pub(crate) fn freshness(meta: Meta, left_ms: i64, early: f64) -> State {
    if left_ms <= 0 {
        return State::Kept {
            since: Duration::from_millis(left_ms.unsigned_abs()),
        };
    }
    let window = meta.load.as_secs_f64() * 1000.0 * early;
    State::Fresh {
        due: early > 0.0 && left_ms != i64::MAX && (left_ms as f64) <= window,
    }
}

/// Freshness left from a key's remaining TTL in ms (`None`: no expiry).
pub(crate) fn left_ms(pttl: Option<u64>, grace: Duration) -> i64 {
    match pttl {
        None => i64::MAX,
        Some(ms) => {
            let ms = i64::try_from(ms).unwrap_or(i64::MAX);
            ms.saturating_sub(i64::try_from(grace.as_millis()).unwrap_or(i64::MAX))
        }
    }
}

/// What a caller expects to replace when it takes a fill lease: the state
/// its read saw. If the key changed meanwhile (another caller stored an
/// entry), no lease is taken and the caller reads again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expect {
    /// The key was empty.
    Nothing,
    /// The key held this entry (stale, or undecodable for this caller).
    Entry(EntryId),
    /// The key held unreadable bytes: anything but a live lease is replaced.
    Anything,
}

/// The outcome of taking a fill lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Acquire {
    /// Taken: this caller may fill.
    Leased,
    /// Another caller's lease holds the key.
    Busy,
    /// The key changed since the read: read again.
    Changed,
}

/// The lease rule, given what the key holds now.
pub(crate) fn acquire(now: &Seen<EntryId>, expect: Expect) -> Acquire {
    match (now, expect) {
        (Seen::Lease, _) => Acquire::Busy,
        (Seen::Nothing, _) | (_, Expect::Anything) => Acquire::Leased,
        (Seen::Entry { entry, .. }, Expect::Entry(id)) if *entry == id => Acquire::Leased,
        _ => Acquire::Changed,
    }
}

/// What a store may replace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Claim {
    /// The key must still hold this caller's fill lease (a miss's).
    Lease(Token),
    /// The key must still hold this entry (a refresh of it).
    Entry(EntryId),
}

/// The store rule: whether the claim still holds what the key holds now.
pub(crate) fn claim_holds(now: &Seen<EntryId>, lease: Option<&Token>, claim: Claim) -> bool {
    match (claim, now) {
        (Claim::Lease(mine), Seen::Lease) => lease == Some(&mine),
        (Claim::Entry(id), Seen::Entry { entry, .. }) => *entry == id,
        _ => false,
    }
}

/// The refresh-lock rule: free when nobody holds it or its holder's time
/// ran out (`now_ms` and `until_ms` on one clock).
pub(crate) fn lock_free(token: &[u8; TOKEN_LEN], until_ms: u64, now_ms: u64) -> bool {
    *token == [0; TOKEN_LEN] || until_ms <= now_ms
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Bincode;

    #[test]
    fn entries_round_trip_with_tags_and_meta() {
        let tags = vec![("ns:__cachemacro:tag:user:1".to_string(), [1; 8])];
        let meta = Meta {
            load: Duration::from_micros(1_500),
            grace: Duration::from_secs(600),
        };
        let bytes = encode::<Bincode, _>(&5u32, &tags, meta).unwrap();
        let (header, _) = parse(&bytes).unwrap();
        assert_eq!((header.tags.clone(), header.meta), (tags.clone(), meta));
        assert!(matches!(decode::<Bincode, u32>(&bytes), Decoded::Value(5)));
        let again = restamp(&bytes, Duration::from_secs(1)).unwrap();
        let (restamped, _) = parse(&again).unwrap();
        assert_eq!(restamped.meta.grace, Duration::from_secs(1));
        assert_ne!(restamped.id, header.id);
        assert_eq!(restamped.tags, tags);
    }

    #[test]
    fn older_formats_and_leases_are_not_entries() {
        let mut bytes = encode::<Bincode, _>(&5u32, &[], Meta::default()).unwrap();
        for older in 1..FORMAT_VERSION {
            bytes[2] = older;
            assert!(
                parse(&bytes).is_none(),
                "format {older} is not read as this one"
            );
        }
        assert!(is_lease(&Token::new().lease()));
        assert!(parse(&Token::new().lease()).is_none());
    }

    #[test]
    fn garbage_never_panics() {
        let good = encode::<Bincode, _>(
            &vec![String::from("x"); 3],
            &[("tag:a".into(), [7; 8])],
            Meta::default(),
        )
        .unwrap();
        let mut inputs: Vec<Vec<u8>> = vec![vec![], b"hello".to_vec(), vec![0xff; 80]];
        for cut in 0..good.len() {
            inputs.push(good[..cut].to_vec());
        }
        let mut trailing = good.clone();
        trailing.push(0);
        inputs.push(trailing);
        for bytes in inputs {
            assert!(matches!(
                decode::<Bincode, Vec<String>>(&bytes),
                Decoded::Mismatch(_)
            ));
        }
    }

    #[test]
    fn the_rules() {
        let header = Header {
            codec: 1,
            fingerprint: 0,
            meta: Meta {
                load: Duration::from_millis(100),
                grace: Duration::ZERO,
            },
            id: [1; 8],
            tags: vec![("t".into(), [2; 8])],
            expires_at: 0,
            filled_at: 0,
        };
        let seen = |left_ms| Seen::Entry { entry: (), left_ms };
        let tags = ["t".to_string()];
        let current = [Some([2; 8])];
        assert_eq!(
            classify(Some(&header), &seen(10_000), &tags, &current, 1.0),
            State::Fresh { due: false }
        );
        assert_eq!(
            classify(Some(&header), &seen(50), &tags, &current, 1.0),
            State::Fresh { due: true }
        );
        assert_eq!(
            classify(Some(&header), &seen(50), &tags, &current, 0.0),
            State::Fresh { due: false }
        );
        assert_eq!(
            classify(Some(&header), &seen(-5), &tags, &current, 0.0),
            State::Kept {
                since: Duration::from_millis(5)
            }
        );
        assert_eq!(
            classify(Some(&header), &seen(10_000), &tags, &[Some([3; 8])], 0.0),
            State::Stale
        );
        assert_eq!(
            classify(Some(&header), &seen(10_000), &[], &[], 0.0),
            State::Stale
        );
        let entry = |id| Seen::Entry {
            entry: id,
            left_ms: 1,
        };
        assert_eq!(acquire(&Seen::Nothing, Expect::Nothing), Acquire::Leased);
        assert_eq!(acquire(&entry([1; 8]), Expect::Nothing), Acquire::Changed);
        assert_eq!(
            acquire(&entry([1; 8]), Expect::Entry([1; 8])),
            Acquire::Leased
        );
        assert_eq!(
            acquire(&entry([2; 8]), Expect::Entry([1; 8])),
            Acquire::Changed
        );
        assert_eq!(acquire(&Seen::Lease, Expect::Anything), Acquire::Busy);
        let mine = Token([9; TOKEN_LEN]);
        assert!(claim_holds(&Seen::Lease, Some(&mine), Claim::Lease(mine)));
        assert!(!claim_holds(
            &Seen::Lease,
            Some(&Token([8; 16])),
            Claim::Lease(mine)
        ));
        assert!(!claim_holds(&entry([1; 8]), None, Claim::Entry([2; 8])));
        assert!(lock_free(&[0; TOKEN_LEN], u64::MAX, 0));
        assert!(!lock_free(&[1; TOKEN_LEN], 10, 5));
        assert!(lock_free(&[1; TOKEN_LEN], 10, 10));
    }
}
