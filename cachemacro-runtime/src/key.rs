//! Key encoding: how placeholder values become the bytes of a cache key.
//!
//! ## Behavior
//!
//! A placeholder value made only of ASCII letters, digits, `-`, `_` and `.`
//! is written as itself, so `user-collections:<user_id>` with `42` is the key
//! `user-collections:42`. Every other byte is percent-escaped (`%3A` for `:`,
//! `%2A` for `*`, `%25` for `%` itself). An encoded value therefore never
//! contains a template separator such as `:` and never acts as a glob in a
//! pattern, and two different values never encode to the same text.
//! `Option::None` is written as `~` (a `~` inside a string is escaped), so a
//! missing filter can never collide with the string `"None"` or `""`.

use std::fmt::{self, Write as _};

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC};
use serde::Serialize;

use crate::Error;

/// Bytes written as themselves; everything else is escaped.
const ESCAPED: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.');

/// What `None` encodes as. Never produced by an escaped value.
const NONE_MARKER: char = '~';

/// A value that can stand in a cache key placeholder such as `<user_id>`.
///
/// Implemented for integers, `bool`, `char`, strings, `Option<T>` and smart
/// pointers to these (and `uuid::Uuid` with the `uuid` feature). Floats are
/// left out on purpose: `NaN`, `-0.0` and rounding make poor keys.
///
/// Implement it for your own identifiers by writing their canonical text:
///
/// ```
/// use cachemacro_runtime::{KeyPart, KeyWriter};
///
/// struct Slug(String);
///
/// impl KeyPart for Slug {
///     fn write_key_part(&self, out: &mut KeyWriter<'_>) {
///         out.write_str(&self.0);
///     }
/// }
/// ```
///
/// Whatever you write is escaped, so an implementation cannot break the
/// encoding's guarantees. For values without a short canonical text (filter
/// structs, long search strings) use `<name:hash>` in the template instead.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be used in a cache key",
    label = "this value fills a `<…>` placeholder, so it must implement `KeyPart`",
    note = "implement `cachemacro_runtime::KeyPart` for it, or write `<name:hash>` to key on a hash of its serialized form"
)]
pub trait KeyPart {
    /// Writes the value's canonical text; the writer escapes it.
    fn write_key_part(&self, out: &mut KeyWriter<'_>);
}

/// Receives a [`KeyPart`]'s text and escapes it into the key being built.
pub struct KeyWriter<'a> {
    out: &'a mut String,
}

impl KeyWriter<'_> {
    /// Appends text; bytes outside `[A-Za-z0-9._-]` are percent-escaped.
    pub fn write_str(&mut self, s: &str) {
        self.write_bytes(s.as_bytes());
    }

    /// Appends raw bytes; bytes outside `[A-Za-z0-9._-]` are percent-escaped.
    pub fn write_bytes(&mut self, bytes: &[u8]) {
        for chunk in percent_encoding::percent_encode(bytes, ESCAPED) {
            self.out.push_str(chunk);
        }
    }
}

impl fmt::Write for KeyWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        KeyWriter::write_str(self, s);
        Ok(())
    }
}

macro_rules! display_key_part {
    ($($t:ty),* $(,)?) => {$(
        impl KeyPart for $t {
            fn write_key_part(&self, out: &mut KeyWriter<'_>) {
                // Integers and bools are ASCII digits, `-` and letters: never escaped.
                let _ = write!(out, "{self}");
            }
        }
    )*};
}

display_key_part!(
    u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize, bool
);

impl KeyPart for char {
    fn write_key_part(&self, out: &mut KeyWriter<'_>) {
        out.write_str(self.encode_utf8(&mut [0; 4]));
    }
}

impl KeyPart for str {
    fn write_key_part(&self, out: &mut KeyWriter<'_>) {
        out.write_str(self);
    }
}

impl KeyPart for String {
    fn write_key_part(&self, out: &mut KeyWriter<'_>) {
        out.write_str(self);
    }
}

impl KeyPart for std::borrow::Cow<'_, str> {
    fn write_key_part(&self, out: &mut KeyWriter<'_>) {
        out.write_str(self);
    }
}

macro_rules! deref_key_part {
    ($($t:ty),* $(,)?) => {$(
        impl<T: KeyPart + ?Sized> KeyPart for $t {
            fn write_key_part(&self, out: &mut KeyWriter<'_>) {
                (**self).write_key_part(out);
            }
        }
    )*};
}

deref_key_part!(&T, &mut T, Box<T>, std::rc::Rc<T>, std::sync::Arc<T>);

