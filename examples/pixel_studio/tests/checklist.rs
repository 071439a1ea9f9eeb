//! The seed's "Manual Testing Checklist", over HTTP against the real
//! binary on a real redis-server with the in-process tier on: each item
//! warms its reads (a second read must be a hit), does the action, and
//! checks the read after it is fresh (equal to the `/db/snapshot` oracle,
//! and showing the change).
//!
//! Each item runs on one instance (the read after the write is fresh at
//! once) and on two instances sharing the Redis and the database file
//! (write on one, read on the other: fresh once the writer's announcement
//! reached the reader, polled with a bound).

mod support;

use cachemacro_tests::{RedisCluster, RedisServer, eventually};
use serde_json::{Value, json};
use support::{Instance, TempDb, namespace};

/// Where the cache lives.
#[derive(Clone, Copy)]
enum Redis {
    /// A redis-server of the test's own.
    Server,
    /// The test binary's Redis Cluster (3 primaries, 3 replicas).
    Cluster,
}

/// The processes of one test: Redis, the database, and one or two apps.
struct Setup {
    writer: Instance,
    reader: Option<Instance>,
    _db: TempDb,
    _redis: Option<RedisServer>,
}

impl Setup {
    async fn start(redis: Redis, instances: usize) -> Option<Setup> {
        let (server, url) = match redis {
            Redis::Server => {
                let server = RedisServer::start()?;
                let url = server.url();
                (Some(server), url)
            }
            Redis::Cluster => (None, RedisCluster::shared()?.url()),
        };
        let url = format!("{url}?local_capacity=10000&namespace={}", namespace());
        let db = TempDb::new();
        let writer = Instance::start(&db, &url).await;
        let reader = if instances == 2 {
            Some(Instance::start(&db, &url).await)
        } else {
            None
        };
        Some(Setup {
            writer,
            reader,
            _db: db,
            _redis: server,
        })
    }

    fn reader(&self) -> &Instance {
        self.reader.as_ref().unwrap_or(&self.writer)
    }

    fn shared(&self) -> bool {
        self.reader.is_some()
    }
}

/// Asserts that `path` read on the reader is fresh: what the database
/// holds, and `check` holds of it. On one instance at once; across two,
/// within the bound of `eventually` (the announcement's delay).
async fn fresh(s: &Setup, path: &str, what: &str, check: impl Fn(&Value) -> bool) {
    let reader = s.reader();
    if !s.shared() {
        let (read, truth) = (reader.get(path).await, reader.oracle(path).await);
        assert_eq!(
            read, truth,
            "GET {path} after the write is what the database holds"
        );
        assert!(check(&read), "GET {path}: {what}: {read}");
        return;
    }
    eventually(
        &format!("GET {path} on the other instance: {what}"),
        async || {
            let read = reader.get(path).await;
            read == reader.oracle(path).await && check(&read)
        },
    )
    .await;
}

fn ids(list: &Value, field: &str) -> Vec<i64> {
    list[field].as_array().map_or_else(Vec::new, |items| {
        items.iter().filter_map(|i| i["id"].as_i64()).collect()
    })
}

/// 1. Collection save/unsave: save an image, come back to it, the saved
///    status is right; and after unsaving.
async fn collection_save_unsave(s: &Setup) {
    let (w, r) = (&s.writer, s.reader());
    let ann = w.user("ann").await;
    let (_, images) = w.generate(ann, "a lighthouse at dusk", "sdxl", 1).await;
    let image = images[0];
    let body = json!({ "user_id": ann, "name": "favourites" });
    let collection = w.act("POST", "/collections", body).await["id"]
        .as_i64()
        .expect("an id");
    let path = format!("/users/{ann}/collections");
    r.warm(&path, "user-collections:<user_id>").await;
    r.warm(&format!("/images/{image}"), "image-details:<image_id>")
        .await;

    w.act(
        "POST",
        &format!("/collections/{collection}/images"),
        json!({ "image_id": image }),
    )
    .await;
    let saved = |v: &Value| v["collections"][0]["image_ids"] == json!([image]);
    fresh(s, &path, "the image shows as saved", saved).await;

    r.warm(&path, "user-collections:<user_id>").await;
    w.act(
        "DELETE",
        &format!("/collections/{collection}/images/{image}"),
        json!({}),
    )
    .await;
    let unsaved = |v: &Value| v["collections"][0]["image_ids"] == json!([]);
    fresh(s, &path, "the image shows as not saved", unsaved).await;
}

