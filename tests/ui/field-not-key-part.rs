use cachemacro_runtime::cached;

pub struct Owner {
    pub name: String,
}

pub struct Set {
    pub owner: Owner,
}

#[cached(key = "sets:owner:<set.owner>", ttl = 60)]
async fn set_size(set: &Set) -> usize {
    set.owner.name.len()
}

fn main() {
    drop(set_size(&Set {
        owner: Owner {
            name: String::new(),
        },
    }));
}