impl<T: KeyPart> KeyPart for Option<T> {
    fn write_key_part(&self, out: &mut KeyWriter<'_>) {
        match self {
            None => out.out.push(NONE_MARKER),
            Some(value) => {
                let start = out.out.len();
                value.write_key_part(out);
                // `Some(None)` must differ from `None`: a nested marker gets one more `~`.
                if out.out[start..].starts_with(NONE_MARKER) {
                    out.out.insert(start, NONE_MARKER);
                }
            }
        }
    }
}

#[cfg(feature = "uuid")]
impl KeyPart for uuid::Uuid {
    fn write_key_part(&self, out: &mut KeyWriter<'_>) {
        let mut buf = uuid::Uuid::encode_buffer();
        out.write_str(self.hyphenated().encode_lower(&mut buf));
    }
}

/// A value behind `<name:hash>`: anything `Serialize`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be hashed into a cache key",
    label = "`<name:hash>` hashes this value's serialized form, so it must implement `Serialize`",
    note = "derive `serde::Serialize` for it"
)]
pub trait Hashable: Serialize {}

impl<T: Serialize + ?Sized> Hashable for T {}

/// Encodes one value as it would appear in a key.
///
/// ```
/// assert_eq!(cachemacro_runtime::encode_key_part(&42u64), "42");
/// assert_eq!(cachemacro_runtime::encode_key_part("a:b*"), "a%3Ab%2A");
/// assert_eq!(cachemacro_runtime::encode_key_part(&None::<u8>), "~");
/// ```
pub fn encode_key_part<T: KeyPart + ?Sized>(value: &T) -> String {
    let mut out = String::new();
    value.write_key_part(&mut KeyWriter { out: &mut out });
    out
}

/// The short stable hash written for `<name:hash>`: 16 hex digits of
/// xxh3-64 over the value's bincode (serde) encoding.
///
/// Stable across processes and builds as long as the value serializes the
/// same way; key on `BTreeMap` rather than `HashMap`, whose order varies.
pub fn hash_key_part<T: Serialize + ?Sized>(value: &T) -> Result<String, Error> {
    let bytes = bincode::serde::encode_to_vec(value, bincode::config::standard())
        .map_err(|e| Error::Key(Box::new(e)))?;
    Ok(format!("{:016x}", xxhash_rust::xxh3::xxh3_64(&bytes)))
}

/// Escapes the glob characters of Redis `MATCH` (`*?[]\`) so `prefix` is
/// matched literally.
pub(crate) fn glob_escape(prefix: &str) -> String {
    let mut out = String::with_capacity(prefix.len() + 4);
    for c in prefix.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// What an `#[invalidates]` template produced: one exact key, every key
/// that starts with a prefix, or a tag.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Pattern {
    /// Delete exactly this key.
    Exact(String),
    /// Delete every key that starts with this text (a template ending in `*`).
    Prefix(String),
    /// Invalidate every entry carrying this tag.
    Tag(String),
    /// Invalidate every tag starting with this text (a tag whose value
    /// could not be built: over-invalidating is safe, skipping is not).
    TagPrefix(String),
}

impl Pattern {
    /// Parses the manual API's pattern form: a trailing `*` means "every key
    /// under this prefix"; every other character is literal.
    pub fn parse(pattern: &str) -> Pattern {
        match pattern.strip_suffix('*') {
            Some(prefix) => Pattern::Prefix(prefix.to_owned()),
            None => Pattern::Exact(pattern.to_owned()),
        }
    }
}

/// Builds a key from a template's segments. Used by generated code.
///
/// A value that cannot be hashed does not abort building: the error is kept,
/// along with the literal prefix written before it, so an invalidation can
/// still clear conservatively everything under that prefix.
#[doc(hidden)]
pub struct KeyBuilder {
    buf: String,
    failed: Option<(usize, Error)>,
}

impl KeyBuilder {
    pub fn new(capacity: usize) -> Self {
        KeyBuilder {
            buf: String::with_capacity(capacity),
            failed: None,
        }
    }

    pub fn lit(&mut self, text: &'static str) -> &mut Self {
        self.buf.push_str(text);
        self
    }

    pub fn part<T: KeyPart + ?Sized>(&mut self, value: &T) -> &mut Self {
        value.write_key_part(&mut KeyWriter { out: &mut self.buf });
        self
    }