/// 2. Follow/unfollow: their follower count, my following count, my feed.
async fn follow_unfollow(s: &Setup) {
    let (w, r) = (&s.writer, s.reader());
    let (me, them) = (w.user("me").await, w.user("them").await);
    let (_, images) = w.generate(them, "a red fox", "flux", 1).await;
    let their_stats = format!("/users/{them}/follow-stats");
    let my_stats = format!("/users/{me}/follow-stats");
    let their_profile = format!("/users/{them}/profile?page=1&page_size=10");
    let feed = format!("/users/{me}/feed?page=1&page_size=10");
    r.warm(&their_stats, "user-follow-stats:<user_id>").await;
    r.warm(&my_stats, "user-follow-stats:<user_id>").await;
    r.warm(&their_profile, "user-profile:<user_id>:<page>:<page_size>")
        .await;
    r.warm(&feed, "following-feed:<user_id>:<page>:<page_size>")
        .await;

    w.act(
        "POST",
        &format!("/users/{them}/follow"),
        json!({ "follower_id": me }),
    )
    .await;
    fresh(s, &their_stats, "they have a follower", |v| {
        v["followers"] == 1
    })
    .await;
    fresh(s, &my_stats, "I follow one user", |v| v["following"] == 1).await;
    fresh(s, &their_profile, "their profile counts me", |v| {
        v["followers"] == 1
    })
    .await;
    fresh(s, &feed, "my feed has their image", |v| {
        ids(v, "images") == images
    })
    .await;

    // A new image of theirs reaches my cached feed (seed issue 5).
    r.warm(&feed, "following-feed:<user_id>:<page>:<page_size>")
        .await;
    let (_, newer) = w.generate(them, "a blue fox", "flux", 1).await;
    fresh(s, &feed, "my feed has their new image first", |v| {
        ids(v, "images")[0] == newer[0]
    })
    .await;

    r.warm(&their_stats, "user-follow-stats:<user_id>").await;
    r.warm(&feed, "following-feed:<user_id>:<page>:<page_size>")
        .await;
    w.act(
        "DELETE",
        &format!("/users/{them}/follow"),
        json!({ "follower_id": me }),
    )
    .await;
    fresh(s, &their_stats, "they have no follower", |v| {
        v["followers"] == 0
    })
    .await;
    fresh(s, &my_stats, "I follow nobody", |v| v["following"] == 0).await;
    fresh(s, &feed, "my feed is empty", |v| {
        ids(v, "images").is_empty()
    })
    .await;
}

/// 3. Like/unlike: the likes page shows the image, then does not.
async fn like_unlike(s: &Setup) {
    let (w, r) = (&s.writer, s.reader());
    let (me, artist) = (w.user("liker").await, w.user("artist").await);
    let (_, images) = w.generate(artist, "a paper boat", "sdxl", 1).await;
    let image = images[0];
    let likes = format!("/users/{me}/likes");
    let explore = "/explore?q=paper%20boat&page=1";
    r.warm(&likes, "liked-images:user:<user_id>").await;
    r.warm(explore, "explore-images?q=<q:hash>&page=<page>")
        .await;

    w.act(
        "POST",
        &format!("/images/{image}/like"),
        json!({ "user_id": me }),
    )
    .await;
    fresh(s, &likes, "the image is in my likes", |v| {
        ids(v, "images") == [image]
    })
    .await;
    fresh(s, explore, "explore counts the like", |v| {
        v["images"][0]["like_count"] == 1
    })
    .await;

    r.warm(&likes, "liked-images:user:<user_id>").await;
    w.act(
        "DELETE",
        &format!("/images/{image}/like"),
        json!({ "user_id": me }),
    )
    .await;
    fresh(s, &likes, "the image is gone from my likes", |v| {
        ids(v, "images").is_empty()
    })
    .await;
}

