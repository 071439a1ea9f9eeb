//! The registry over a realistic service: the reads and writes of the
//! image-generation site whose cache audit listed, per user action, the keys
//! it must clear. Every `#[cached]` and `#[invalidates]` linked into this
//! test binary is one of the functions below, so the checks and the map are
//! exact. One write has a typo, as in the audit: `user-collection:<user_id>`.

use std::time::Duration;

use cachemacro_runtime::registry::{self, Problem, Warning};
use cachemacro_runtime::{Cache, KeyPart, cached, invalidates};
use serde::{Deserialize, Serialize};

#[derive(Clone, Serialize, Deserialize)]
struct Set {
    id: u64,
    user_id: u64,
}

// ---------------------------------------------------------------- reads

#[cached(key = "user-login:<user_id>", ttl = "1h", tags = ["user:<user_id>"], cache = cache)]
async fn user_login(cache: &Cache, user_id: u64) -> String {
    format!("user {user_id}")
}

#[cached(key = "user-profile:<user_id>:<page>:<page_size>", ttl = "30m", tags = ["user:<user_id>"], cache = cache)]
async fn user_profile(cache: &Cache, user_id: u64, page: u32, page_size: u32) -> Vec<u64> {
    vec![user_id, u64::from(page * page_size)]
}

#[cached(key = "user-collections:<user_id>", ttl = "1h", cache = cache)]
async fn user_collections(cache: &Cache, user_id: u64) -> Vec<u64> {
    vec![user_id]
}

/// Every (prompt, model) filter is its own entry.
#[cached(key = "sets:user:<user_id>:<prompt>:<model>", ttl = "1h", cache = cache)]
async fn user_sets(
    cache: &Cache,
    user_id: u64,
    prompt: Option<&str>,
    model: Option<&str>,
) -> Vec<u64> {
    let _ = (prompt, model);
    vec![user_id]
}

#[cached(key = "set:<set_id>", ttl = "1h", cache = cache)]
async fn set(cache: &Cache, set_id: u64) -> Option<Set> {
    Some(Set {
        id: set_id,
        user_id: 1,
    })
}

/// Short-lived on purpose: search results may lag by five minutes.
#[cached(key = "explore-images?q=<query:hash>&page=<page>", ttl = "5m", cache = cache)]
async fn explore_images(cache: &Cache, query: &str, page: u32) -> Vec<u64> {
    vec![query.len() as u64, u64::from(page)]
}

/// Forgotten: liking an image clears nothing (a warning).
#[cached(key = "liked-images:user:<user_id>", ttl = "1h", cache = cache)]
async fn liked_images(cache: &Cache, user_id: u64) -> Vec<u64> {
    vec![user_id]
}

/// Generic: registered once, however many types it is used with.
#[cached(key = "pages:<owner>", ttl = "5m", cache = cache)]
async fn page_count<O: KeyPart + Send + Sync>(cache: &Cache, owner: O) -> u64 {
    let _ = owner;
    3
}

struct Images {
    cache: Cache,
}

impl Images {
    #[cached(key = "image-details:<image_id>", ttl = "1h", cache = self.cache)]
    async fn image_details(&self, image_id: u64) -> String {
        format!("image {image_id}")
    }

    #[invalidates("image-details:<image_id>", cache = self.cache)]
    async fn add_comment(&self, image_id: u64, text: &str) {
        let _ = (image_id, text);
    }
}

// ---------------------------------------------------------------- writes

#[invalidates("user-collections:<user_id>", cache = cache)]
async fn add_image_to_collection(cache: &Cache, user_id: u64, image_id: u64) {
    let _ = (user_id, image_id);
}

/// The typo: one `s` short, so it clears nothing.
#[invalidates("user-collection:<user_id>", cache = cache)]
async fn remove_image_from_collection(cache: &Cache, user_id: u64, image_id: u64) {
    let _ = (user_id, image_id);
}

#[invalidates("sets:user:<set.user_id>:*", "set:<set.id>", cache = cache)]
async fn delete_set(cache: &Cache, set: &Set) {
    let _ = set;
}

/// Image generation creates a set: every filtered list of the user's sets.
#[invalidates("sets:user:<user_id>:*", cache = cache)]
async fn generate_image(cache: &Cache, user_id: u64, prompt: &str) {
    let _ = (user_id, prompt);
}

/// The login data and every profile page carry the user's tag.
#[invalidates(tag = "user:<user_id>", before = true, cache = cache)]
async fn update_username(cache: &Cache, user_id: u64, name: &str) {
    let _ = (user_id, name);
}

// ---------------------------------------------------------------- checks

const MAP: &str = "\
| Action | Clears | Cached functions affected |
|---|---|---|
| `add_comment` | `image-details:<image_id>` | `image_details` (`image-details:<image_id>`) |
| `add_image_to_collection` | `user-collections:<user_id>` | `user_collections` (`user-collections:<user_id>`) |
| `delete_set` | `sets:user:<set.user_id>:*`, `set:<set.id>` | `set` (`set:<set_id>`), `user_sets` (`sets:user:<user_id>:<prompt>:<model>`) |
| `generate_image` | `sets:user:<user_id>:*` | `user_sets` (`sets:user:<user_id>:<prompt>:<model>`) |
| `remove_image_from_collection` | `user-collection:<user_id>` **(matches nothing)** | none |
| `update_username` (before and after) | tag `user:<user_id>` | `user_login` (`user-login:<user_id>`), `user_profile` (`user-profile:<user_id>:<page>:<page_size>`) |

