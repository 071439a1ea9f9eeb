use cachemacro_runtime::cached;

#[derive(Debug)]
struct Slow;

impl From<cachemacro_runtime::LoadTimeout> for Slow {
    fn from(_: cachemacro_runtime::LoadTimeout) -> Self {
        Slow
    }
}

#[cached(key = "user:<user_id>", ttl = 60, fail_safe = "1h", timeout = "2s", hard_timeout = "1s")]
async fn user_name(user_id: u64) -> Result<String, Slow> {
    Ok(format!("user {user_id}"))
}

fn main() {
    let _ = user_name(1);
}
