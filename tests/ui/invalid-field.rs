use cachemacro_runtime::cached;

#[cached(key = "pair:<pair.99999999999>", ttl = 60)]
async fn first(pair: (u64, u64)) -> u64 {
    pair.0
}

#[cached(key = "set:<set.>", ttl = 60)]
async fn second(set: (u64, u64)) -> u64 {
    set.1
}

// U+0345 is alphabetic but cannot start an identifier.
#[cached(key = "set:<set.\u{345}x>", ttl = 60)]
async fn third(set: (u64, u64)) -> u64 {
    set.1
}

fn main() {
    drop(first((1, 2)));
    drop(second((1, 2)));
    drop(third((1, 2)));
}
