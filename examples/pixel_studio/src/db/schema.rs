//! The schema, as numbered migrations applied once each at start.
//!
//! Every table has an `AUTOINCREMENT` key, so a deleted row's id is never
//! reused: a cached entry keyed by an id can only ever describe that row.

/// `(version, SQL)`, applied in order; a database records the last one it ran.
pub const MIGRATIONS: &[(i64, &str)] = &[(
    1,
    "
    CREATE TABLE users (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        username    TEXT NOT NULL UNIQUE,
        bio         TEXT NOT NULL DEFAULT '',
        avatar_url  TEXT,
        credits     INTEGER NOT NULL DEFAULT 0 CHECK (credits >= 0),
        created_at  INTEGER NOT NULL
    );
    CREATE TABLE follows (
        follower_id INTEGER NOT NULL REFERENCES users(id),
        followee_id INTEGER NOT NULL REFERENCES users(id),
        created_at  INTEGER NOT NULL,
        PRIMARY KEY (follower_id, followee_id),
        CHECK (follower_id <> followee_id)
    );
    CREATE INDEX follows_by_followee ON follows (followee_id);
    CREATE TABLE processing_requests (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        user_id     INTEGER NOT NULL REFERENCES users(id),
        prompt      TEXT NOT NULL,
        model       TEXT NOT NULL,
        image_count INTEGER NOT NULL,
        status      TEXT NOT NULL,
        progress    INTEGER NOT NULL,
        set_id      INTEGER,
        created_at  INTEGER NOT NULL
    );
    CREATE TABLE sets (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        user_id     INTEGER NOT NULL REFERENCES users(id),
        request_id  INTEGER NOT NULL REFERENCES processing_requests(id),
        prompt      TEXT NOT NULL,
        model       TEXT NOT NULL,
        created_at  INTEGER NOT NULL
    );
    CREATE INDEX sets_by_user ON sets (user_id);
    CREATE TABLE images (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        user_id     INTEGER NOT NULL REFERENCES users(id),
        set_id      INTEGER NOT NULL REFERENCES sets(id),
        prompt      TEXT NOT NULL,
        model       TEXT NOT NULL,
        public      INTEGER NOT NULL,
        created_at  INTEGER NOT NULL
    );
    CREATE INDEX images_by_user ON images (user_id);
    CREATE INDEX images_by_set ON images (set_id);
    CREATE TABLE image_likes (
        user_id     INTEGER NOT NULL REFERENCES users(id),
        image_id    INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
        created_at  INTEGER NOT NULL,
        PRIMARY KEY (user_id, image_id)
    );
    CREATE INDEX image_likes_by_image ON image_likes (image_id);
    CREATE TABLE comments (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        image_id    INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
        user_id     INTEGER NOT NULL REFERENCES users(id),
        body        TEXT NOT NULL,
        created_at  INTEGER NOT NULL
    );
    CREATE INDEX comments_by_image ON comments (image_id);
    CREATE TABLE comment_likes (
        user_id     INTEGER NOT NULL REFERENCES users(id),
        comment_id  INTEGER NOT NULL REFERENCES comments(id) ON DELETE CASCADE,
        PRIMARY KEY (user_id, comment_id)
    );
    CREATE INDEX comment_likes_by_comment ON comment_likes (comment_id);
    CREATE TABLE collections (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        user_id     INTEGER NOT NULL REFERENCES users(id),
        name        TEXT NOT NULL,
        description TEXT NOT NULL DEFAULT '',
        created_at  INTEGER NOT NULL
    );
    CREATE INDEX collections_by_user ON collections (user_id);
    CREATE TABLE collection_images (
        collection_id INTEGER NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
        image_id      INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
        added_at      INTEGER NOT NULL,
        PRIMARY KEY (collection_id, image_id)
    );
    CREATE INDEX collection_images_by_image ON collection_images (image_id);
    ",
)];
