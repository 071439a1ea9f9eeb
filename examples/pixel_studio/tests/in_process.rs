//! Fast, in one process: the router over an in-memory SQLite and
//! `Cache::memory()`. After every action of the app, every read route
//! (all users, images, sets, collections, requests, pages and filters
//! seen so far) is read through the cache and compared with the
//! `/db/snapshot` oracle: a write that forgot an invalidation leaves one
//! of them stale and fails here, naming the action and the path.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use cachemacro_runtime::Cache;
use pixel_studio::{App, db, router};
use serde_json::{Value, json};
use tower::ServiceExt;

struct Client {
    router: Router,
}

impl Client {
    async fn new() -> Client {
        let pool = db::open(db::MEMORY).await.expect("an in-memory database");
        Client {
            router: router(Arc::new(App::new(pool, Cache::memory()))),
        }
    }

    async fn send(&self, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", "application/json");
        let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
        let response = self
            .router
            .clone()
            .oneshot(request.body(body).expect("a request"))
            .await
            .expect("infallible");
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("a body");
        let value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("{method} {path}: not JSON: {e}"));
        (status, value)
    }

    async fn act(&self, method: &str, path: &str, body: Value) -> Value {
        let (status, out) = self.send(method, path, Some(body)).await;
        assert!(status.is_success(), "{method} {path}: {status} {out}");
        out
    }
}

/// What exists so far, to build every read path from.
#[derive(Default)]
struct World {
    users: Vec<i64>,
    images: Vec<i64>,
    sets: Vec<i64>,
    requests: Vec<i64>,
}

impl World {
    fn paths(&self) -> Vec<String> {
        let mut paths = vec![
            "/explore".to_owned(),
            "/explore?q=cat&page=1".into(),
            "/explore?page=2".into(),
        ];
        for u in &self.users {
            for suffix in [
                "login",
                "follow-stats",
                "likes",
                "collections",
                "sets",
                "sets?model=sdxl",
                "sets?prompt=cat&model=sdxl",
            ] {
                paths.push(format!("/users/{u}/{suffix}"));
            }
            for page in [
                "page=1&page_size=2",
                "page=2&page_size=2",
                "page=1&page_size=250",
            ] {
                paths.push(format!("/users/{u}/profile?{page}"));
                paths.push(format!("/users/{u}/feed?{page}"));
            }
        }
        paths.extend(self.images.iter().map(|i| format!("/images/{i}")));
        paths.extend(self.sets.iter().map(|s| format!("/sets/{s}")));
        paths.extend(self.requests.iter().map(|r| format!("/processing/{r}")));
        paths
    }
}

/// Reads every path through the cache (twice: the second must be served
/// the same), then checks each against one oracle snapshot.
async fn all_fresh(c: &Client, world: &World, after: &str) {
    let paths = world.paths();
    let mut read = Vec::new();
    for path in &paths {
        let (status, body) = c.send("GET", path, None).await;
        assert_eq!(c.send("GET", path, None).await.1, body, "GET {path} twice");
        read.push((path, status, body));
    }
    let snapshot = c
        .act("POST", "/db/snapshot", json!({ "paths": paths }))
        .await;
    for (path, status, body) in read {
        assert_eq!(
            body,
            snapshot["paths"][path.as_str()],
            "after {after}: GET {path} is stale"
        );
        assert_eq!(
            status.as_u16(),
            snapshot["status"][path.as_str()],
            "after {after}: GET {path}'s status"
        );
    }
}

