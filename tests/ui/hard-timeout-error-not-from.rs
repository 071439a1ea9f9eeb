use cachemacro_runtime::cached;

#[cached(key = "user:<user_id>", ttl = 60, hard_timeout = "1s")]
async fn user_name(user_id: u64) -> Result<String, std::num::ParseIntError> {
    Ok(format!("user {user_id}"))
}

fn main() {
    let _ = user_name(1);
}
