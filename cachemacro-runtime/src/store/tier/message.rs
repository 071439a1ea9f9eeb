//! Announcements between the instances sharing one Redis: what they say,
//! and its bytes on the pub/sub channel.
//!
//! ## Behavior
//!
//! * `[C5 A1][version 1][sender 16][sequence u64 LE][kind]` then, for keys, each as `[len
//!   u32 LE][bytes]`; for a prefix its bytes; for a watermark its server ms
//!   (u64 LE). Keys and prefixes are full (namespaced) keys.
//! * Each sender numbers its announcements, so a receiver notices one that
//!   went missing without a disconnect (on a cluster, a node cut off from
//!   the cluster bus still accepts publishes).
//! * Bytes that are not an announcement of this version decode to `None`
//!   and are ignored (logged at debug): never a panic.

/// The first bytes of every announcement.
const MAGIC: [u8; 3] = [0xC5, 0xA1, 2];

/// Names one cache handle: its own announcements come back to it, and it
/// skips them.
pub(crate) type Sender = [u8; 16];

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Announcement {
    /// These keys (entries or tag versions) were deleted or replaced.
    Keys(Vec<String>),
    /// Every key under this prefix was deleted.
    Prefix(String),
    /// Invalidations may have been missed until this server time (ms): do
    /// not trust entries stored before it.
    Distrust(u64),
}

const KEYS: u8 = 1;
const PREFIX: u8 = 2;
const DISTRUST: u8 = 3;

impl Announcement {
    pub(crate) fn encode(&self, sender: &Sender, sequence: u64) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(sender);
        out.extend_from_slice(&sequence.to_le_bytes());
        match self {
            Announcement::Keys(keys) => {
                out.push(KEYS);
                for key in keys {
                    let len = u32::try_from(key.len()).unwrap_or(u32::MAX);
                    out.extend_from_slice(&len.to_le_bytes());
                    out.extend_from_slice(key.as_bytes());
                }
            }
            Announcement::Prefix(prefix) => {
                out.push(PREFIX);
                out.extend_from_slice(prefix.as_bytes());
            }
            Announcement::Distrust(at) => {
                out.push(DISTRUST);
                out.extend_from_slice(&at.to_le_bytes());
            }
        }
        out
    }

    pub(crate) fn decode(bytes: &[u8]) -> Option<(Sender, u64, Announcement)> {
        let rest = bytes.strip_prefix(&MAGIC)?;
        let sender: Sender = rest.get(..16)?.try_into().ok()?;
        let sequence = u64::from_le_bytes(rest.get(16..24)?.try_into().ok()?);
        let (&kind, mut body) = rest.get(24..)?.split_first()?;
        let announcement = match kind {
            KEYS => {
                let mut keys = Vec::new();
                while !body.is_empty() {
                    let len = u32::from_le_bytes(body.get(..4)?.try_into().ok()?) as usize;
                    let end = len.checked_add(4)?;
                    let key = std::str::from_utf8(body.get(4..end)?).ok()?;
                    keys.push(key.to_owned());
                    body = &body[end..];
                }
                Announcement::Keys(keys)
            }
            PREFIX => Announcement::Prefix(std::str::from_utf8(body).ok()?.to_owned()),
            DISTRUST => Announcement::Distrust(u64::from_le_bytes(body.try_into().ok()?)),
            _ => return None,
        };
        Some((sender, sequence, announcement))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_garbage_is_ignored() {
        let me = [7; 16];
        for a in [
            Announcement::Keys(vec!["ns:a".into(), "".into(), "ns:ü:*".into()]),
            Announcement::Prefix("ns:user:".into()),
            Announcement::Distrust(1_700_000_000_123),
        ] {
            let bytes = a.encode(&me, 42);
            assert_eq!(Announcement::decode(&bytes), Some((me, 42, a.clone())));
            for cut in 0..bytes.len() {
                let _ = Announcement::decode(&bytes[..cut]);
            }
        }
        assert_eq!(Announcement::decode(b"hello"), None);
        let mut bad = Announcement::Keys(vec!["k".into()]).encode(&me, 1);
        bad.push(0xff);
        assert_eq!(Announcement::decode(&bad), None, "a truncated length");
    }
}
