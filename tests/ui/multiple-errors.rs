use cachemacro_runtime::cached;

#[cached(key = "user:<usr_id>", ttl = "soon", tll = 60, key = "again")]
fn user_name(user_id: u64) -> String {
    format!("user {user_id}")
}

fn main() {
    drop(user_name(1));
}
