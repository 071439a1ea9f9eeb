//! [`EntryOptions`]: what `#[cached]` can say about an entry, as a value
//! built at run time.

use std::borrow::Cow;
use std::time::Duration;

use crate::stats::FamilySlot;

/// How [`Cache::get_or_load`](crate::Cache::get_or_load) caches one entry:
/// everything a `#[cached]` attribute can say, built at run time. Cheap to
/// clone; build it once and reuse it.
///
/// ```
/// use std::time::Duration;
/// use cachemacro_runtime::EntryOptions;
///
/// let options = EntryOptions::new(Duration::from_secs(300))
///     .tags(["catalog"])
///     .stale(Duration::from_secs(60))
///     .family("search:<query>");
/// ```
///
/// ## Behavior
///
/// Out-of-range numbers are clamped, never a panic: a negative or
/// non-finite `beta` turns early refresh off; `jitter` is kept within
/// `0.0..=0.9`; a duration longer than [`EntryOptions::LONGEST`] (100
/// years, "forever" for a cache) is that long.
#[derive(Debug, Clone)]
pub struct EntryOptions {
    pub(crate) ttl: Duration,
    pub(crate) none_ttl: Option<Duration>,
    pub(crate) tags: Vec<String>,
    pub(crate) stale: Option<Duration>,
    pub(crate) fail_safe: Option<Duration>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) hard_timeout: Option<Duration>,
    pub(crate) lock: Option<bool>,
    pub(crate) beta: Option<f64>,
    pub(crate) jitter: Option<f64>,
    /// `Some(false)`: skip the in-process tier; `None`: the cache's setting.
    pub(crate) local: Option<bool>,
    /// The longest an entry may live in the in-process tier.
    pub(crate) local_ttl: Option<Duration>,
    pub(crate) family: Cow<'static, str>,
    /// The family's counters, found once per cache (see `stats.rs`).
    pub(crate) counters: FamilySlot,
}

/// Every setting; not the counters, which are bookkeeping. Destructured so
/// that a new field cannot be left out (and tuples compare only up to 12).
impl PartialEq for EntryOptions {
    fn eq(&self, other: &Self) -> bool {
        let EntryOptions {
            ttl,
            none_ttl,
            tags,
            stale,
            fail_safe,
            timeout,
            hard_timeout,
            lock,
            beta,
            jitter,
            local,
            local_ttl,
            family,
            counters: _,
        } = self;
        *ttl == other.ttl
            && *none_ttl == other.none_ttl
            && *tags == other.tags
            && *stale == other.stale
            && *fail_safe == other.fail_safe
            && *timeout == other.timeout
            && *hard_timeout == other.hard_timeout
            && *lock == other.lock
            && *beta == other.beta
            && *jitter == other.jitter
            && *local == other.local
            && *local_ttl == other.local_ttl
            && *family == other.family
    }
}

/// A duration no longer than [`EntryOptions::LONGEST`].
const fn capped(d: Duration) -> Duration {
    if d.as_secs() > EntryOptions::LONGEST.as_secs() {
        EntryOptions::LONGEST
    } else {
        d
    }
}

const fn capped_opt(d: Option<Duration>) -> Option<Duration> {
    match d {
        Some(d) => Some(capped(d)),
        None => None,
    }
}

impl EntryOptions {
    /// The longest any duration of these options is taken to be (100
    /// years): sums of TTLs, grace and leases then never overflow a clock.
    pub const LONGEST: Duration = Duration::from_secs(100 * 365 * 86_400);

    /// Entries live `ttl` (fresh), with every other setting at the cache's
    /// default.
    pub fn new(ttl: Duration) -> Self {
        EntryOptions {
            ttl: capped(ttl),
            none_ttl: None,
            tags: Vec::new(),
            stale: None,
            fail_safe: None,
            timeout: None,
            hard_timeout: None,
            lock: None,
            beta: None,
            jitter: None,
            local: None,
            local_ttl: None,
            family: Cow::Borrowed(""),
            counters: FamilySlot::new(),
        }
    }

    /// What a `#[cached]` attribute said, as a `static`. Generated code only.
    #[doc(hidden)]
    #[allow(clippy::too_many_arguments)]
    pub const fn __attribute(
        template: &'static str,
        ttl: Duration,
        none_ttl: Option<Duration>,
        stale: Option<Duration>,
        fail_safe: Option<Duration>,
        timeout: Option<Duration>,
        hard_timeout: Option<Duration>,
        lock: Option<bool>,
        beta: Option<f64>,
        jitter: Option<f64>,
        local: Option<bool>,
        local_ttl: Option<Duration>,
    ) -> Self {
        EntryOptions {
            ttl: capped(ttl),
            none_ttl: capped_opt(none_ttl),
            tags: Vec::new(),
            stale: capped_opt(stale),
            fail_safe: capped_opt(fail_safe),
            timeout: capped_opt(timeout),
            hard_timeout: capped_opt(hard_timeout),
            lock,
            beta,
            jitter,
            local,
            local_ttl: capped_opt(local_ttl),
            family: Cow::Borrowed(template),
            counters: FamilySlot::new(),
        }
    }

    /// Tags the entry carries: [`Cache::invalidate_tag`](crate::Cache::invalidate_tag)
    /// of any of them makes it a miss.
    pub fn tags(mut self, tags: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.tags = tags.into_iter().map(Into::into).collect();
        self
    }

