//! The small world a run works on: its users, images, sets, collections,
//! likes, follows and comments as the checker believes them to be (from
//! the answers of its own writes), the read paths over it, and the random
//! actions a writer takes on it.

use std::collections::{BTreeMap, BTreeSet};

use rand::Rng;
use rand::seq::IndexedRandom;
use serde_json::{Value, json};

/// The prompts and models images are generated with, and filtered by.
const PROMPTS: [&str; 3] = ["red fox", "neon city", "red city"];
const MODELS: [&str; 2] = ["flux", "sdxl"];

/// Sets a user holds at most (so the world stays small).
const MAX_SETS: usize = 3;
/// Collections a user holds at most.
const MAX_COLLECTIONS: usize = 2;

/// One HTTP write and what it does to the world if it succeeds.
#[derive(Debug, Clone)]
pub(crate) struct Action {
    pub(crate) method: reqwest::Method,
    pub(crate) path: String,
    pub(crate) body: Option<Value>,
    effect: Effect,
}

impl Action {
    fn new(method: reqwest::Method, path: String, body: Option<Value>, effect: Effect) -> Action {
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
    Nothing,
    CreateCollection(u64),
    AddToCollection(u64, u64),
    RemoveFromCollection(u64, u64),
    DeleteCollection(u64),
    Generate(u64),
    DeleteSet(u64),
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
    /// Live images and their owners.
    images: BTreeMap<u64, u64>,
    collections: BTreeMap<u64, Collection>,
    likes: BTreeSet<(u64, u64)>,
    follows: BTreeSet<(u64, u64)>,
    /// Comment id → image.
    comments: BTreeMap<u64, u64>,
    /// Every image and set ever seen: their pages stay read paths (a
    /// deleted one is read as not found).
    seen_images: BTreeSet<u64>,
    seen_sets: BTreeSet<u64>,
    /// For unique names.
    counter: u64,
}

fn id_of(response: &Value) -> Option<u64> {
    response.get("id").and_then(Value::as_u64)
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
                format!("/users/{u}/profile?page=2&page_size=2"),
                format!("/users/{u}/follow-stats"),
                format!("/users/{u}/feed?page=1&page_size=10"),
                format!("/users/{u}/likes"),
                format!("/users/{u}/collections"),
                format!("/users/{u}/sets"),
                format!("/users/{u}/sets?prompt={}", PROMPTS[0].replace(' ', "%20")),
                format!("/users/{u}/sets?model={}", MODELS[0]),
                format!(
                    "/users/{u}/sets?prompt={}&model={}",
                    PROMPTS[1].replace(' ', "%20"),
                    MODELS[1]
                ),
            ]);
        }
        paths.extend([
            "/explore?q=&page=1".to_owned(),
            "/explore?q=red&page=1".to_owned(),
            "/explore?q=&page=2".to_owned(),
        ]);
        paths.extend(self.seen_images.iter().map(|i| format!("/images/{i}")));
        paths.extend(self.seen_sets.iter().map(|s| format!("/sets/{s}")));
        paths
    }

    fn name(&mut self, what: &str) -> String {
        self.counter += 1;
        format!("{what}-{}", self.counter)
    }

    pub(crate) fn create_user(&mut self) -> Action {
        let username = self.name("user");
        Action::new(
            reqwest::Method::POST,
            "/users".into(),
            Some(json!({ "username": username })),
            Effect::CreateUser,
        )
    }

    fn generate(&mut self, user: u64, rng: &mut impl Rng) -> Action {
        let prompt = *PROMPTS.choose(rng).expect("prompts");
        let model = *MODELS.choose(rng).expect("models");
        Action::new(
            reqwest::Method::POST,
            format!("/users/{user}/images"),
            Some(json!({ "prompt": prompt, "model": model })),
            Effect::Generate(user),
        )
    }

    fn create_collection(&mut self, user: u64) -> Action {
        let name = self.name("collection");
        Action::new(
            reqwest::Method::POST,
            format!("/users/{user}/collections"),
            Some(json!({ "name": name })),
            Effect::CreateCollection(user),
        )
    }

    fn like(user: u64, image: u64) -> Action {
        Action::new(
            reqwest::Method::POST,
            format!("/users/{user}/likes/{image}"),
            None,
            Effect::Like(user, image),
        )
    }

    fn follow(user: u64, target: u64) -> Action {
        Action::new(
            reqwest::Method::POST,
            format!("/users/{user}/follows/{target}"),
            None,
            Effect::Follow(user, target),
        )
    }

    fn comment(&mut self, user: u64, image: u64) -> Action {
        let body = self.name("comment");
        Action::new(
            reqwest::Method::POST,
            format!("/images/{image}/comments"),
            Some(json!({ "user_id": user, "body": body })),
            Effect::Comment(image),
        )
    }

    fn add_to_collection(collection: u64, image: u64) -> Action {
        Action::new(
            reqwest::Method::POST,
            format!("/collections/{collection}/images/{image}"),
            None,
            Effect::AddToCollection(collection, image),
        )
    }

    /// The writes that build the world a run starts from, in order; call
    /// [`Universe::seed_round`] again until it returns nothing.
    pub(crate) fn seed_round(
        &mut self,
        round: usize,
        users: usize,
        rng: &mut impl Rng,
    ) -> Vec<Action> {
        let ids = self.users.clone();
        match round {
            0 => (0..users).map(|_| self.create_user()).collect(),
            1 | 2 => ids.iter().map(|&u| self.generate(u, rng)).collect(),
            3 => ids.iter().map(|&u| self.create_collection(u)).collect(),
            4 => {
                let mut actions = Vec::new();
                for (n, &u) in ids.iter().enumerate() {
                    let next = ids[(n + 1) % ids.len()];
                    if next != u {
                        actions.push(Self::follow(u, next));
                    }
                    let images: Vec<u64> = self.images.keys().copied().collect();
                    if let Some(&image) = images.choose(rng) {
                        actions.push(Self::like(u, image));
                        actions.push(self.comment(u, image));
                    }
                    let collection = self
                        .collections
                        .iter()
                        .find(|(_, c)| c.user == u)
                        .map(|(&id, _)| id);
                    if let (Some(c), Some(&image)) = (collection, images.choose(rng)) {
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
        use reqwest::Method;
        let user = *self.users.choose(rng).expect("a seeded world has users");
        loop {
            let action = match rng.random_range(0..100u32) {
                // Likes and unlikes.
                0..20 => {
                    let Some(&image) = self.images.keys().collect::<Vec<_>>().choose(rng) else {
                        continue;
                    };
                    if self.likes.contains(&(user, *image)) {
                        Action::new(
                            Method::DELETE,
                            format!("/users/{user}/likes/{image}"),
                            None,
                            Effect::Unlike(user, *image),
                        )
                    } else {
                        Self::like(user, *image)
                    }
                }
                // Follows and unfollows.
                20..35 => {
                    let target = *self.users.choose(rng).expect("users");
                    if target == user {
                        continue;
                    }
                    if self.follows.contains(&(user, target)) {
                        Action::new(
                            Method::DELETE,
                            format!("/users/{user}/follows/{target}"),
                            None,
                            Effect::Unfollow(user, target),
                        )
                    } else {
                        Self::follow(user, target)
                    }
                }
                35..45 => {
                    let Some(&image) = self.images.keys().collect::<Vec<_>>().choose(rng) else {
                        continue;
                    };
                    self.comment(user, *image)
                }
                45..50 => {
                    let Some(&comment) = self.comments.keys().collect::<Vec<_>>().choose(rng)
                    else {
                        continue;
                    };
                    Action::new(
                        Method::DELETE,
                        format!("/comments/{comment}"),
                        None,
                        Effect::DeleteComment(*comment),
                    )
                }
                50..58 => {
                    let username = self.name("renamed");
                    Action::new(
                        Method::PUT,
                        format!("/users/{user}/username"),
                        Some(json!({ "username": username })),
                        Effect::Nothing,
                    )
                }
                58..64 => Action::new(
                    Method::POST,
                    format!("/users/{user}/credits"),
                    Some(json!({ "amount": rng.random_range(1..50u32) })),
                    Effect::Nothing,
                ),
                64..78 => {
                    let mine: Vec<u64> = self
                        .collections
                        .iter()
                        .filter(|(_, c)| c.user == user)
                        .map(|(&id, _)| id)
                        .collect();
                    let Some(&collection) = mine.choose(rng) else {
                        return self.create_collection(user);
                    };
                    let Some(&image) = self.images.keys().collect::<Vec<_>>().choose(rng) else {
                        continue;
                    };
                    if self.collections[&collection].images.contains(image) {
                        Action::new(
                            Method::DELETE,
                            format!("/collections/{collection}/images/{image}"),
                            None,
                            Effect::RemoveFromCollection(collection, *image),
                        )
                    } else {
                        Self::add_to_collection(collection, *image)
                    }
                }
                78..86 => {
                    let mine: Vec<u64> = self
                        .collections
                        .iter()
                        .filter(|(_, c)| c.user == user)
                        .map(|(&id, _)| id)
                        .collect();
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
                _ => {
                    let mine: Vec<u64> = self
                        .sets
                        .iter()
                        .filter(|(_, s)| s.user == user)
                        .map(|(&id, _)| id)
                        .collect();
                    match mine.choose(rng) {
                        Some(&set) if mine.len() >= MAX_SETS || rng.random_bool(0.3) => {
                            Action::new(
                                Method::DELETE,
                                format!("/sets/{set}"),
                                None,
                                Effect::DeleteSet(set),
                            )
                        }
                        _ => self.generate(user, rng),
                    }
                }
            };
            return action;
        }
    }

    /// What a successful `action` (answered with `response`) did.
    pub(crate) fn apply(&mut self, action: &Action, response: &Value) {
        match action.effect {
            Effect::CreateUser => self.users.extend(id_of(response)),
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
                if let Some(id) = id_of(response) {
                    self.comments.insert(id, image);
                }
            }
            Effect::DeleteComment(id) => {
                self.comments.remove(&id);
            }
            Effect::Nothing => {}
            Effect::CreateCollection(user) => {
                if let Some(id) = id_of(response) {
                    self.collections.insert(
                        id,
                        Collection {
                            user,
                            images: BTreeSet::new(),
                        },
                    );
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
                let Some(set) = id_of(response) else { return };
                let images: Vec<u64> = response
                    .get("images")
                    .and_then(Value::as_array)
                    .map(|images| images.iter().filter_map(id_of).collect())
                    .unwrap_or_default();
                self.seen_sets.insert(set);
                for &image in &images {
                    self.images.insert(image, user);
                    self.seen_images.insert(image);
                }
                self.sets.insert(set, SetInfo { user, images });
            }
            Effect::DeleteSet(set) => {
                if let Some(info) = self.sets.remove(&set) {
                    for image in info.images {
                        self.images.remove(&image);
                        self.likes.retain(|&(_, i)| i != image);
                        self.comments.retain(|_, &mut i| i != image);
                        for c in self.collections.values_mut() {
                            c.images.remove(&image);
                        }
                    }
                }
            }
        }
    }
}
