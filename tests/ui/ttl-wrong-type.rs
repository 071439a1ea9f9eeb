use cachemacro_runtime::cached;

#[cached(key = "user:<user_id>", ttl = 1.5)]
async fn user_name(user_id: u64) -> String {
    format!("user {user_id}")
}

#[cached(key = "user:<user_id>", ttl = true)]
async fn user_email(user_id: u64) -> String {
    format!("user {user_id}")
}

fn main() {
    drop(user_name(1));
    drop(user_email(1));
}
