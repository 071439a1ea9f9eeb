use cachemacro_runtime::cached;

pub struct Set {
    pub id: u64,
    pub user_id: u64,
}

#[cached(key = "sets:user:<set.usr_id>", ttl = 60)]
async fn set_size(set: &Set) -> u64 {
    set.id
}

fn main() {
    let set = Set { id: 1, user_id: 2 };
    drop(set_size(&set));
    let _ = set.user_id;
}
