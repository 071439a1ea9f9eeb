use cachemacro_runtime::cached;

#[cached(key = "user:<user_id>", ttl = 60, stale = "10m")]
async fn user_name(user_id: u64, (first, last): (String, String)) -> String {
    format!("user {user_id}: {first} {last}")
}

fn main() {
    let _ = user_name(1, (String::new(), String::new()));
}
