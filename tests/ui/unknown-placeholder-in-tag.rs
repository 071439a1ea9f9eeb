use cachemacro_runtime::{cached, invalidates};

#[cached(key = "user:<user_id>", ttl = 60, tags = ["org:<org_id>"])]
async fn user_name(user_id: u64) -> String {
    format!("user {user_id}")
}

#[invalidates(tag = "user:<usr_id>")]
async fn rename(user_id: u64) {
    let _ = user_id;
}

fn main() {
    let _ = user_name(1);
    let _ = rename(1);
}
