use cachemacro_runtime::{cached, invalidates};

#[cached(key = "user:<user_id>", ttl = 60, 42)]
async fn user_name(user_id: u64) -> String {
    format!("user {user_id}")
}

#[invalidates(42)]
async fn rename(user_id: u64) {
    let _ = user_id;
}

fn main() {
    drop(user_name(1));
    drop(rename(1));
}
