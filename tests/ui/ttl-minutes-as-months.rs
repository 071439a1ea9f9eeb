use cachemacro_runtime::cached;

// `M` is humantime's unit for months: refused, with a pointer to `m`.
#[cached(key = "user:<user_id>", ttl = "5M")]
async fn user_name(user_id: u64) -> String {
    format!("user {user_id}")
}

fn main() {
    drop(user_name(1));
}
