use cachemacro_runtime::cached;

pub struct Json;

#[cached(key = "user:<user_id>", ttl = 60, codec = Json)]
async fn user_name(user_id: u64) -> String {
    format!("user {user_id}")
}

fn main() {
    drop(user_name(1));
}
