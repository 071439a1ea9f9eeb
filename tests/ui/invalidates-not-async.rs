use cachemacro_runtime::invalidates;

#[invalidates("user:<user_id>")]
fn rename(user_id: u64) {
    let _ = user_id;
}

fn main() {
    rename(1);
}
