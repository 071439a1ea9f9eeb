//! A trait-less `impl` block: an async method keyed on `<self.id>`, with the
//! process default cache.
use std::sync::atomic::{AtomicU32, Ordering};

use cachemacro_runtime::cached;

static LOADS: AtomicU32 = AtomicU32::new(0);

pub struct Account {
    id: u64,
}

impl Account {
    #[cached(key = "account:<self.id>:balance", ttl = "5m")]
    pub async fn balance(&self) -> i64 {
        LOADS.fetch_add(1, Ordering::SeqCst);
        self.id as i64 * 100
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let (a, b) = (Account { id: 1 }, Account { id: 2 });
    assert_eq!(a.balance().await, 100);
    assert_eq!(a.balance().await, 100);
    assert_eq!(b.balance().await, 200);
    assert_eq!(LOADS.load(Ordering::SeqCst), 2);
}
