//! The Lua scripts of the Redis store, generated from the protocol's
//! constants (`store/protocol.rs`): offsets, magic bytes and lengths are
//! never written twice. Each script touches one key (one hash slot).
//!
//! ## Behavior
//!
//! * A script is sent as `EVALSHA`, then as `EVAL` of its text when the
//!   node answers `NOSCRIPT` (a new, restarted or promoted node), both to
//!   the key's node. Not redis-rs's `SCRIPT LOAD`, which on a cluster goes
//!   to every node and fails while any one of them is unreachable.
//! * The short scripts that run inside batches ([`EXTEND`],
//!   [`TAG_VERSION`], [`ENTRY_AND_TTL`]) are always sent as `EVAL` text:
//!   one command per key, so a batch never holds two keyed commands that a
//!   slot migration could split (redis-rs follows `ASK` for one command).

use std::sync::LazyLock;

use redis::{Cmd, ToRedisArgs};

/// A script: its text and SHA1.
pub(crate) struct Lua {
    text: String,
    sha: String,
}

impl Lua {
    fn new(text: String) -> Lua {
        let sha = redis::Script::new(&text).get_hash().to_owned();
        Lua { text, sha }
    }

    /// A call of this script on `key`; add its arguments with [`Call::arg`].
    pub(crate) fn key<'a>(&'a self, key: &str) -> Call<'a> {
        Call {
            lua: self,
            key: key.as_bytes().to_vec(),
            args: Vec::new(),
        }
    }
}

/// One call of a [`Lua`] script on one key.
pub(crate) struct Call<'a> {
    lua: &'a Lua,
    key: Vec<u8>,
    args: Vec<Vec<u8>>,
}

impl Call<'_> {
    pub(crate) fn arg(&mut self, arg: impl ToRedisArgs) -> &mut Self {
        self.args.extend(arg.to_redis_args());
        self
    }

    /// `EVALSHA` (by hash) or `EVAL` (by text).
    pub(crate) fn cmd(&self, by_hash: bool) -> Cmd {
        let mut cmd = if by_hash {
            let mut c = redis::cmd("EVALSHA");
            c.arg(&self.lua.sha);
            c
        } else {
            let mut c = redis::cmd("EVAL");
            c.arg(&self.lua.text);
            c
        };
        cmd.arg(1).arg(&self.key);
        for arg in &self.args {
            cmd.arg(arg.as_slice());
        }
        cmd
    }
}

use crate::store::protocol::{
    EXPIRES_AT, FILLED_AT, FORMAT_VERSION, HEADER_LEN, ID_AT, ID_LEN, LEASE_LEN, LEASE_MAGIC,
    LOCK_TOKEN_AT, LOCK_UNTIL_AT, MAGIC, TOKEN_LEN,
};

// The store script writes the fill time and the expiry as one 16-byte run.
const _: () = assert!(EXPIRES_AT == FILLED_AT + 8);

/// Bytes as a Lua string literal (`'\202\206\004'`).
fn lua_bytes(bytes: &[u8]) -> String {
    let mut out = String::from("'");
    for b in bytes {
        out.push_str(&format!("\\{b:03}"));
    }
    out.push('\'');
    out
}

/// Helpers every script starts with. Positions are 1-based in Lua.
fn prelude() -> String {
    let entry = lua_bytes(&[MAGIC[0], MAGIC[1], FORMAT_VERSION]);
    format!(
        r"
local function le(v, at, n)
  local x = 0
  for i = at + n, at + 1, -1 do x = x * 256 + string.byte(v, i) end
  return x
end
local function le8(n)
  local out = {{}}
  for i = 1, 8 do out[i] = string.char(n % 256); n = math.floor(n / 256) end
  return table.concat(out)
end
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function is_entry(h)
  return string.len(h) >= {HEADER_LEN} and string.sub(h, 1, 3) == {entry}
end
local function id_of(h) return string.sub(h, {id_from}, {id_to}) end
local function header(key) return redis.call('GETRANGE', key, 0, {last}) end
",
        id_from = ID_AT + 1,
        id_to = ID_AT + ID_LEN,
        last = HEADER_LEN - 1,
    )
}

/// [`protocol::acquire`](crate::store::protocol::acquire): KEYS[1] the
/// entry; ARGV the lease, its ttl ms, what the read saw (`n` nothing, `e`
/// an entry, `u` unreadable) and the entry's id. Reply: `{outcome, now}`,
/// outcome 1 leased, 2 busy, 3 changed; `now` the server's clock in ms.
pub(crate) static ACQUIRE: LazyLock<Lua> = LazyLock::new(|| Lua::new(acquire_text()));

fn acquire_text() -> String {
    format!(
        r"{prelude}
local h = header(KEYS[1])
local now = now_ms()
if h ~= '' then
  if string.len(h) == {lease_len} and string.sub(h, 1, 2) == {lease} then return {{2, now}} end
  local same = ARGV[3] == 'u' or (ARGV[3] == 'e' and is_entry(h) and id_of(h) == ARGV[4])
  if not same then return {{3, now}} end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return {{1, now}}",
        prelude = prelude(),
        lease = lua_bytes(&LEASE_MAGIC),
        lease_len = LEASE_LEN,
    )
}

/// The refresh-lock rule ([`protocol::lock_free`](crate::store::protocol::lock_free)),
/// written into the entry's header in place: KEYS[1]; ARGV the entry id,
/// the token, the ttl ms. Reply `{taken, now}`: 1 taken, 0 not.
pub(crate) static LOCK: LazyLock<Lua> = LazyLock::new(|| Lua::new(lock_text()));

