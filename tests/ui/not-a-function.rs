use cachemacro_runtime::cached;

#[cached(key = "user:<id>", ttl = 60)]
pub struct User {
    pub id: u64,
}

fn main() {
    let _ = User { id: 1 }.id;
}