#[tokio::test]
async fn every_read_is_fresh_after_every_action() {
    let c = Client::new().await;
    let mut w = World::default();
    for name in ["ann", "bob", "cy"] {
        w.users.push(
            c.act("POST", "/users", json!({ "username": name })).await["id"]
                .as_i64()
                .unwrap(),
        );
    }
    let [ann, bob, cy] = [w.users[0], w.users[1], w.users[2]];
    all_fresh(&c, &w, "creating users").await;

    let step = async |w: &mut World, what: &str, method: &str, path: &str, body: Value| -> Value {
        let out = c.act(method, path, body).await;
        if let (Some(set), Some(_)) = (out["set_id"].as_i64(), out["image_ids"].as_array()) {
            w.sets.push(set);
            w.requests.push(out["request"]["id"].as_i64().unwrap());
            w.images.extend(
                out["image_ids"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter_map(Value::as_i64),
            );
        }
        all_fresh(&c, w, what).await;
        out
    };

    step(
        &mut w,
        "follow",
        "POST",
        &format!("/users/{ann}/follow"),
        json!({ "follower_id": bob }),
    )
    .await;
    step(
        &mut w,
        "follow 2",
        "POST",
        &format!("/users/{ann}/follow"),
        json!({ "follower_id": cy }),
    )
    .await;
    let body = json!({ "user_id": ann, "prompt": "cat in space", "model": "sdxl", "count": 3 });
    step(&mut w, "generate", "POST", "/images/generate", body).await;
    let body =
        json!({ "user_id": ann, "prompt": "dog", "model": "flux", "count": 1, "public": false });
    step(&mut w, "generate private", "POST", "/images/generate", body).await;
    let body = json!({ "user_id": bob, "prompt": "cat on a sofa", "model": "sdxl", "count": 2 });
    step(&mut w, "generate (bob)", "POST", "/images/generate", body).await;
    let (i1, i2, i5) = (w.images[0], w.images[1], w.images[4]);
    step(
        &mut w,
        "like",
        "POST",
        &format!("/images/{i1}/like"),
        json!({ "user_id": bob }),
    )
    .await;
    step(
        &mut w,
        "like 2",
        "POST",
        &format!("/images/{i2}/like"),
        json!({ "user_id": cy }),
    )
    .await;
    step(
        &mut w,
        "unlike",
        "DELETE",
        &format!("/images/{i2}/like"),
        json!({ "user_id": cy }),
    )
    .await;
    let comment = step(
        &mut w,
        "comment",
        "POST",
        &format!("/images/{i1}/comments"),
        json!({ "user_id": cy, "body": "nice" }),
    )
    .await;
    let comment = comment["id"].as_i64().unwrap();
    step(
        &mut w,
        "like comment",
        "POST",
        &format!("/comments/{comment}/like"),
        json!({ "user_id": ann }),
    )
    .await;
    step(
        &mut w,
        "unlike comment",
        "DELETE",
        &format!("/comments/{comment}/like"),
        json!({ "user_id": ann }),
    )
    .await;
    let collection = step(
        &mut w,
        "create collection",
        "POST",
        "/collections",
        json!({ "user_id": cy, "name": "faves" }),
    )
    .await;
    let collection = collection["id"].as_i64().unwrap();
    step(
        &mut w,
        "save",
        "POST",
        &format!("/collections/{collection}/images"),
        json!({ "image_id": i1 }),
    )
    .await;
    step(
        &mut w,
        "save 2",
        "POST",
        &format!("/collections/{collection}/images"),
        json!({ "image_id": i5 }),
    )
    .await;
    step(
        &mut w,
        "unsave",
        "DELETE",
        &format!("/collections/{collection}/images/{i5}"),
        json!({}),
    )
    .await;
    step(
        &mut w,
        "update collection",
        "PUT",
        &format!("/collections/{collection}"),
        json!({ "name": "best" }),
    )
    .await;
    step(
        &mut w,
        "username",
        "PUT",
        &format!("/users/{ann}/username"),
        json!({ "username": "ann2" }),
    )
    .await;
    step(
        &mut w,
        "avatar",
        "PUT",
        &format!("/users/{ann}/avatar"),
        json!({ "avatar_url": "https://x.invalid/a.png" }),
    )
    .await;
    step(
        &mut w,
        "bio",
        "PUT",
        &format!("/users/{ann}/bio"),
        json!({ "bio": "I draw cats" }),
    )
    .await;
    step(
        &mut w,
        "purchase",
        "POST",
        &format!("/users/{bob}/credits/purchase"),
        json!({ "amount": 5 }),
    )
    .await;
    step(
        &mut w,
        "use",
        "POST",
        &format!("/users/{bob}/credits/use"),
        json!({ "amount": 3 }),
    )
    .await;
    let request = w.requests[0];
    let body = json!({ "status": "processing", "progress": 50 });
    step(
        &mut w,
        "processing status",
        "POST",
        &format!("/processing/{request}/status"),
        body,
    )
    .await;
    step(
        &mut w,
        "delete comment",
        "DELETE",
        &format!("/comments/{comment}"),
        json!({}),
    )
    .await;
    step(
        &mut w,
        "delete image",
        "DELETE",
        &format!("/images/{i1}"),
        json!({}),
    )
    .await;
    let set = w.sets[0];
    step(
        &mut w,
        "delete set",
        "DELETE",
        &format!("/sets/{set}"),
        json!({}),
    )
    .await;
    step(
        &mut w,
        "unfollow",
        "DELETE",
        &format!("/users/{ann}/follow"),
        json!({ "follower_id": bob }),
    )
    .await;
    step(
        &mut w,
        "delete collection",
        "DELETE",
        &format!("/collections/{collection}"),
        json!({}),
    )
    .await;
}

#[tokio::test]
async fn errors_are_json_with_their_status() {
    let c = Client::new().await;
    let ann = c.act("POST", "/users", json!({ "username": "ann" })).await["id"]
        .as_i64()
        .unwrap();
    let cases: &[(&str, &str, Option<Value>, u16)] = &[
        ("GET", "/users/999/profile", None, 404),
        ("GET", "/users/abc/login", None, 400),
        ("GET", "/users/0/login", None, 400),
        ("GET", "/users/1/profile?page=0", None, 400),
        ("GET", "/users/1/profile?page_size=251", None, 400),
        ("GET", "/images/5", None, 404),
        ("GET", "/no/such/route", None, 404),
        ("POST", "/users", Some(json!({ "username": "ann" })), 409),
        ("POST", "/users", Some(json!({ "username": "  " })), 400),
        ("POST", "/users", Some(json!({ "name": "x" })), 400),
        (
            "POST",
            "/images/generate",
            Some(json!({ "user_id": ann, "prompt": "p", "model": "m", "count": 11 })),
            400,
        ),
        (
            "POST",
            "/users/1/credits/use",
            Some(json!({ "amount": 1000 })),
            409,
        ),
        (
            "POST",
            "/users/1/follow",
            Some(json!({ "follower_id": 1 })),
            400,
        ),
        (
            "POST",
            "/users/1/follow",
            Some(json!({ "follower_id": 77 })),
            404,
        ),
        (
            "POST",
            "/db/snapshot",
            Some(json!({ "paths": ["/nope"] })),
            400,
        ),
    ];
    for (method, path, body, status) in cases {
        let (got, out) = c.send(method, path, body.clone()).await;
        assert_eq!(got.as_u16(), *status, "{method} {path}: {out}");
        assert!(
            out["error"].is_string(),
            "{method} {path}: a JSON error: {out}"
        );
    }
    // A failed write changed nothing: the balance is still the welcome grant.
    let (_, login) = c.send("GET", &format!("/users/{ann}/login"), None).await;
    assert_eq!(login["credits"], 10);
}

#[tokio::test]
async fn a_read_route_and_the_oracle_give_the_same_bytes() {
    let c = Client::new().await;
    let ann = c.act("POST", "/users", json!({ "username": "ann" })).await["id"]
        .as_i64()
        .unwrap();
    c.act(
        "POST",
        "/images/generate",
        json!({ "user_id": ann, "prompt": "cat", "model": "sdxl" }),
    )
    .await;
    let path = format!("/users/{ann}/profile?page=1&page_size=10");
    let request = Request::get(&path).body(Body::empty()).unwrap();
    let response = c.router.clone().oneshot(request).await.unwrap();
    let route_bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let snapshot = c
        .act("POST", "/db/snapshot", json!({ "paths": [path] }))
        .await;
    let oracle_bytes = serde_json::to_vec(&snapshot["paths"][path.as_str()]).unwrap();
    assert_eq!(route_bytes.as_ref(), oracle_bytes.as_slice());
}