    pub fn hashed<T: Hashable + ?Sized>(&mut self, value: &T) -> &mut Self {
        match hash_key_part(value) {
            Ok(hash) => self.buf.push_str(&hash),
            Err(e) => {
                if self.failed.is_none() {
                    self.failed = Some((self.buf.len(), e));
                }
            }
        }
        self
    }

    /// The finished key of a `#[cached]` template.
    pub fn key(self) -> Result<String, Error> {
        match self.failed {
            None => Ok(self.buf),
            Some((_, e)) => Err(e),
        }
    }

    /// The finished tag of an `#[invalidates(tag = …)]` template; widens to
    /// every tag under the text before a value that could not be encoded.
    pub fn tag(self) -> (Pattern, Option<Error>) {
        self.finish(Pattern::Tag, Pattern::TagPrefix)
    }

    /// The finished pattern of an `#[invalidates]` template. When a value
    /// could not be encoded the pattern widens to everything under the text
    /// before it: over-invalidating is safe, skipping is not.
    pub fn pattern(self, wildcard: bool) -> (Pattern, Option<Error>) {
        let whole = if wildcard {
            Pattern::Prefix
        } else {
            Pattern::Exact
        };
        self.finish(whole, Pattern::Prefix)
    }

    /// `whole` of the finished text; when a value could not be encoded,
    /// `widened` of the text before it, with the error.
    fn finish(
        mut self,
        whole: fn(String) -> Pattern,
        widened: fn(String) -> Pattern,
    ) -> (Pattern, Option<Error>) {
        match self.failed.take() {
            None => (whole(self.buf), None),
            Some((at, e)) => {
                self.buf.truncate(at);
                (widened(self.buf), Some(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_values_encode_as_themselves() {
        assert_eq!(encode_key_part(&42u64), "42");
        assert_eq!(encode_key_part(&-7i32), "-7");
        assert_eq!(encode_key_part("user_name-1.2"), "user_name-1.2");
        assert_eq!(encode_key_part(&true), "true");
    }

    #[test]
    fn separators_and_globs_are_escaped() {
        assert_eq!(encode_key_part("a:b"), "a%3Ab");
        assert_eq!(encode_key_part("*?[]\\"), "%2A%3F%5B%5D%5C");
        assert_eq!(encode_key_part("100%"), "100%25");
        assert_eq!(encode_key_part("line\nbreak"), "line%0Abreak");
        assert_eq!(encode_key_part("é"), "%C3%A9");
        assert_eq!(encode_key_part("{tag}"), "%7Btag%7D");
    }

    #[test]
    fn options_never_collide() {
        let none = encode_key_part(&None::<&str>);
        let some_empty = encode_key_part(&Some(""));
        let some_tilde = encode_key_part(&Some("~"));
        let some_none = encode_key_part(&Some(None::<u8>));
        let all = [&none, &some_empty, &some_tilde, &some_none];
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                assert_ne!(a, b);
            }
        }
        assert_eq!(none, "~");
        assert_eq!(some_none, "~~");
    }

    #[test]
    fn hash_is_stable_and_short() {
        let a = hash_key_part("a very long search string").unwrap();
        assert_eq!(a.len(), 16);
        assert_eq!(a, hash_key_part("a very long search string").unwrap());
        assert_ne!(a, hash_key_part("another search string").unwrap());
    }

    #[test]
    fn glob_escape_makes_match_literal() {
        assert_eq!(glob_escape("explore?q=a[1]*"), "explore\\?q=a\\[1\\]\\*");
    }

    #[test]
    fn failed_hash_widens_pattern_to_prefix_before_it() {
        struct Unserializable;
        impl Serialize for Unserializable {
            fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
                Err(serde::ser::Error::custom("no"))
            }
        }
        let mut b = KeyBuilder::new(16);
        b.lit("search:")
            .part(&7u8)
            .lit(":")
            .hashed(&Unserializable)
            .lit(":x");
        let (pattern, err) = b.pattern(false);
        assert_eq!(pattern, Pattern::Prefix("search:7:".into()));
        assert!(err.is_some());
    }

    proptest::proptest! {
        /// Encoding is injective and never yields a separator or glob byte.
        #[test]
        fn encoding_is_injective_and_inert(a in ".*", b in ".*") {
            let (ea, eb) = (encode_key_part(a.as_str()), encode_key_part(b.as_str()));
            proptest::prop_assert_eq!(ea == eb, a == b);
            for c in [':', '*', '?', '[', ']', '\\', '\n', '{', '}', ' '] {
                proptest::prop_assert!(!ea.contains(c));
            }
        }
    }
}
