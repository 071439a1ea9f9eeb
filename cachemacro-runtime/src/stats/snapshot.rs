//! The snapshot's public side: reading [`Stats`], and its serde shape.
//!
//! JSON (with `serde_json`): the totals as fields, `hit_ratio`, the
//! manual API's figures under `manual`, and `families` as a map from
//! template to that family's figures, each with its `kind` and
//! `hit_ratio`:
//!
//! ```json
//! { "hits": 9, "misses": 1, …, "hit_ratio": 0.9,
//!   "manual": { "hits": 0, "misses": 60, … },
//!   "families": { "user-collections:<user_id>": { "kind": "cached", "hits": 9, …, "hit_ratio": 0.9 } } }
//! ```

use serde::ser::{Serialize, SerializeMap, SerializeStruct, Serializer};

use super::{COUNTERS, FamilyStats, Stats};

/// What a family's template is: a `#[cached]` key (or a
/// [`get_or_load`](crate::Cache::get_or_load) family), or only an
/// `#[invalidates]` pattern.
///
/// ```
/// use cachemacro_runtime::FamilyKind;
///
/// assert_eq!(serde_json::to_string(&FamilyKind::Invalidation).unwrap(), r#""invalidation""#);
/// ```
///
/// ## Behavior
///
/// A pattern written exactly like a cached key (`#[invalidates("user:<id>")]`
/// over `#[cached(key = "user:<id>")]`) shares that family's counters: its
/// invalidations count beside the reads, and the kind is `Cached` as soon as
/// one cached call has counted. A pattern written otherwise
/// (`"sets:user:<set.user_id>:*"`) is a family of its own, `Invalidation`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum FamilyKind {
    /// A cached family: reads, loads and stores count here.
    #[default]
    Cached,
    /// An invalidation pattern no cached call counted under.
    Invalidation,
}

/// What the manual API ([`Cache::get`](crate::Cache::get), `get_many`,
/// `set`, `set_many`, `set_if_absent`, `incr`) counted, kept out of the
/// totals of [`Stats`]; see [`Stats::manual`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct ManualStats {
    /// Reads that found a usable value.
    pub hits: u64,
    /// Reads that found nothing usable.
    pub misses: u64,
    /// Values written.
    pub stores: u64,
    /// Backend failures and timeouts of these calls.
    pub errors: u64,
    /// Stored bytes that did not decode as the type asked for (counted as
    /// misses too).
    pub decode_errors: u64,
    /// Entries read from Redis that this instance did not trust after an
    /// outage (read as misses).
    pub distrusted: u64,
    /// Calls refused with [`Error::InvalidationsPending`](crate::Error::InvalidationsPending).
    pub bypassed: u64,
}

impl From<&FamilyStats> for ManualStats {
    fn from(f: &FamilyStats) -> Self {
        ManualStats {
            hits: f.hits,
            misses: f.misses,
            stores: f.stores,
            errors: f.errors,
            decode_errors: f.decode_errors,
            distrusted: f.distrusted,
            bypassed: f.bypassed,
        }
    }
}

impl ManualStats {
    /// `hits / (hits + misses)`, or `None` before any read.
    pub fn hit_ratio(&self) -> Option<f64> {
        ratio(self.hits, self.misses)
    }
}

fn ratio(hits: u64, misses: u64) -> Option<f64> {
    let reads = hits + misses;
    (reads > 0).then(|| hits as f64 / reads as f64)
}

impl FamilyStats {
    /// `hits / (hits + misses)`, or `None` before any read (an invalidation
    /// pattern's is always `None`).
    pub fn hit_ratio(&self) -> Option<f64> {
        ratio(self.hits, self.misses)
    }
}

impl Stats {
    /// The figures for one key family, by its template as written in the
    /// attribute (`"user-collections:<user_id>"`); `None` if this cache has
    /// not served that family.
    pub fn family(&self, template: &str) -> Option<FamilyStats> {
        self.families.get(template).copied()
    }

