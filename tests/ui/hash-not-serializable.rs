use cachemacro_runtime::cached;

pub struct Filter {
    pub tag: String,
}

#[cached(key = "search:<filter:hash>", ttl = 60)]
async fn search(filter: Filter) -> Vec<String> {
    vec![filter.tag]
}

fn main() {
    drop(search(Filter { tag: String::new() }));
}
