//! The small world a run works on: its users, images, sets, collections,
//! likes, follows and comments as the checker believes them to be (from
//! the answers of its own writes), the read paths over it, and the random
//! actions a writer takes on it.

use std::collections::{BTreeMap, BTreeSet};

use rand::Rng;
use rand::seq::IndexedRandom;
use reqwest::Method;
use serde_json::{Value, json};

/// The prompts and models images are generated with, and filtered by.
const PROMPTS: [&str; 3] = ["red fox", "neon city", "red city"];
const MODELS: [&str; 2] = ["flux", "sdxl"];

/// Sets a user holds at most (so the world stays small).
const MAX_SETS: usize = 2;
/// Collections a user holds at most.
const MAX_COLLECTIONS: usize = 2;

/// The first users, whose reads include the other key shapes as well (a
/// second page, another page size, sets filtered by prompt only and by
/// model only) and whose generation requests are read and updated: every
/// shape is covered, and the snapshot after each write stays small.
const VARIANT_USERS: usize = 2;

/// What a processing request's status may be set to.
const STATUSES: [&str; 4] = ["queued", "processing", "complete", "failed"];

/// One HTTP write and what it does to the world if it succeeds.
#[derive(Debug, Clone)]
pub(crate) struct Action {
    pub(crate) method: Method,
    pub(crate) path: String,
    pub(crate) body: Option<Value>,
    effect: Effect,
}

impl Action {
    fn new(method: Method, path: String, body: Option<Value>, effect: Effect) -> Action {
        Action {
            method,
            path,
            body,
            effect,
        }
    }

    /// `POST /users/1/likes/5 {…}`, for reports.
    pub(crate) fn describe(&self) -> String {
        match &self.body {
            Some(body) => format!("{} {} {body}", self.method, self.path),
            None => format!("{} {}", self.method, self.path),
        }
    }
}

#[derive(Debug, Clone)]
enum Effect {
    CreateUser,
    Like(u64, u64),
    Unlike(u64, u64),
    Follow(u64, u64),
    Unfollow(u64, u64),
    Comment(u64),
    DeleteComment(u64),
    LikeComment(u64, u64),
    UnlikeComment(u64, u64),
    Nothing,
    CreateCollection(u64),
    AddToCollection(u64, u64),
    RemoveFromCollection(u64, u64),
    DeleteCollection(u64),
    Generate(u64),
    DeleteSet(u64),
    DeleteImage(u64),
}

#[derive(Debug, Clone)]
struct SetInfo {
    user: u64,
    images: Vec<u64>,
}

#[derive(Debug, Clone)]
struct Collection {
    user: u64,
    images: BTreeSet<u64>,
}

#[derive(Debug, Default)]
pub(crate) struct Universe {
    users: Vec<u64>,
    /// Live sets.
    sets: BTreeMap<u64, SetInfo>,
    /// Live images and their sets.
    images: BTreeMap<u64, u64>,
    collections: BTreeMap<u64, Collection>,
    likes: BTreeSet<(u64, u64)>,
    follows: BTreeSet<(u64, u64)>,
    /// Comment id → image.
    comments: BTreeMap<u64, u64>,
    /// (user, comment) likes.
    comment_likes: BTreeSet<(u64, u64)>,
    /// Every image and set ever seen: their pages stay
    /// read paths (a deleted one reads as its 404).
    seen_images: BTreeSet<u64>,
    seen_sets: BTreeSet<u64>,
    /// The generation requests of the variant users (they outlive their
    /// sets): read paths, and what status updates target.
    requests: BTreeSet<u64>,
    /// For unique names: a run's own prefix (several runs may share a
    /// database) and a counter.
    nonce: u32,
    counter: u64,
}

fn id_of(response: &Value, field: &str) -> Option<u64> {
    response.get(field).and_then(Value::as_u64)
}

fn pick<T: Copy>(items: impl Iterator<Item = T>, rng: &mut impl Rng) -> Option<T> {
    items.collect::<Vec<T>>().choose(rng).copied()
}

impl Universe {
    pub(crate) fn users(&self) -> usize {
        self.users.len()
    }

