use cachemacro_runtime::cached;

#[cached(key = "user:<user_id>", ttl = 60, timeout = "200ms")]
async fn user_name(user_id: u64) -> String {
    format!("user {user_id}")
}

fn main() {
    let _ = user_name(1);
}
