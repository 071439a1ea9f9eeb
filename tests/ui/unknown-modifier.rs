use cachemacro_runtime::cached;

#[cached(key = "search:<q:sha>", ttl = 60)]
async fn search(q: String) -> Vec<String> {
    vec![q]
}

fn main() {
    drop(search(String::new()));
}
