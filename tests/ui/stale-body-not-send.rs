use std::rc::Rc;

use cachemacro_runtime::cached;

#[cached(key = "user:<user_id>", ttl = 60, stale = "10m")]
async fn user_name(user_id: u64) -> String {
    let local = Rc::new(user_id);
    tokio::task::yield_now().await;
    format!("user {local}")
}

fn main() {
    let _ = user_name(1);
}
