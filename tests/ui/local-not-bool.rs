use cachemacro_runtime::cached;

#[cached(key = "user:<user_id>", ttl = 60, local = "no")]
async fn user_name(user_id: u64) -> String {
    format!("user {user_id}")
}

fn main() {
    drop(user_name(1));
}