    /// Every read path of the world as it is now.
    pub(crate) fn read_paths(&self) -> Vec<String> {
        let mut paths = Vec::new();
        for u in &self.users {
            paths.extend([
                format!("/users/{u}/login"),
                format!("/users/{u}/profile?page=1&page_size=10"),
                format!("/users/{u}/follow-stats"),
                format!("/users/{u}/feed?page=1&page_size=10"),
                format!("/users/{u}/likes"),
                format!("/users/{u}/collections"),
                format!("/users/{u}/sets"),
                format!(
                    "/users/{u}/sets?prompt={}&model={}",
                    PROMPTS[0].replace(' ', "%20"),
                    MODELS[0]
                ),
            ]);
        }
        for u in self.users.iter().take(VARIANT_USERS) {
            paths.extend([
                format!("/users/{u}/profile?page=2&page_size=2"),
                format!("/users/{u}/feed?page=2&page_size=2"),
                format!("/users/{u}/sets?prompt={}", PROMPTS[1].replace(' ', "%20")),
                format!("/users/{u}/sets?model={}", MODELS[1]),
            ]);
        }
        paths.extend(self.requests.iter().map(|r| format!("/processing/{r}")));
        paths.extend([
            "/explore?q=&page=1".to_owned(),
            "/explore?q=red&page=1".to_owned(),
        ]);
        paths.extend(self.seen_images.iter().map(|i| format!("/images/{i}")));
        paths.extend(self.seen_sets.iter().map(|s| format!("/sets/{s}")));
        paths
    }

    fn name(&mut self, what: &str) -> String {
        self.counter += 1;
        if self.nonce == 0 {
            self.nonce = rand::random::<u32>() | 1;
        }
        format!("{what}-{:08x}-{}", self.nonce, self.counter)
    }

    fn create_user(&mut self) -> Action {
        let username = self.name("user");
        Action::new(
            Method::POST,
            "/users".into(),
            Some(json!({ "username": username, "bio": "seeded" })),
            Effect::CreateUser,
        )
    }

    fn purchase(user: u64, amount: u64) -> Action {
        Action::new(
            Method::POST,
            format!("/users/{user}/credits/purchase"),
            Some(json!({ "amount": amount })),
            Effect::Nothing,
        )
    }

    fn generate(user: u64, rng: &mut impl Rng) -> Action {
        let prompt = *PROMPTS.choose(rng).expect("prompts");
        let model = *MODELS.choose(rng).expect("models");
        Action::new(
            Method::POST,
            "/images/generate".into(),
            Some(json!({
                "user_id": user,
                "prompt": prompt,
                "model": model,
                "count": rng.random_range(1..=2),
                "public": rng.random_bool(0.8),
            })),
            Effect::Generate(user),
        )
    }

    fn create_collection(&mut self, user: u64) -> Action {
        let name = self.name("collection");
        Action::new(
            Method::POST,
            "/collections".into(),
            Some(json!({ "user_id": user, "name": name })),
            Effect::CreateCollection(user),
        )
    }

    fn like(user: u64, image: u64) -> Action {
        Action::new(
            Method::POST,
            format!("/images/{image}/like"),
            Some(json!({ "user_id": user })),
            Effect::Like(user, image),
        )
    }

    fn follow(follower: u64, followee: u64) -> Action {
        Action::new(
            Method::POST,
            format!("/users/{followee}/follow"),
            Some(json!({ "follower_id": follower })),
            Effect::Follow(follower, followee),
        )
    }

    fn comment(&mut self, user: u64, image: u64) -> Action {
        let body = self.name("comment");
        Action::new(
            Method::POST,
            format!("/images/{image}/comments"),
            Some(json!({ "user_id": user, "body": body })),
            Effect::Comment(image),
        )
    }

    fn add_to_collection(collection: u64, image: u64) -> Action {
        Action::new(
            Method::POST,
            format!("/collections/{collection}/images"),
            Some(json!({ "image_id": image })),
            Effect::AddToCollection(collection, image),
        )
    }

