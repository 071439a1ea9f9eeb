//! Key building and value encoding: the CPU work around every cache call.
//!
//! `cargo bench --bench keys`. No server needed.
//!
//! * `keys/build/*` builds `sets:user:<user_id>:<prompt>:<model>` exactly as
//!   `#[cached]` expands it (a `KeyBuilder` from the macro's private support
//!   module, so this bench follows the macro crate's version), with plain
//!   values and with same-length values full of `:` and `*` that must be
//!   escaped; `keys/build/hashed_filters` is `sets:user:<user_id>:<filters:hash>`.
//! * `codec/*` is a ~1 KiB value through the default codec (`Bincode`, public
//!   `Codec` trait), and through `Cache::memory()` `set`/`get`, which adds
//!   the entry header, the type fingerprint check and the memory store.

use std::hint::black_box;
use std::time::Duration;

use cachemacro_runtime::__private::KeyBuilder;
use cachemacro_runtime::{Bincode, Cache, Codec, encode_key_part};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde::{Deserialize, Serialize};

/// `sets:user:<user_id>:<prompt>:<model>`, segment by segment.
fn sets_key(user_id: u64, prompt: Option<&str>, model: Option<&str>) -> String {
    let mut k = KeyBuilder::new("sets:user:::".len());
    k.lit("sets:user:")
        .part(&user_id)
        .lit(":")
        .part(&prompt)
        .lit(":")
        .part(&model);
    k.key().expect("plain parts never fail")
}

#[derive(Serialize)]
struct SetFilters<'a> {
    prompt: Option<&'a str>,
    model: Option<&'a str>,
    page: u32,
    per_page: u32,
    sort: &'a str,
}

/// `sets:user:<user_id>:<filters:hash>`.
fn hashed_key(user_id: u64, filters: &SetFilters<'_>) -> String {
    let mut k = KeyBuilder::new("sets:user::".len());
    k.lit("sets:user:").part(&user_id).lit(":").hashed(filters);
    k.key().expect("the filters serialize")
}

// Same lengths, so the difference is the escaping.
const PLAIN_PROMPT: &str = "a_cat_in_space_wearing_a_red_hat_v2";
const HOSTILE_PROMPT: &str = "a:cat*in:space*wearing:a*red:hat*v2";
const PLAIN_MODEL: &str = "sdxl-1.0";
const HOSTILE_MODEL: &str = "sd:xl*10";

fn keys(c: &mut Criterion) {
    assert_eq!(PLAIN_PROMPT.len(), HOSTILE_PROMPT.len());
    assert_eq!(
        sets_key(42, Some(HOSTILE_PROMPT), None),
        format!("sets:user:42:{}:~", encode_key_part(HOSTILE_PROMPT)),
        "the bench builds keys the way the runtime encodes them"
    );

    let mut group = c.benchmark_group("keys/build");
    group
        .sample_size(50)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2));
    group.bench_function("no_filters", |b| {
        b.iter(|| sets_key(black_box(42), black_box(None), black_box(None)));
    });
    group.bench_function("plain", |b| {
        b.iter(|| {
            sets_key(
                black_box(42),
                black_box(Some(PLAIN_PROMPT)),
                black_box(Some(PLAIN_MODEL)),
            )
        });
    });
    group.bench_function("hostile", |b| {
        b.iter(|| {
            sets_key(
                black_box(42),
                black_box(Some(HOSTILE_PROMPT)),
                black_box(Some(HOSTILE_MODEL)),
            )
        });
    });
    let filters = SetFilters {
        prompt: Some(HOSTILE_PROMPT),
        model: Some(PLAIN_MODEL),
        page: 3,
        per_page: 50,
        sort: "newest",
    };
    group.bench_function("hashed_filters", |b| {
        b.iter(|| hashed_key(black_box(42), black_box(&filters)));
    });
    group.finish();
}

#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
struct Set {
    id: u64,
    user_id: u64,
    prompt: String,
    model: String,
    image_ids: Vec<u64>,
}

/// A page of sets, about 1 KiB once encoded.
fn page() -> Vec<Set> {
    (0..8)
        .map(|i| Set {
            id: 10_000 + i,
            user_id: 42,
            prompt: format!("a cat in space, variation {i}, wearing a red hat"),
            model: "sdxl-1.0".into(),
            image_ids: (0..16).map(|n| 1_000_000 + i * 100 + n).collect(),
        })
        .collect()
}

fn codec(c: &mut Criterion) {
    let value = page();
    let bytes = Bincode::encode(&value).expect("encodes");
    println!("codec: the value is {} bytes encoded", bytes.len());

    let mut group = c.benchmark_group("codec");
    group
        .sample_size(50)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2))
        .throughput(Throughput::Bytes(bytes.len() as u64));
    group.bench_function("bincode_encode", |b| {
        b.iter(|| Bincode::encode(black_box(&value)).expect("encodes"));
    });
    group.bench_function("bincode_decode", |b| {
        b.iter(|| Bincode::decode::<Vec<Set>>(black_box(&bytes)).expect("decodes"));
    });

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let cache = Cache::memory();
    let ttl = Duration::from_secs(3600);
    group.bench_function("memory_set", |b| {
        b.to_async(&rt).iter(|| async {
            cache
                .set("sets:user:42:~:~", black_box(&value), ttl)
                .await
                .expect("stored")
        });
    });
    assert_eq!(
        rt.block_on(cache.get::<Vec<Set>>("sets:user:42:~:~"))
            .expect("read"),
        Some(value.clone())
    );
    group.bench_function("memory_get", |b| {
        b.to_async(&rt).iter(|| async {
            cache
                .get::<Vec<Set>>(black_box("sets:user:42:~:~"))
                .await
                .expect("read")
                .expect("a hit")
        });
    });
    group.finish();
}

criterion_group!(benches, keys, codec);
criterion_main!(benches);
