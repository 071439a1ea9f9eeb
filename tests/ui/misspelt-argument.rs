use cachemacro_runtime::cached;

#[cached(key = "user:<user_id>", ttl = 60, hard_timout = "2s")]
async fn user_name(user_id: u64) -> Result<String, std::io::Error> {
    Ok(format!("user {user_id}"))
}

#[cached(key = "org:<org_id>", ttl = 60, krate = "::cachemacro_runtime")]
async fn org_name(org_id: u64) -> String {
    format!("org {org_id}")
}

fn main() {
    drop(user_name(1));
    drop(org_name(1));
}
