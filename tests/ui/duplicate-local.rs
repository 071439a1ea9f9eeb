use cachemacro_runtime::cached;

#[cached(key = "user:<user_id>", ttl = 60, local = false, local = true)]
async fn user_name(user_id: u64) -> String {
    format!("user {user_id}")
}

#[cached(key = "user-email:<user_id>", ttl = 60, local_ttl = "30s", local_ttl = 10)]
async fn user_email(user_id: u64) -> String {
    format!("user {user_id}")
}

fn main() {
    drop(user_name(1));
    drop(user_email(1));
}
