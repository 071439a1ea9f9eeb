//! Running the app as a subprocess (the real binary, a real SQLite file,
//! a real redis-server) and talking to it over HTTP.

#![allow(dead_code)] // each test binary uses part of it

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A database file of a test's own, removed (with its WAL) on drop.
pub struct TempDb {
    pub path: PathBuf,
}

impl TempDb {
    pub fn new() -> TempDb {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "pixel_studio_test_{}_{}.db",
            std::process::id(),
            NEXT.fetch_add(1, Relaxed)
        );
        let db = TempDb {
            path: std::env::temp_dir().join(name),
        };
        db.remove();
        db
    }

    fn remove(&self) {
        for suffix in ["", "-wal", "-shm"] {
            let mut path = self.path.clone().into_os_string();
            path.push(suffix);
            let _ = std::fs::remove_file(path);
        }
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        self.remove();
    }
}

/// A unique cache namespace, so tests sharing one `REDIS_URL` server never
/// see each other's keys.
pub fn namespace() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("ps{}x{}", std::process::id(), NEXT.fetch_add(1, Relaxed))
}

/// One running `pixel_studio` process; killed when dropped.
pub struct Instance {
    child: Child,
    pub base: String,
    http: reqwest::Client,
}

impl Instance {
    /// Starts the binary on port 0 over `db` with `CACHE_URL=cache_url`, and
    /// waits (bounded) for its `listening on http://…` line.
    pub async fn start(db: &TempDb, cache_url: &str) -> Instance {
        let mut child = Command::new(env!("CARGO_BIN_EXE_pixel_studio"))
            .env("PIXEL_STUDIO_DB", &db.path)
            .env("PIXEL_STUDIO_ADDR", "127.0.0.1:0")
            .env("CACHE_URL", cache_url)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("the pixel_studio binary starts");
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("pixel_studio printed its address within 30 s")
            .expect("reading pixel_studio's stdout")
            .expect("pixel_studio printed a line before exiting");
        let base = line
            .strip_prefix("listening on ")
            .expect("a `listening on` line")
            .to_owned();
        // Keep draining stdout so the pipe never fills.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Instance {
            child,
            base,
            http: reqwest::Client::new(),
        }
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = response.status().as_u16();
        let body = response
            .json()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: not JSON: {e}"));
        (status, body)
    }

    /// `GET path`, expecting 200.
    pub async fn get(&self, path: &str) -> Value {
        let (status, body) = self.send(reqwest::Method::GET, path, None).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    /// `GET path`: status and body.
    pub async fn get_status(&self, path: &str) -> (u16, Value) {
        self.send(reqwest::Method::GET, path, None).await
    }

    /// `method path body`, expecting a 2xx.
    pub async fn act(&self, method: &str, path: &str, body: Value) -> Value {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("a method");
        let (status, out) = self.send(method.clone(), path, Some(body)).await;
        assert!(
            (200..300).contains(&status),
            "{method} {path}: {status} {out}"
        );
        out
    }

    /// What the read route for `path` would answer, from the database (the
    /// `/db/snapshot` oracle).
    pub async fn oracle(&self, path: &str) -> Value {
        let out = self
            .act("POST", "/db/snapshot", json!({ "paths": [path] }))
            .await;
        out["paths"][path].clone()
    }

    /// `hits` of one key family in this instance's `/cache/stats`.
    pub async fn hits(&self, family: &str) -> u64 {
        let stats = self.get("/cache/stats").await;
        stats["families"][family]["hits"].as_u64().unwrap_or(0)
    }

    /// Reads `path` until it is cached: a read, then a second that must be
    /// a hit of `family`. Returns the value.
    pub async fn warm(&self, path: &str, family: &str) -> Value {
        let first = self.get(path).await;
        let before = self.hits(family).await;
        let second = self.get(path).await;
        let after = self.hits(family).await;
        assert!(
            after > before,
            "the second GET {path} is a hit of {family} ({before} → {after})"
        );
        assert_eq!(
            first, second,
            "GET {path}: a hit gives what the miss stored"
        );
        second
    }

    /// A new user; returns its id.
    pub async fn user(&self, username: &str) -> i64 {
        let out = self
            .act("POST", "/users", json!({ "username": username }))
            .await;
        out["id"].as_i64().expect("an id")
    }

    /// Generates `count` images for `user_id`; returns `(set_id, image_ids)`.
    pub async fn generate(
        &self,
        user_id: i64,
        prompt: &str,
        model: &str,
        count: i64,
    ) -> (i64, Vec<i64>) {
        let body = json!({ "user_id": user_id, "prompt": prompt, "model": model, "count": count });
        let out = self.act("POST", "/images/generate", body).await;
        let ids = out["image_ids"]
            .as_array()
            .expect("image ids")
            .iter()
            .filter_map(Value::as_i64)
            .collect();
        (out["set_id"].as_i64().expect("a set id"), ids)
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}
