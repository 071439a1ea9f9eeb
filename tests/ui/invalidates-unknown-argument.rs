use cachemacro_runtime::invalidates;

#[invalidates("user:<user_id>", ttl = 60)]
async fn rename(user_id: u64) {
    let _ = user_id;
}

fn main() {
    drop(rename(1));
}