/// 4. Set deletion: filter sets by model, delete one, it leaves the list.
async fn set_deletion_under_filter(s: &Setup) {
    let (w, r) = (&s.writer, s.reader());
    let me = w.user("setter").await;
    let (doomed, _) = w.generate(me, "cat in space", "sdxl", 2).await;
    let (kept, _) = w.generate(me, "cat on a sofa", "sdxl", 1).await;
    let (other, _) = w.generate(me, "dog", "flux", 1).await;
    let filtered = format!("/users/{me}/sets?model=sdxl");
    let both = format!("/users/{me}/sets?prompt=cat&model=sdxl");
    let all = format!("/users/{me}/sets");
    let family = "sets:user:<user_id>:<prompt>:<model>";
    for path in [&filtered, &both, &all] {
        r.warm(path, family).await;
    }
    r.warm(&format!("/sets/{doomed}"), "set:<set_id>").await;

    w.act("DELETE", &format!("/sets/{doomed}"), json!({})).await;
    fresh(s, &filtered, "the set left the model filter", |v| {
        ids(v, "sets") == [kept]
    })
    .await;
    fresh(s, &both, "the set left the prompt+model filter", |v| {
        ids(v, "sets") == [kept]
    })
    .await;
    fresh(s, &all, "the set left the unfiltered list", |v| {
        ids(v, "sets") == [other, kept]
    })
    .await;
    let reader = s.reader();
    let gone = format!("/sets/{doomed}");
    eventually("the deleted set is a 404", async || {
        reader.get_status(&gone).await.0 == 404
    })
    .await;
}

/// 5. Username change: the profile shows the new name.
async fn username_change(s: &Setup) {
    let (w, r) = (&s.writer, s.reader());
    let me = w.user("old_name").await;
    let profile = format!("/users/{me}/profile?page=1&page_size=250");
    let login = format!("/users/{me}/login");
    r.warm(&profile, "user-profile:<user_id>:<page>:<page_size>")
        .await;
    r.warm(
        &format!("/users/{me}/profile?page=2&page_size=250"),
        "user-profile:<user_id>:<page>:<page_size>",
    )
    .await;
    r.warm(&login, "user-login:<user_id>").await;

    w.act(
        "PUT",
        &format!("/users/{me}/username"),
        json!({ "username": "new_name" }),
    )
    .await;
    fresh(s, &profile, "the profile shows the new name", |v| {
        v["user"]["username"] == "new_name"
    })
    .await;
    let page2 = format!("/users/{me}/profile?page=2&page_size=250");
    fresh(s, &page2, "page 2 shows the new name", |v| {
        v["user"]["username"] == "new_name"
    })
    .await;
    fresh(s, &login, "the header shows the new name", |v| {
        v["username"] == "new_name"
    })
    .await;
}

/// Every item, in order, on one setup (each makes users of its own).
async fn checklist(redis: Redis, instances: usize) {
    let Some(s) = Setup::start(redis, instances).await else {
        return;
    };
    // Users, images and collections of others first, so no two kinds of id
    // coincide (a key built from the wrong id would otherwise pass).
    let (pad, other) = (s.writer.user("pad").await, s.writer.user("other").await);
    s.writer.generate(other, "padding", "sdxl", 3).await;
    s.writer
        .act(
            "POST",
            "/collections",
            json!({ "user_id": pad, "name": "pad" }),
        )
        .await;
    collection_save_unsave(&s).await;
    follow_unfollow(&s).await;
    like_unlike(&s).await;
    set_deletion_under_filter(&s).await;
    username_change(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checklist_on_one_instance() {
    checklist(Redis::Server, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checklist_across_two_instances() {
    checklist(Redis::Server, 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checklist_across_two_instances_on_a_cluster() {
    checklist(Redis::Cluster, 2).await;
}
