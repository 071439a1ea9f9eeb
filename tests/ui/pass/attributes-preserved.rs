//! Doc comments, lints, `#[must_use]` and visibility survive the macro.
#![deny(missing_docs, unused_must_use)]

use cachemacro_runtime::{cached, invalidates};

/// Module docs are required by `missing_docs` for the public items below.
pub(crate) mod repo {
    use super::*;

    /// A documented, `pub(crate)` cached function.
    #[cached(key = "doc:<id>", ttl = 60)]
    #[must_use]
    #[allow(clippy::needless_return)]
    pub(crate) async fn documented(id: u64) -> u64 {
        return id + 1;
    }

    /// A documented public invalidation.
    #[invalidates("doc:<id>")]
    #[allow(unused_variables)]
    pub async fn forget(id: u64, unused: u8) {}
}

/// The entry point.
#[tokio::main(flavor = "current_thread")]
async fn main() {
    let value = repo::documented(1).await;
    assert_eq!(value, 2);
    repo::forget(1, 0).await;
}
