#![deny(unused_must_use)]

use cachemacro_runtime::cached;

/// The attribute's own `#[must_use]` still applies to the awaited value.
#[cached(key = "user:<user_id>", ttl = 60)]
#[must_use]
async fn user_name(user_id: u64) -> String {
    format!("user {user_id}")
}

async fn caller() {
    user_name(1).await;
}

fn main() {
    drop(caller());
}
