use cachemacro_runtime::cached;

#[cached(key = "user:<user_id>", ttl = "1y")]
async fn user_name(user_id: u64) -> String {
    format!("user {user_id}")
}

#[cached(key = "org:<org_id>", ttl = "1h", fail_safe = "2 months")]
async fn org_name(org_id: u64) -> Result<String, std::io::Error> {
    Ok(format!("org {org_id}"))
}

fn main() {
    drop(user_name(1));
    drop(org_name(1));
}
