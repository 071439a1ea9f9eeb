//! The read dispatcher: a read route's path (`/users/1/profile?page=2`)
//! parsed into a [`Read`], answered cached (the routes) or uncached (the
//! `/db/snapshot` oracle) with the same response shapes and the same JSON.

use serde::Serialize;
use serde_json::Value;

use crate::app::App;
use crate::db::{Conn, queries};
use crate::error::{AppError, AppResult};
use crate::reads;

/// Page size when `page_size` is not given.
pub const DEFAULT_PAGE_SIZE: u32 = 20;
/// The largest `page_size` accepted (the seed's profile pages use 250).
pub const MAX_PAGE_SIZE: u32 = 250;

/// One read, as its route names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Read {
    /// `GET /users/{id}/login`
    Login { user_id: i64 },
    /// `GET /users/{id}/profile?page=&page_size=`
    Profile {
        user_id: i64,
        page: u32,
        page_size: u32,
    },
    /// `GET /users/{id}/follow-stats`
    FollowStats { user_id: i64 },
    /// `GET /users/{id}/feed?page=&page_size=`
    Feed {
        user_id: i64,
        page: u32,
        page_size: u32,
    },
    /// `GET /explore?q=&page=`
    Explore { q: Option<String>, page: u32 },
    /// `GET /images/{id}`
    Image { image_id: i64 },
    /// `GET /users/{id}/likes`
    Likes { user_id: i64 },
    /// `GET /users/{id}/collections`
    Collections { user_id: i64 },
    /// `GET /users/{id}/sets?prompt=&model=`
    Sets {
        user_id: i64,
        prompt: Option<String>,
        model: Option<String>,
    },
    /// `GET /sets/{id}`
    Set { set_id: i64 },
    /// `GET /processing/{id}`
    Processing { request_id: i64 },
}

/// The query parameters of a read path.
#[derive(Default)]
struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    fn parse(query: &str) -> AppResult<Params> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query)
            .map_err(|e| AppError::BadRequest(format!("bad query string: {e}")))?;
        Ok(Params { pairs })
    }

    /// The last value given for `name`; an empty one counts as absent.
    fn text(&self, name: &str) -> Option<String> {
        let value = self
            .pairs
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim());
        value.filter(|v| !v.is_empty()).map(str::to_owned)
    }

    fn number(&self, name: &str, default: u32, max: u32) -> AppResult<u32> {
        let Some(text) = self.text(name) else {
            return Ok(default);
        };
        match text.parse::<u32>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(AppError::BadRequest(format!(
                "{name} must be a whole number from 1 to {max}"
            ))),
        }
    }

    fn page(&self) -> AppResult<u32> {
        self.number("page", 1, 1_000_000)
    }

    fn page_size(&self) -> AppResult<u32> {
        self.number("page_size", DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    }
}

/// Parses an id from a path segment: a positive integer, else 400.
pub fn id(what: &str, segment: &str) -> AppResult<i64> {
    match segment.parse::<i64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(AppError::BadRequest(format!(
            "{what} id must be a positive integer, got {segment:?}"
        ))),
    }
}

impl Read {
    /// Parses a read route's path with its query string; 400 for a path no
    /// read route serves or a bad parameter.
    pub fn parse(path_and_query: &str) -> AppResult<Read> {
        let (path, query) = path_and_query
            .split_once('?')
            .unwrap_or((path_and_query, ""));
        let params = Params::parse(query)?;
        let segments: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
        let read = match segments.as_slice() {
            ["users", user, "login"] => Read::Login {
                user_id: id("user", user)?,
            },
            ["users", user, "profile"] => Read::Profile {
                user_id: id("user", user)?,
                page: params.page()?,
                page_size: params.page_size()?,
            },
            ["users", user, "follow-stats"] => Read::FollowStats {
                user_id: id("user", user)?,
            },
            ["users", user, "feed"] => Read::Feed {
                user_id: id("user", user)?,
                page: params.page()?,
                page_size: params.page_size()?,
            },
            ["explore"] => Read::Explore {
                q: params.text("q"),
                page: params.page()?,
            },
            ["images", image] => Read::Image {
                image_id: id("image", image)?,
            },
            ["users", user, "likes"] => Read::Likes {
                user_id: id("user", user)?,
            },
            ["users", user, "collections"] => Read::Collections {
                user_id: id("user", user)?,
            },
            ["users", user, "sets"] => Read::Sets {
                user_id: id("user", user)?,
                prompt: params.text("prompt"),
                model: params.text("model"),
            },
            ["sets", set] => Read::Set {
                set_id: id("set", set)?,
            },
            ["processing", request] => Read::Processing {
                request_id: id("processing request", request)?,
            },
            _ => {
                return Err(AppError::BadRequest(format!(
                    "{path:?} is not a read route"
                )));
            }
        };
        Ok(read)
    }

