use cachemacro_runtime::invalidates;

#[invalidates("user:<user_id>", before = "yes")]
async fn rename(user_id: u64) {
    let _ = user_id;
}

fn main() {
    let _ = rename(1);
}