    fn collections_of(&self, user: u64) -> impl Iterator<Item = u64> + '_ {
        self.collections
            .iter()
            .filter(move |(_, c)| c.user == user)
            .map(|(&id, _)| id)
    }

    fn sets_of(&self, user: u64) -> impl Iterator<Item = u64> + '_ {
        self.sets
            .iter()
            .filter(move |(_, s)| s.user == user)
            .map(|(&id, _)| id)
    }

    /// The writes that build the world a run starts from, round by round
    /// (a round may use what the ones before created); empty once done.
    pub(crate) fn seed_round(
        &mut self,
        round: usize,
        users: usize,
        rng: &mut impl Rng,
    ) -> Vec<Action> {
        let ids = self.users.clone();
        match round {
            0 => (0..users).map(|_| self.create_user()).collect(),
            1 => ids.iter().map(|&u| Self::purchase(u, 100_000)).collect(),
            2 | 3 => ids.iter().map(|&u| Self::generate(u, rng)).collect(),
            4 => ids.iter().map(|&u| self.create_collection(u)).collect(),
            5 => {
                let mut actions = Vec::new();
                for (n, &u) in ids.iter().enumerate() {
                    let next = ids[(n + 1) % ids.len()];
                    if next != u {
                        actions.push(Self::follow(u, next));
                    }
                    let image = pick(self.images.keys().copied(), rng);
                    if let Some(image) = image {
                        actions.push(Self::like(u, image));
                        actions.push(self.comment(u, image));
                    }
                    let collection = self.collections_of(u).next();
                    if let (Some(c), Some(image)) = (collection, image) {
                        actions.push(Self::add_to_collection(c, image));
                    }
                }
                actions
            }
            _ => Vec::new(),
        }
    }

    /// A random write on the world.
    pub(crate) fn random_action(&mut self, rng: &mut impl Rng) -> Action {
        let user = *self.users.choose(rng).expect("a seeded world has users");
        loop {
            if let Some(action) = self.try_action(user, rng.random_range(0..106u32), rng) {
                return action;
            }
        }
    }

    /// The action numbered `dice` (0..106, by weight) for `user`, if the
    /// world allows it.
    fn try_action(&mut self, user: u64, dice: u32, rng: &mut impl Rng) -> Option<Action> {
        let image = pick(self.images.keys().copied(), rng);
        let action = match dice {
            // Likes and unlikes.
            0..16 => {
                let image = image?;
                if self.likes.contains(&(user, image)) {
                    Action::new(
                        Method::DELETE,
                        format!("/images/{image}/like"),
                        Some(json!({ "user_id": user })),
                        Effect::Unlike(user, image),
                    )
                } else {
                    Self::like(user, image)
                }
            }
            // Follows and unfollows.
            16..30 => {
                let target = *self.users.choose(rng)?;
                if target == user {
                    return None;
                }
                if self.follows.contains(&(user, target)) {
                    Action::new(
                        Method::DELETE,
                        format!("/users/{target}/follow"),
                        Some(json!({ "follower_id": user })),
                        Effect::Unfollow(user, target),
                    )
                } else {
                    Self::follow(user, target)
                }
            }
            30..38 => self.comment(user, image?),
            38..42 => {
                let comment = pick(self.comments.keys().copied(), rng)?;
                Action::new(
                    Method::DELETE,
                    format!("/comments/{comment}"),
                    None,
                    Effect::DeleteComment(comment),
                )
            }
            42..47 => {
                let comment = pick(self.comments.keys().copied(), rng)?;
                let (method, effect) = if self.comment_likes.contains(&(user, comment)) {
                    (Method::DELETE, Effect::UnlikeComment(user, comment))
                } else {
                    (Method::POST, Effect::LikeComment(user, comment))
                };
                Action::new(
                    method,
                    format!("/comments/{comment}/like"),
                    Some(json!({ "user_id": user })),
                    effect,
                )
            }
            47..53 => {
                let username = self.name("renamed");
                Action::new(
                    Method::PUT,
                    format!("/users/{user}/username"),
                    Some(json!({ "username": username })),
                    Effect::Nothing,
                )
            }
            53..56 => {
                let bio = self.name("bio");
                Action::new(
                    Method::PUT,
                    format!("/users/{user}/bio"),
                    Some(json!({ "bio": bio })),
                    Effect::Nothing,
                )
            }
            56..58 => {
                let avatar = self.name("https://img.example/avatar");
                Action::new(
                    Method::PUT,
                    format!("/users/{user}/avatar"),
                    Some(json!({ "avatar_url": avatar })),
                    Effect::Nothing,
                )
            }
            58..61 => Self::purchase(user, rng.random_range(1..50)),
            61..64 => Action::new(
                Method::POST,
                format!("/users/{user}/credits/use"),
                Some(json!({ "amount": rng.random_range(1..5) })),
                Effect::Nothing,
            ),
            64..76 => {
                let Some(collection) = pick(self.collections_of(user), rng) else {
                    return Some(self.create_collection(user));
                };
                let image = image?;
                if self.collections[&collection].images.contains(&image) {
                    Action::new(
                        Method::DELETE,
                        format!("/collections/{collection}/images/{image}"),
                        None,
                        Effect::RemoveFromCollection(collection, image),
                    )
                } else {
                    Self::add_to_collection(collection, image)
                }
            }
            76..79 => {
                let collection = pick(self.collections_of(user), rng)?;
                let name = self.name("renamed-collection");
                Action::new(
                    Method::PUT,
                    format!("/collections/{collection}"),
                    Some(json!({ "name": name })),
                    Effect::Nothing,
                )
            }
            79..84 => {
                let mine: Vec<u64> = self.collections_of(user).collect();
                match mine.choose(rng) {
                    Some(&collection) if mine.len() >= MAX_COLLECTIONS => Action::new(
                        Method::DELETE,
                        format!("/collections/{collection}"),
                        None,
                        Effect::DeleteCollection(collection),
                    ),
                    _ => self.create_collection(user),
                }
            }
            84..87 => {
                let image = image?;
                Action::new(
                    Method::DELETE,
                    format!("/images/{image}"),
                    None,
                    Effect::DeleteImage(image),
                )
            }
            87..100 => {
                let mine: Vec<u64> = self.sets_of(user).collect();
                match mine.choose(rng) {
                    Some(&set) if mine.len() >= MAX_SETS || rng.random_bool(0.3) => Action::new(
                        Method::DELETE,
                        format!("/sets/{set}"),
                        None,
                        Effect::DeleteSet(set),
                    ),
                    _ => Self::generate(user, rng),
                }
            }
            // Processing status updates (of any user's request: the route
            // takes no user).
            _ => {
                let request = pick(self.requests.iter().copied(), rng)?;
                let status = *STATUSES.choose(rng).expect("statuses");
                Action::new(
                    Method::POST,
                    format!("/processing/{request}/status"),
                    Some(json!({ "status": status, "progress": rng.random_range(0..=100) })),
                    Effect::Nothing,
                )
            }
        };
        Some(action)
    }

    fn forget_image(&mut self, image: u64) {
        self.images.remove(&image);
        self.likes.retain(|&(_, i)| i != image);
        let gone: Vec<u64> = self
            .comments
            .iter()
            .filter(|(_, i)| **i == image)
            .map(|(&c, _)| c)
            .collect();
        for comment in gone {
            self.comments.remove(&comment);
            self.comment_likes.retain(|&(_, c)| c != comment);
        }
        for c in self.collections.values_mut() {
            c.images.remove(&image);
        }
    }

    /// What a successful `action` (answered with `response`) did.
    pub(crate) fn apply(&mut self, action: &Action, response: &Value) {
        match action.effect {
            Effect::CreateUser => self.users.extend(id_of(response, "id")),
            Effect::Like(u, i) => {
                self.likes.insert((u, i));
            }
            Effect::Unlike(u, i) => {
                self.likes.remove(&(u, i));
            }
            Effect::Follow(u, t) => {
                self.follows.insert((u, t));
            }
            Effect::Unfollow(u, t) => {
                self.follows.remove(&(u, t));
            }
            Effect::Comment(image) => {
                if let Some(id) = id_of(response, "id") {
                    self.comments.insert(id, image);
                }
            }
            Effect::DeleteComment(id) => {
                self.comments.remove(&id);
                self.comment_likes.retain(|&(_, c)| c != id);
            }
            Effect::LikeComment(u, c) => {
                self.comment_likes.insert((u, c));
            }
            Effect::UnlikeComment(u, c) => {
                self.comment_likes.remove(&(u, c));
            }
            Effect::Nothing => {}
            Effect::CreateCollection(user) => {
                if let Some(id) = id_of(response, "id") {
                    let images = BTreeSet::new();
                    self.collections.insert(id, Collection { user, images });
                }
            }
            Effect::AddToCollection(c, i) => {
                if let Some(c) = self.collections.get_mut(&c) {
                    c.images.insert(i);
                }
            }
            Effect::RemoveFromCollection(c, i) => {
                if let Some(c) = self.collections.get_mut(&c) {
                    c.images.remove(&i);
                }
            }
            Effect::DeleteCollection(c) => {
                self.collections.remove(&c);
            }
            Effect::Generate(user) => {
                let Some(set) = id_of(response, "set_id") else {
                    return;
                };
                let images: Vec<u64> = response
                    .get("image_ids")
                    .and_then(Value::as_array)
                    .map(|ids| ids.iter().filter_map(Value::as_u64).collect())
                    .unwrap_or_default();
                self.seen_sets.insert(set);
                let variant = self.users.iter().take(VARIANT_USERS).any(|&u| u == user);
                let request = response.pointer("/request/id").and_then(Value::as_u64);
                if let Some(request) = request.filter(|_| variant) {
                    self.requests.insert(request);
                }
                for &image in &images {
                    self.images.insert(image, set);
                    self.seen_images.insert(image);
                }
                self.sets.insert(set, SetInfo { user, images });
            }
            Effect::DeleteSet(set) => {
                if let Some(info) = self.sets.remove(&set) {
                    for image in info.images {
                        self.forget_image(image);
                    }
                }
            }
            Effect::DeleteImage(image) => {
                if let Some(info) = self.images.get(&image).and_then(|s| self.sets.get_mut(s)) {
                    info.images.retain(|&i| i != image);
                }
                self.forget_image(image);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    /// Five users (1..=5), each with one generated set of one image.
    fn world(rng: &mut StdRng) -> Universe {
        let mut u = Universe::default();
        for (n, action) in u.seed_round(0, 5, rng).into_iter().enumerate() {
            u.apply(&action, &json!({ "id": n + 1 }));
        }
        for user in 1..=5 {
            let response = json!({
                "request": { "id": 100 + user },
                "set_id": 200 + user,
                "image_ids": [300 + user],
            });
            u.apply(&Universe::generate(user, rng), &response);
        }
        u
    }

    #[test]
    fn the_read_paths_cover_every_key_shape() {
        let u = world(&mut StdRng::seed_from_u64(1));
        let paths = u.read_paths();
        for path in &paths {
            crate::read::Read::parse(path).unwrap_or_else(|e| panic!("{path}: {e:?}"));
        }
        for wanted in [
            "/users/1/profile?page=1&page_size=10",
            "/users/1/profile?page=2&page_size=2",
            "/users/1/feed?page=2&page_size=2",
            "/users/1/sets",
            "/users/1/sets?prompt=red%20fox&model=flux",
            "/users/1/sets?prompt=neon%20city",
            "/users/1/sets?model=sdxl",
            "/processing/101",
            "/processing/102",
        ] {
            assert!(paths.iter().any(|p| p == wanted), "{wanted} in {paths:?}");
        }
        // Past the variant users: their basic reads only.
        assert!(
            paths
                .iter()
                .any(|p| p == "/users/3/feed?page=1&page_size=10")
        );
        assert!(!paths.iter().any(|p| p.starts_with("/users/3/sets?model")));
        assert!(!paths.iter().any(|p| p == "/processing/103"));
    }

    #[test]
    fn status_updates_of_the_read_requests_are_drawn() {
        let mut rng = StdRng::seed_from_u64(2);
        let mut u = world(&mut rng);
        let updates: Vec<Action> = (0..2_000)
            .map(|_| u.random_action(&mut rng))
            .filter(|a| a.path.starts_with("/processing/"))
            .collect();
        assert!(updates.len() > 20, "{}", updates.len());
        for update in &updates {
            let request: u64 = update.path["/processing/".len()..]
                .strip_suffix("/status")
                .and_then(|id| id.parse().ok())
                .expect("/processing/{id}/status");
            assert!((101..=102).contains(&request), "{}", update.describe());
            let body = update.body.as_ref().expect("a body");
            assert!(STATUSES.contains(&body["status"].as_str().unwrap()));
            assert!((0..=100).contains(&body["progress"].as_i64().unwrap()));
        }
    }
}
