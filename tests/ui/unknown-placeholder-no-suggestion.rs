use cachemacro_runtime::cached;

#[cached(key = "user:<account>", ttl = 60)]
async fn user_name(user_id: u64, locale: String) -> String {
    format!("user {user_id} {locale}")
}

fn main() {
    drop(user_name(1, String::new()));
}