fn lock_text() -> String {
    format!(
        r"{prelude}
local h = header(KEYS[1])
local now = now_ms()
if not is_entry(h) or id_of(h) ~= ARGV[1] then return {{0, now}} end
local token = string.sub(h, {token_from}, {token_to})
if token ~= string.rep('\0', {token_len}) and le(h, {until_at}, 8) > now then return {{0, now}} end
redis.call('SETRANGE', KEYS[1], {token_at}, ARGV[2] .. le8(now + tonumber(ARGV[3])))
return {{1, now}}",
        prelude = prelude(),
        token_from = LOCK_TOKEN_AT + 1,
        token_to = LOCK_TOKEN_AT + TOKEN_LEN,
        token_len = TOKEN_LEN,
        until_at = LOCK_UNTIL_AT,
        token_at = LOCK_TOKEN_AT,
    )
}

/// The store rule ([`protocol::claim_holds`](crate::store::protocol::claim_holds)):
/// KEYS[1]; ARGV the claim (`l` lease / `e` entry), the lease or entry id,
/// the bytes, the ttl ms. Stamps the fill time and the expiry (server
/// clock) into the header. Reply `{stored, now}`: 1 stored, 0 refused.
pub(crate) static STORE: LazyLock<Lua> = LazyLock::new(|| Lua::new(store_text()));

fn store_text() -> String {
    format!(
        r"{prelude}
local h = header(KEYS[1])
local now = now_ms()
local mine
if ARGV[1] == 'l' then mine = h == ARGV[2] else mine = is_entry(h) and id_of(h) == ARGV[2] end
if not mine then return {{0, now}} end
redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
redis.call('SETRANGE', KEYS[1], {filled_at}, le8(now) .. le8(now + tonumber(ARGV[4])))
return {{1, now}}",
        prelude = prelude(),
        filled_at = FILLED_AT,
    )
}

/// Gives a claim back: KEYS[1]; ARGV the lease, the token. Deletes the key
/// while it holds the lease; frees the entry's refresh lock while the token
/// holds it.
pub(crate) static RELEASE: LazyLock<Lua> = LazyLock::new(|| Lua::new(release_text()));

fn release_text() -> String {
    format!(
        r"{prelude}
local h = header(KEYS[1])
if h == ARGV[1] then return redis.call('DEL', KEYS[1]) end
if is_entry(h) and string.sub(h, {token_from}, {token_to}) == ARGV[2] then
  redis.call('SETRANGE', KEYS[1], {token_at}, string.rep('\0', {lock_len}))
end
return 0",
        prelude = prelude(),
        token_from = LOCK_TOKEN_AT + 1,
        token_to = LOCK_TOKEN_AT + TOKEN_LEN,
        token_at = LOCK_TOKEN_AT,
        lock_len = FILLED_AT - LOCK_TOKEN_AT,
    )
}

/// Makes a tag version KEYS[1] live at least ARGV[1] ms (never shorter).
/// Sent as `EVAL` text, so the tags of one store share one pipeline.
pub(crate) const EXTEND: &str = r"
local left = redis.call('PTTL', KEYS[1])
if left >= 0 and left < tonumber(ARGV[1]) then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return 0";

/// Increments, then sets a TTL only if the key has none (like `PEXPIRE NX`,
/// which Redis 6 lacks).
pub(crate) static INCR: LazyLock<Lua> = LazyLock::new(|| {
    Lua::new(
        r"
local v = redis.call('INCRBY', KEYS[1], ARGV[1])
if ARGV[2] ~= '' and redis.call('PTTL', KEYS[1]) == -1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return v"
            .to_owned(),
    )
});

/// A tag version, created when absent: KEYS[1]; ARGV a fresh version, its
/// ttl ms. Replies with the version now stored.
pub(crate) const TAG_VERSION: &str = r"
redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2])
return redis.call('GET', KEYS[1])";

/// An entry and its `PTTL` as they are at one moment: KEYS[1]. Replies
/// `{pttl, bytes}` (bytes nil when absent; first, as Lua ends an array at
/// its first nil).
pub(crate) const ENTRY_AND_TTL: &str = r"
local pttl = redis.call('PTTL', KEYS[1])
return {pttl, redis.call('GET', KEYS[1])}";

/// The tag count's position, for the parity test's look at raw headers.
#[cfg(test)]
pub(crate) const TAG_COUNT: usize = crate::store::protocol::TAG_COUNT_AT;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_name_the_protocols_constants() {
        assert_eq!(lua_bytes(&[0xCA, 0xCE, 4]), r"'\202\206\004'");
        let prelude = prelude();
        assert!(prelude.contains(&format!(">= {HEADER_LEN}")));
        assert!(prelude.contains(&format!("{}, {}", ID_AT + 1, ID_AT + ID_LEN)));
        assert_eq!(TAG_COUNT, HEADER_LEN - 1);
        // Cluster-safe by construction: no script names a second key.
        for text in [acquire_text(), lock_text(), store_text(), release_text()] {
            assert!(
                text.contains("KEYS[1]") && !text.contains("KEYS[2]"),
                "{text}"
            );
        }
        // Every script compiles to its own SHA (they are distinct texts).
        let shas = [&ACQUIRE, &LOCK, &STORE, &RELEASE, &INCR].map(|s| s.sha.clone());
        for (i, a) in shas.iter().enumerate() {
            assert!(shas[i + 1..].iter().all(|b| a != b));
        }
    }
}
