//! A cache's namespace: how logical keys, prefixes and tags become the
//! full keys a store sees.

use crate::key::Pattern;

/// Where tag versions live, under the namespace.
const TAG_PREFIX: &str = "__cachemacro:tag:";

/// Empty, or the namespace followed by `:`.
#[derive(Debug, Clone, Default)]
pub(crate) struct Namespace(String);

impl Namespace {
    pub(crate) fn new(name: &str) -> Namespace {
        if name.is_empty() {
            Namespace(String::new())
        } else {
            Namespace(format!("{name}:"))
        }
    }

    /// The prefix every full key starts with (`shop:`, or empty).
    pub(crate) fn prefix(&self) -> &str {
        &self.0
    }

    /// The full key of a logical key.
    pub(crate) fn key(&self, key: &str) -> String {
        let mut full = String::with_capacity(self.0.len() + key.len());
        full.push_str(&self.0);
        full.push_str(key);
        full
    }

    /// The full key of a tag's version.
    pub(crate) fn tag(&self, tag: &str) -> String {
        format!("{}{TAG_PREFIX}{tag}", self.0)
    }

    /// A logical key, prefix or tag as the full key or prefix to delete:
    /// invalidating a tag deletes its version.
    pub(crate) fn target(&self, pattern: &Pattern) -> Pattern {
        match pattern {
            Pattern::Exact(k) => Pattern::Exact(self.key(k)),
            Pattern::Prefix(p) => Pattern::Prefix(self.key(p)),
            Pattern::Tag(t) => Pattern::Exact(self.tag(t)),
            Pattern::TagPrefix(p) => Pattern::Prefix(self.tag(p)),
        }
    }
}
