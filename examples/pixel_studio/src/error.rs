//! The one error type of handlers and writes, and its JSON form:
//! `{"error": "…"}` with 400, 404, 409 or 500.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// What a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Malformed input: a bad id, page, body or field (400).
    #[error("{0}")]
    BadRequest(String),
    /// The entity the request names does not exist (404).
    #[error("{0}")]
    NotFound(String),
    /// The request contradicts the current state (409): a taken
    /// username, credits that are not there.
    #[error("{0}")]
    Conflict(String),
    /// The database failed (500; the detail is logged, not sent).
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
}

impl AppError {
    /// `"<what> <id> not found"`, a 404.
    pub fn not_found(what: &str, id: i64) -> AppError {
        AppError::NotFound(format!("{what} {id} not found"))
    }

    /// The status this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::Db(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The JSON body this error is answered with.
    pub fn body(&self) -> Value {
        match self {
            AppError::Db(e) => {
                tracing::error!(error = %e, "database error");
                json!({ "error": "database error" })
            }
            other => json!({ "error": other.to_string() }),
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        (self.status(), Json(self.body())).into_response()
    }
}

/// What handlers and writes return.
pub type AppResult<T> = Result<T, AppError>;