Cached functions nothing invalidates (they expire by TTL only):

| Cached function | Key | TTL |
|---|---|---|
| `explore_images` | `explore-images?q=<query:hash>&page=<page>` | 5m |
| `liked_images` | `liked-images:user:<user_id>` | 1h |
| `page_count` | `pages:<owner>` | 5m |
";

#[test]
fn the_typo_is_the_only_error() {
    let err = registry::verify_with(Duration::from_secs(10 * 60)).unwrap_err();
    let [
        Problem::PatternMatchesNothing {
            invalidator,
            pattern,
            nearest,
            ..
        },
    ] = err.problems.as_slice()
    else {
        panic!("expected exactly the typo, got:\n{err}");
    };
    assert_eq!(
        invalidator.function(),
        "registry::remove_image_from_collection"
    );
    assert_eq!(invalidator.file(), "tests/registry.rs");
    assert_eq!(*pattern, "user-collection:<user_id>");
    assert_eq!(*nearest, Some("user-collections:<user_id>"));

    let warned: Vec<_> = err
        .report
        .warnings
        .iter()
        .map(|w| match w {
            Warning::NotInvalidated(f) => f.function(),
            other => panic!("unexpected warning {other:?}"),
        })
        .collect();
    assert_eq!(warned, ["registry::liked_images"]);
    assert_eq!((err.report.cached, err.report.invalidators), (9, 6));

    let text = err.to_string();
    println!("{text}");
    assert!(text.starts_with("cache wiring is broken: 1 error, 1 warning"));
    let line = format!(
        "- [ ] `registry::remove_image_from_collection` (tests/registry.rs:{}): \
         pattern `user-collection:<user_id>` clears no cached key; did you mean `user-collections:<user_id>`?",
        invalidator.line()
    );
    assert!(text.contains(&line), "{text}");
    assert!(text.contains("`registry::liked_images` (tests/registry.rs:"));
}

#[test]
fn the_default_threshold_is_ten_minutes() {
    let err = registry::verify().unwrap_err();
    assert_eq!(err.report.threshold, Duration::from_secs(600));
    assert_eq!(err.report.warnings.len(), 1);
}

#[test]
fn the_threshold_picks_the_warnings() {
    let strict = registry::verify_with(Duration::ZERO).unwrap_err();
    let warned: Vec<_> = strict
        .report
        .warnings
        .iter()
        .map(|w| match w {
            Warning::NotInvalidated(f) => f.template(),
            other => panic!("unexpected warning {other:?}"),
        })
        .collect();
    assert_eq!(
        warned,
        [
            "explore-images?q=<query:hash>&page=<page>",
            "liked-images:user:<user_id>",
            "pages:<owner>",
        ]
    );
    let lax = registry::verify_with(Duration::from_secs(2 * 3600)).unwrap_err();
    assert!(lax.report.warnings.is_empty());
}

#[test]
fn the_map_shows_which_write_clears_which_read() {
    assert_eq!(registry::invalidation_map(), MAP);
}

#[test]
fn views_expose_the_registrations() {
    let delete = registry::invalidators()
        .find(|i| i.function() == "registry::delete_set")
        .unwrap();
    assert_eq!(
        delete.patterns(),
        ["sets:user:<set.user_id>:*", "set:<set.id>"]
    );
    let cleared: Vec<_> = registry::cached_families()
        .filter(|f| delete.clears(f))
        .map(|f| f.function())
        .collect();
    assert_eq!(cleared, ["registry::set", "registry::user_sets"]);

    let profile = registry::cached_families()
        .find(|f| f.function() == "registry::user_profile")
        .unwrap();
    assert_eq!(profile.tags(), ["user:<user_id>"]);
    assert_eq!(profile.ttl(), Duration::from_secs(30 * 60));
    assert!(registry::invalidators().any(|i| i.before() && i.clears(&profile)));
}

#[tokio::test]
async fn a_generic_function_registers_once() {
    let cache = Cache::memory();
    assert_eq!(page_count(&cache, 7u64).await, 3);
    assert_eq!(page_count(&cache, "ann".to_string()).await, 3);
    // Counted before the registry's own deduplication.
    let registrations = cachemacro_runtime::__private::inventory::iter::<
        cachemacro_runtime::__private::Registration,
    >
        .into_iter()
        .filter(|r| {
            matches!(r, cachemacro_runtime::__private::Registration::Cached(site)
            if site.function == "registry::page_count")
        })
        .count();
    assert_eq!(registrations, 1);
}

/// Compiles every function (and uses it, so none is dead code).
#[tokio::test]
async fn the_functions_run() {
    let cache = Cache::memory();
    let images = Images {
        cache: cache.clone(),
    };
    let set_1 = set(&cache, 1).await.unwrap();
    user_login(&cache, 1).await;
    user_profile(&cache, 1, 0, 20).await;
    user_collections(&cache, 1).await;
    user_sets(&cache, 1, Some("cat"), None).await;
    explore_images(&cache, "cat in space", 0).await;
    liked_images(&cache, 1).await;
    images.image_details(10).await;
    images.add_comment(10, "nice").await;
    add_image_to_collection(&cache, 1, 10).await;
    remove_image_from_collection(&cache, 1, 10).await;
    delete_set(&cache, &set_1).await;
    generate_image(&cache, 1, "dog").await;
    update_username(&cache, 1, "ann").await;
    assert_eq!(set_1.id, 1);
}
