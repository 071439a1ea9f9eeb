use cachemacro_runtime::cached;

pub struct NoSerde {
    pub name: String,
}

#[cached(key = "user:<user_id>", ttl = 60)]
async fn user(user_id: u64) -> Result<NoSerde, std::io::Error> {
    Ok(NoSerde {
        name: format!("user {user_id}"),
    })
}

fn main() {
    drop(user(1));
}
