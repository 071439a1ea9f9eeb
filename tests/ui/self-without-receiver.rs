use cachemacro_runtime::cached;

pub struct Repo {
    pub id: u64,
}

impl Repo {
    #[cached(key = "repo:<self.id>", ttl = 60)]
    async fn name(id: u64) -> String {
        format!("repo {id}")
    }
}

fn main() {
    drop(Repo::name(1));
    let _ = Repo { id: 1 }.id;
}