    /// The entity a 404 names.
    fn missing(&self) -> AppError {
        match *self {
            Read::Login { user_id }
            | Read::Profile { user_id, .. }
            | Read::FollowStats { user_id }
            | Read::Feed { user_id, .. }
            | Read::Likes { user_id }
            | Read::Collections { user_id }
            | Read::Sets { user_id, .. } => AppError::not_found("user", user_id),
            Read::Image { image_id } => AppError::not_found("image", image_id),
            Read::Set { set_id } => AppError::not_found("set", set_id),
            Read::Processing { request_id } => {
                AppError::not_found("processing request", request_id)
            }
            Read::Explore { .. } => AppError::NotFound("nothing to explore".into()),
        }
    }

    /// Answers from the database directly, on `conn` (the oracle).
    pub async fn uncached(&self, conn: &mut Conn) -> AppResult<Value> {
        match self {
            Read::Login { user_id } => self.json(queries::user_login(conn, *user_id).await?),
            Read::Profile {
                user_id,
                page,
                page_size,
            } => self.json(queries::user_profile(conn, *user_id, *page, *page_size).await?),
            Read::FollowStats { user_id } => {
                self.json(queries::follow_stats(conn, *user_id).await?)
            }
            Read::Feed {
                user_id,
                page,
                page_size,
            } => self.json(queries::following_feed(conn, *user_id, *page, *page_size).await?),
            Read::Explore { q, page } => {
                self.json(Some(queries::explore(conn, q.as_deref(), *page).await?))
            }
            Read::Image { image_id } => self.json(queries::image_details(conn, *image_id).await?),
            Read::Likes { user_id } => self.json(queries::liked_images(conn, *user_id).await?),
            Read::Collections { user_id } => {
                self.json(queries::user_collections(conn, *user_id).await?)
            }
            Read::Sets {
                user_id,
                prompt,
                model,
            } => self.json(
                queries::user_sets(conn, *user_id, prompt.as_deref(), model.as_deref()).await?,
            ),
            Read::Set { set_id } => self.json(queries::set_details(conn, *set_id).await?),
            Read::Processing { request_id } => {
                self.json(queries::processing(conn, *request_id).await?)
            }
        }
    }

    /// Answers through the cache (the routes).
    pub async fn cached(&self, app: &App) -> AppResult<Value> {
        match self {
            Read::Login { user_id } => self.json(reads::user_login(app, *user_id).await?),
            Read::Profile {
                user_id,
                page,
                page_size,
            } => self.json(reads::user_profile(app, *user_id, *page, *page_size).await?),
            Read::FollowStats { user_id } => self.json(reads::follow_stats(app, *user_id).await?),
            Read::Feed {
                user_id,
                page,
                page_size,
            } => self.json(reads::following_feed(app, *user_id, *page, *page_size).await?),
            Read::Explore { q, page } => {
                self.json(Some(reads::explore(app, q.as_deref(), *page).await?))
            }
            Read::Image { image_id } => self.json(reads::image_details(app, *image_id).await?),
            Read::Likes { user_id } => self.json(reads::liked_images(app, *user_id).await?),
            Read::Collections { user_id } => {
                self.json(reads::user_collections(app, *user_id).await?)
            }
            Read::Sets {
                user_id,
                prompt,
                model,
            } => self
                .json(reads::user_sets(app, *user_id, prompt.as_deref(), model.as_deref()).await?),
            Read::Set { set_id } => self.json(reads::set_details(app, *set_id).await?),
            Read::Processing { request_id } => {
                self.json(reads::processing(app, *request_id).await?)
            }
        }
    }

    /// The response body: the value as JSON (object keys sorted, so the
    /// bytes depend on the data only), or the 404 of this read.
    fn json<T: Serialize>(&self, value: Option<T>) -> AppResult<Value> {
        let value = value.ok_or_else(|| self.missing())?;
        serde_json::to_value(value).map_err(|e| AppError::Db(sqlx::Error::Decode(Box::new(e))))
    }
}

/// What a read route answers: its status and JSON body.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl Answer {
    /// The answer for an outcome: 200 and the value, or the error's status and body.
    pub fn of(outcome: AppResult<Value>) -> Answer {
        match outcome {
            Ok(body) => Answer { status: 200, body },
            Err(e) => Answer {
                status: e.status().as_u16(),
                body: e.body(),
            },
        }
    }
}

/// The body the read route for `path` would answer, computed from the
/// database on `conn` without the cache; `None` if no read route serves
/// `path` (or a parameter is bad). A missing entity gives its 404 body.
pub async fn read_uncached(conn: &mut Conn, path: &str) -> Option<Value> {
    let read = Read::parse(path).ok()?;
    Some(Answer::of(read.uncached(conn).await).body)
}
