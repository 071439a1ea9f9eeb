use cachemacro_runtime::cached;

#[cached(key = "user:<user_id>", ttl = 60, cache = "redis://localhost")]
async fn user_name(user_id: u64) -> String {
    format!("user {user_id}")
}

fn main() {
    drop(user_name(1));
    drop(user_email(&Settings { url: String::new() }, 1));
}

pub struct Settings {
    pub url: String,
}

#[cached(key = "user:<user_id>", ttl = 60, cache = settings.url)]
async fn user_email(settings: &Settings, user_id: u64) -> String {
    format!("user {user_id} {}", settings.url)
}
