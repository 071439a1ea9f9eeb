use cachemacro_runtime::cached;

#[cached(key = "user:<user_id>", ttl = "5m", none_ttl = "30s")]
async fn user_name(user_id: u64) -> Result<String, std::io::Error> {
    Ok(format!("user {user_id}"))
}

fn main() {
    drop(user_name(1));
}
