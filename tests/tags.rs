//! Tags: one invalidation clears every entry that carries a tag, in a
//! constant number of round trips, and tags add no round trip to a hit.

use std::time::Duration;

use cachemacro_runtime::{Cache, cached, invalidates};
use cachemacro_tests::{Backend, RedisServer, on_every_backend};
use futures::StreamExt;

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("database error")]
struct DbError;

const PROFILE: &str = "user-profile:<user_id>:<page>:<page_size>";
const FEED: &str = "following-feed:<user_id>:<page>";

#[cached(key = "user-profile:<user_id>:<page>:<page_size>", ttl = "30m", tags = ["user:<user_id>"], cache = cache)]
async fn user_profile(cache: &Cache, user_id: &str, page: u32, page_size: u32) -> Vec<String> {
    vec![format!("{user_id} page {page} of {page_size}")]
}

#[cached(key = "following-feed:<user_id>:<page>", ttl = "30m", tags = ["user:<user_id>", "feed"], cache = cache)]
async fn following_feed(cache: &Cache, user_id: &str, page: u32) -> Vec<String> {
    vec![format!("feed of {user_id}, page {page}")]
}

#[invalidates(tag = "user:<user_id>", cache = cache)]
async fn update_username(cache: &Cache, user_id: &str, fail: bool) -> Result<(), DbError> {
    if fail { Err(DbError) } else { Ok(()) }
}

/// Mixes a key pattern and a tag in one attribute.
#[invalidates("user-profile:<user_id>:*", tag = "feed", cache = cache)]
async fn generate_image(cache: &Cache, user_id: &str) {
    let _ = user_id;
}

/// A write that may fail halfway: clears before the body too.
#[invalidates("user-profile:<user_id>:*", before = true, cache = cache)]
async fn risky_import(cache: &Cache, user_id: &str) -> Result<(), DbError> {
    let _ = user_id;
    Err(DbError)
}

fn loads(cache: &Cache, family: &str) -> u64 {
    cache.stats().family(family).map_or(0, |f| f.loads)
}

/// `hostile` user ids must be tagged as safely as they are keyed.
const USERS: [&str; 3] = ["1", "11", "ann:*?[x]"];

async fn fill(cache: &Cache) {
    for user in USERS {
        for page in 0..5 {
            user_profile(cache, user, page, 20).await;
        }
        following_feed(cache, user, 0).await;
    }
}

async fn a_tag_clears_every_entry_that_carries_it(b: Backend) {
    let c = &b.cache;
    fill(c).await;
    fill(c).await;
    assert_eq!(loads(c, PROFILE), 15, "second round all hits");

    update_username(c, "ann:*?[x]", false).await.unwrap();
    fill(c).await;
    assert_eq!(
        loads(c, PROFILE),
        20,
        "all 5 pages of that user reload, no one else's"
    );
    assert_eq!(loads(c, FEED), 4, "and the feed tagged with the same user");

    assert_eq!(update_username(c, "1", true).await, Err(DbError));
    fill(c).await;
    assert_eq!(loads(c, PROFILE), 20, "a failed write invalidates nothing");
}

async fn patterns_and_tags_mix_in_one_attribute(b: Backend) {
    let c = &b.cache;
    fill(c).await;
    generate_image(c, "1").await;
    fill(c).await;
    assert_eq!(
        loads(c, PROFILE),
        15 + 5,
        "user 1's profile pages by pattern"
    );
    assert_eq!(loads(c, FEED), 3 + 3, "every feed by the `feed` tag");
}

async fn manual_reads_respect_tags(b: Backend) {
    let c = &b.cache;
    user_profile(c, "1", 0, 20).await;
    let key = "user-profile:1:0:20";
    assert!(c.get::<Vec<String>>(key).await.unwrap().is_some());
    update_username(c, "1", false).await.unwrap();
    assert!(
        c.get::<Vec<String>>(key).await.unwrap().is_none(),
        "a tag-invalidated entry is never returned"
    );
    assert_eq!(
        c.get_many::<Vec<String>>(&[key, "absent"]).await.unwrap(),
        vec![None, None]
    );
}

async fn before_clears_even_when_the_body_fails(b: Backend) {
    let c = &b.cache;
    user_profile(c, "1", 0, 20).await;
    assert_eq!(risky_import(c, "1").await, Err(DbError));
    user_profile(c, "1", 0, 20).await;
    assert_eq!(
        loads(c, PROFILE),
        2,
        "cleared before the body, which then failed"
    );
}

on_every_backend!(
    a_tag_clears_every_entry_that_carries_it,
    patterns_and_tags_mix_in_one_attribute,
    manual_reads_respect_tags,
    before_clears_even_when_the_body_fails,
);

/// Commands the cache's own connection sent while `action` ran, seen by
/// MONITOR (commands run inside a Lua script are marked `lua` and skipped).
async fn client_commands<F: Future>(server: &RedisServer, action: F) -> Vec<String> {
    let client = redis::Client::open(server.url()).unwrap();
    let mut monitor = client.get_async_monitor().await.unwrap();
    let mut marker = server.raw().await;
    action.await;
    let _: String = redis::cmd("ECHO")
        .arg("cachemacro-end")
        .query_async(&mut marker)
        .await
        .unwrap();
    let mut lines = monitor.on_message::<String>();
    let mut seen = Vec::new();
    while let Some(line) = tokio::time::timeout(Duration::from_secs(10), lines.next())
        .await
        .unwrap()
    {
        if line.contains("cachemacro-end") {
            break;
        }
        if !line.contains(" lua]") {
            seen.push(line);
        }
    }
    seen
}

fn command_names(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .filter_map(|l| l.split("] \"").nth(1))
        .map(|rest| rest.split('"').next().unwrap_or_default().to_uppercase())
        .collect()
}

#[tokio::test]
async fn a_tagged_hit_is_one_round_trip_and_a_tag_invalidation_is_one_command() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let cache = server.cache().await;
    following_feed(&cache, "1", 0).await;

    let hit = client_commands(&server, following_feed(&cache, "1", 0)).await;
    // One pipeline of plain single-key reads (no script, nothing that
    // spans two keys): the entry and the versions of its two tags. (Its
    // TTL is asked only near expiry; the server's clock, every 10 s.)
    let names: Vec<String> = command_names(&hit)
        .into_iter()
        .filter(|n| n != "TIME")
        .collect();
    assert_eq!(
        names,
        ["GET", "GET", "GET"],
        "one pipelined round trip for a hit with two tags: {hit:?}"
    );
    let clients: std::collections::HashSet<&str> =
        hit.iter().filter_map(|l| l.split(' ').nth(2)).collect();
    assert_eq!(clients.len(), 1, "sent together on one connection: {hit:?}");
    assert_eq!(cache.stats().hits, 1);

    for entries in [10u32, 1_000] {
        for page in 0..entries {
            following_feed(&cache, "2", page).await;
        }
        let sent = client_commands(&server, update_username(&cache, "2", false)).await;
        assert_eq!(
            command_names(&sent),
            ["UNLINK", "PUBLISH"],
            "{entries} entries, one deletion (and its announcement to other instances): {sent:?}"
        );
        let before = loads(&cache, FEED);
        following_feed(&cache, "2", entries - 1).await;
        assert_eq!(loads(&cache, FEED), before + 1, "and the entries are gone");
    }
}