    /// Stores a `None` (of an `Option`, or an `Ok(None)`) for this long; without
    /// it a `None` is not stored.
    pub fn none_ttl(mut self, ttl: Duration) -> Self {
        self.none_ttl = Some(capped(ttl));
        self
    }

    /// Serves an entry up to this long past its freshness while one
    /// background refresh runs.
    pub fn stale(mut self, window: Duration) -> Self {
        self.stale = Some(capped(window));
        self
    }

    /// Serves an entry up to this long past its freshness when the load
    /// fails or passes its hard timeout.
    pub fn fail_safe(mut self, window: Duration) -> Self {
        self.fail_safe = Some(capped(window));
        self
    }

    /// With an old value to serve, how long a caller waits for a load before
    /// it gets the old value (the load goes on in the background).
    pub fn timeout(mut self, after: Duration) -> Self {
        self.timeout = Some(capped(after));
        self
    }

    /// How long a load may take at all; see
    /// [`Cache::get_or_load_timed`](crate::Cache::get_or_load_timed).
    pub fn hard_timeout(mut self, after: Duration) -> Self {
        self.hard_timeout = Some(capped(after));
        self
    }

    /// Whether a miss waits for another process's load of the same key
    /// instead of loading too (default: the cache's, `false`).
    pub fn lock(mut self, on: bool) -> Self {
        self.lock = Some(on);
        self
    }

    /// XFetch's β: how eagerly a hot entry is refreshed before it expires
    /// (default: the cache's, 1.0; 0 turns early refresh off).
    pub fn beta(mut self, beta: f64) -> Self {
        self.beta = Some(if beta.is_finite() && beta > 0.0 {
            beta
        } else {
            0.0
        });
        self
    }

    /// Shortens each entry's TTL by a random part of up to this fraction
    /// (`0.1` is 10%), so entries written together expire apart.
    pub fn jitter(mut self, fraction: f64) -> Self {
        self.jitter = Some(if fraction.is_finite() {
            fraction.clamp(0.0, 0.9)
        } else {
            0.0
        });
        self
    }

    /// Whether the entry may be kept in the cache's in-process tier, in
    /// front of Redis (default: the cache's setting). `false` is for data
    /// that must be fresh across instances, as an in-process copy can
    /// outlive another instance's write. Caches without an in-process tier
    /// ignore it.
    pub fn local(mut self, on: bool) -> Self {
        self.local = Some(on);
        self
    }

    /// The longest the entry lives in the in-process tier, however long
    /// its TTL: bounds how stale an in-process copy can get after another
    /// instance changes it. Caches without an in-process tier ignore it.
    pub fn local_ttl(mut self, cap: Duration) -> Self {
        self.local_ttl = Some(capped(cap));
        self
    }

    /// The name statistics count this entry under
    /// ([`Stats::family`](crate::Stats::family)): a template such as
    /// `"report:<id>"`, never the key itself. Without it, only the cache's
    /// totals count.
    pub fn family(mut self, family: impl Into<Cow<'static, str>>) -> Self {
        self.family = family.into();
        self.counters = FamilySlot::new();
        self
    }

    /// How long entries are kept past their freshness.
    pub(crate) fn grace(&self) -> Duration {
        self.stale
            .unwrap_or_default()
            .max(self.fail_safe.unwrap_or_default())
    }

    /// Whether the in-process tier may keep this entry: unless `local(false)`.
    pub(crate) fn local_allowed(&self) -> bool {
        self.local != Some(false)
    }

    /// The cap on this entry's life in the in-process tier, if any.
    pub(crate) fn local_ttl_cap(&self) -> Option<Duration> {
        self.local_ttl
    }

    /// The statistics family, `""` when none was given.
    pub(crate) fn family_name(&self) -> &str {
        &self.family
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_tier_settings() {
        let ttl = Duration::from_secs(60);
        let default = EntryOptions::new(ttl);
        assert!(default.local_allowed());
        assert_eq!(default.local_ttl_cap(), None);

        assert!(EntryOptions::new(ttl).local(true).local_allowed());
        assert!(!EntryOptions::new(ttl).local(false).local_allowed());

        let capped = EntryOptions::new(ttl).local_ttl(Duration::MAX);
        assert_eq!(capped.local_ttl_cap(), Some(EntryOptions::LONGEST));
        let attribute = EntryOptions::__attribute(
            "",
            ttl,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            Some(false),
            Some(Duration::MAX),
        );
        assert!(!attribute.local_allowed());
        assert_eq!(attribute.local_ttl_cap(), Some(EntryOptions::LONGEST));
    }

    #[test]
    fn local_tier_settings_count_for_equality() {
        let ttl = Duration::from_secs(60);
        let thirty = Duration::from_secs(30);
        assert_ne!(EntryOptions::new(ttl), EntryOptions::new(ttl).local(false));
        assert_ne!(
            EntryOptions::new(ttl).local(true),
            EntryOptions::new(ttl).local(false)
        );
        assert_ne!(
            EntryOptions::new(ttl),
            EntryOptions::new(ttl).local_ttl(thirty)
        );
        assert_eq!(
            EntryOptions::new(ttl).local(true).local_ttl(thirty),
            EntryOptions::new(ttl).local(true).local_ttl(thirty)
        );
    }
}
