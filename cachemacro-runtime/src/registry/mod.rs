//! The registry: every `#[cached]` and `#[invalidates]` in the program,
//! collected at link time, so that the wiring between writes and reads can
//! be printed and checked.
//!
//! Each attributed function registers its path, key template, tags, TTL and
//! `file:line` as static data when the program is linked: nothing runs at
//! startup and nothing is registered by calling the function.
//!
//! ## The wiring check
//!
//! Add one test to the crate that defines your cached functions:
//!
//! ```rust,standalone_crate
//! #[test]
//! fn cache_wiring() { cachemacro_runtime::registry::verify().unwrap(); }
//! # fn main() { cachemacro_runtime::registry::verify().unwrap(); }
//! ```
//!
//! [`verify`] fails, naming each `function (file:line)`, when
//!
//! * an `#[invalidates]` key pattern can clear no key that any `#[cached]`
//!   function builds, or an invalidated tag is carried by no `#[cached]`
//!   function: a typo such as `user-collection:<user_id>` for
//!   `user-collections:<user_id>` would otherwise serve stale data until the
//!   TTL runs out;
//! * two different `#[cached]` functions can build the same key: one would be
//!   served the other's value.
//!
//! It also lists, as warnings (in the [`Report`], and in the
//! [`VerifyError`] when there are errors too), every cached function that
//! nothing invalidates and whose TTL is longer than
//! [`DEFAULT_TTL_THRESHOLD`] (10 minutes): short-lived entries are often
//! meant to expire by time alone, an hour-long one rarely is. Choose your own
//! threshold with [`verify_with`].
//!
//! Put the test in the crate that defines the functions, as a unit test (in
//! `src/lib.rs` or `src/main.rs`): the registry holds what is linked into the
//! test binary, and a unit test links all of its crate, while a file under
//! `tests/` that calls nothing from the library links none of it. When reads
//! and writes live in different crates, put it in a crate that uses both.
//!
//! ## Behavior
//!
//! Templates are compared as the sets of keys they can build, not as text:
//!
//! * Placeholder names do not matter: `set:<set.id>` clears `set:<set_id>`.
//! * A placeholder stands for any encoded value: any run of ASCII letters,
//!   digits, `.`, `_`, `-`, `~` and `%` (escapes), possibly empty, and never
//!   a `:` or any other character the encoding escapes. A `<name:hash>` is
//!   exactly 16 lowercase hex digits.
//! * Every other character, `{`, `}` and `?` included, is itself.
//! * A pattern without `*` must build a whole key: `user:<id>` does not clear
//!   `user:<id>:profile`. A trailing `*` clears every key that starts with
//!   the rest: `user:<id>*` does.
//! * Tags match the same way, whole tag against whole tag.
//!
//! A placeholder is assumed to hold any encoded value, whatever its
//! parameter's type. So a pattern counts as matching a family when some
//! values would make it clear one of its keys, and two families collide when
//! some values would make their keys equal: `user:<id>` and `user:me`
//! collide, since `<id>` could be the string `me`; give one of them a prefix
//! of its own. Which [`Cache`](crate::Cache) each function uses (`cache =
//! …`) is not compared, only keys and tags.
//!
//! ## The invalidation map
//!
//! [`invalidation_map`] prints which write clears which read, as a Markdown
//! table to commit next to the code and review in diffs.

// The `#[test]` above is the line users copy; a hidden `main` runs the call.
#![allow(clippy::test_attr_in_doctest)]

// One file a concern, used one way only: `matching` (templates as
// languages) <- `families` (what was registered) <- `verify` (the check) <-
// `checklist` (its text) <- `map` (the Markdown table). None uses this file.
mod checklist;
mod families;
mod map;
mod matching;
mod verify;

pub use families::{CachedFamily, Invalidator, Registration, cached_families, invalidators};
pub use map::invalidation_map;
pub use verify::{
    DEFAULT_TTL_THRESHOLD, Problem, Report, VerifyError, Warning, verify, verify_with,
};