    /// Every family this cache has counted, cached or invalidation, by template.
    pub fn families(&self) -> impl Iterator<Item = (&str, &FamilyStats)> {
        self.families.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// The cached families ([`FamilyKind::Cached`]), by template.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use std::time::Duration;
    /// use cachemacro_runtime::{Cache, EntryOptions};
    ///
    /// let cache = Cache::memory();
    /// let options = EntryOptions::new(Duration::from_secs(60)).family("page:<path>");
    /// let _: Result<String, String> = cache.get_or_load("page:/", &options, || async { Ok("<html>".into()) }).await;
    /// let stats = cache.stats();
    /// let names: Vec<&str> = stats.cached_families().map(|(t, _)| t).collect();
    /// assert_eq!(names, ["page:<path>"]);
    /// assert_eq!(stats.invalidation_patterns().count(), 0);
    /// # }
    /// ```
    pub fn cached_families(&self) -> impl Iterator<Item = (&str, &FamilyStats)> {
        self.families()
            .filter(|(_, f)| f.kind == super::FamilyKind::Cached)
    }

    /// The invalidation patterns no cached call counted under
    /// ([`FamilyKind::Invalidation`]), by template.
    pub fn invalidation_patterns(&self) -> impl Iterator<Item = (&str, &FamilyStats)> {
        self.families()
            .filter(|(_, f)| f.kind == super::FamilyKind::Invalidation)
    }

    /// `hits / (hits + misses)` of the cached calls, or `None` before any
    /// read. The manual API's reads are not in it (see [`Stats::manual`]).
    pub fn hit_ratio(&self) -> Option<f64> {
        ratio(self.hits, self.misses)
    }
}

/// A family's figures: `kind`, every counter, and `hit_ratio`.
impl Serialize for FamilyStats {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("FamilyStats", COUNTERS + 2)?;
        s.serialize_field("kind", &self.kind)?;
        for (name, figure) in self.figures() {
            s.serialize_field(name, &figure)?;
        }
        s.serialize_field("hit_ratio", &self.hit_ratio())?;
        s.end()
    }
}

/// The totals as fields, `hit_ratio`, `manual`, and `families` by template.
impl Serialize for Stats {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("Stats", COUNTERS + 3)?;
        for (name, figure) in self.totals().figures() {
            s.serialize_field(name, &figure)?;
        }
        s.serialize_field("hit_ratio", &self.hit_ratio())?;
        s.serialize_field("manual", &self.manual)?;
        s.serialize_field("families", &Families(self))?;
        s.end()
    }
}

/// `families` as a map, in template order.
struct Families<'a>(&'a Stats);

impl Serialize for Families<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.families.len()))?;
        for (template, figures) in &self.0.families {
            map.serialize_entry(template, figures)?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::super::StatsRegistry;
    use super::*;

    #[test]
    fn json_shape_keeps_kinds_and_ratios() {
        let registry = StatsRegistry::default();
        let cached = registry.recorder("user:<id>", FamilyKind::Cached);
        cached.add(|c| &c.hits, 3);
        cached.add(|c| &c.misses, 1);
        registry
            .recorder("user:<id>", FamilyKind::Invalidation)
            .record_invalidation(true);
        registry
            .recorder("sets:user:<set.user_id>:*", FamilyKind::Invalidation)
            .record_invalidation(true);
        registry.manual().add(|c| &c.misses, 5);
        let stats = registry.snapshot();
        let json = serde_json::to_value(&stats).unwrap();
        assert_eq!(json["hits"], 3);
        assert_eq!(json["invalidations"], 2);
        assert_eq!(json["hit_ratio"], 0.75);
        assert_eq!(json["manual"]["misses"], 5);
        let user = &json["families"]["user:<id>"];
        assert_eq!(user["kind"], "cached", "read and invalidated: cached");
        assert_eq!(
            (user["invalidations"].clone(), user["hit_ratio"].clone()),
            (1.into(), 0.75.into())
        );
        let sets = &json["families"]["sets:user:<set.user_id>:*"];
        assert_eq!(sets["kind"], "invalidation");
        assert!(sets["hit_ratio"].is_null());
        let cached: Vec<_> = stats.cached_families().map(|(t, _)| t).collect();
        let patterns: Vec<_> = stats.invalidation_patterns().map(|(t, _)| t).collect();
        assert_eq!(
            (cached, patterns),
            (vec!["user:<id>"], vec!["sets:user:<set.user_id>:*"])
        );
        assert_eq!(stats.family("user:<id>").unwrap().hit_ratio(), Some(0.75));
    }
}
