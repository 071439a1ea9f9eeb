use cachemacro_runtime::cached;

#[cached(key = "user:<user_id>", ttl = "5m", local = false, local_ttl = "30s")]
async fn user_name(user_id: u64) -> String {
    format!("user {user_id}")
}

// Either order.
#[cached(key = "user-email:<user_id>", ttl = "5m", local_ttl = "30s", local = false)]
async fn user_email(user_id: u64) -> String {
    format!("user {user_id}")
}

fn main() {
    drop(user_name(1));
    drop(user_email(1));
}
