use cachemacro_runtime::invalidates;

#[invalidates("a:*:b")]
async fn rename(user_id: u64) {
    let _ = user_id;
}

fn main() {
    drop(rename(1));
}
