//! The checker's HTTP calls, each bounded by a timeout.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Value, json};

/// Why a request is not a read (or a write).
#[derive(Debug, Clone)]
pub(crate) enum Failure {
    Timeout,
    /// No connection was made: the request was never sent.
    Unsent(String),
    /// An answer other than 2xx or 404 (for a read) or 4xx (for a write).
    Status(u16, String),
    Transport(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Timeout => write!(f, "timed out"),
            Failure::Unsent(e) => write!(f, "not sent: {e}"),
            Failure::Status(status, body) => write!(f, "HTTP {status}: {body}"),
            Failure::Transport(e) => write!(f, "{e}"),
        }
    }
}

/// A write's answer.
pub(crate) enum Written {
    Done(Value),
    /// 4xx: the app refused it, the database is unchanged.
    Refused(u16),
}

#[derive(Clone)]
pub(crate) struct Http {
    client: reqwest::Client,
}

fn failure(e: reqwest::Error) -> Failure {
    // A connect timeout is a connect error: nothing was sent.
    if e.is_connect() {
        Failure::Unsent(format!("{e:#}"))
    } else if e.is_timeout() {
        Failure::Timeout
    } else {
        Failure::Transport(format!("{e:#}"))
    }
}

/// The value a read stands for: the body of a 200; `{"status", "body"}`
/// of a 404 (the oracle gives both for each path).
fn value(status: u16, body: Value) -> Value {
    if status == 200 {
        body
    } else {
        json!({ "status": status, "body": body })
    }
}

fn read_value(status: reqwest::StatusCode, body: &[u8]) -> Result<Value, Failure> {
    match status.as_u16() {
        status @ (200 | 404) => serde_json::from_slice(body)
            .map(|body| value(status, body))
            .map_err(|e| Failure::Transport(format!("bad JSON: {e}"))),
        other => Err(Failure::Status(
            other,
            String::from_utf8_lossy(body).into_owned(),
        )),
    }
}

impl Http {
    pub(crate) fn new(timeout: Duration) -> Result<Http, String> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .pool_max_idle_per_host(256)
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        Ok(Http { client })
    }

    /// `GET base + path`, as a read.
    pub(crate) async fn read(&self, base: &str, path: &str) -> Result<Value, Failure> {
        let response = self
            .client
            .get(format!("{base}{path}"))
            .send()
            .await
            .map_err(failure)?;
        let status = response.status();
        let body = response.bytes().await.map_err(failure)?;
        read_value(status, &body)
    }

    /// A write, within `timeout`.
    pub(crate) async fn write(
        &self,
        base: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
        timeout: Duration,
    ) -> Result<Written, Failure> {
        let mut request = self
            .client
            .request(method, format!("{base}{path}"))
            .timeout(timeout);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(failure)?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(failure)?;
        if status.is_success() {
            Ok(Written::Done(
                serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            ))
        } else if status.is_client_error() {
            Ok(Written::Refused(status.as_u16()))
        } else {
            Err(Failure::Status(
                status.as_u16(),
                String::from_utf8_lossy(&bytes).into_owned(),
            ))
        }
    }

    /// The oracle: what every one of `paths` reads in one database state.
    pub(crate) async fn snapshot(
        &self,
        base: &str,
        paths: &[String],
        timeout: Duration,
    ) -> Result<HashMap<String, Value>, Failure> {
        let response = self
            .client
            .post(format!("{base}/db/snapshot"))
            .timeout(timeout)
            .json(&json!({ "paths": paths }))
            .send()
            .await
            .map_err(failure)?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(failure)?;
        if !status.is_success() {
            return Err(Failure::Status(
                status.as_u16(),
                String::from_utf8_lossy(&bytes).into_owned(),
            ));
        }
        #[derive(serde::Deserialize)]
        struct Snapshot {
            paths: HashMap<String, Value>,
            #[serde(default)]
            status: HashMap<String, u16>,
        }
        let snapshot: Snapshot = serde_json::from_slice(&bytes)
            .map_err(|e| Failure::Transport(format!("bad snapshot: {e}")))?;
        let mut state = HashMap::with_capacity(paths.len());
        let (mut bodies, statuses) = (snapshot.paths, snapshot.status);
        for path in paths {
            let Some(body) = bodies.remove(path) else {
                return Err(Failure::Transport(format!("the snapshot lacks {path}")));
            };
            let status = statuses.get(path).copied().unwrap_or(200);
            state.insert(path.clone(), value(status, body));
        }
        Ok(state)
    }
}
