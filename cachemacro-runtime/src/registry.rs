//! The registry: every `#[cached]` and `#[invalidates]` in the program,
//! collected at link time, so that the wiring between writes and reads can
//! be printed and checked.

use crate::__private::{InvalidationSite, Site};

/// One attributed function, as the macro registered it.
#[doc(hidden)]
pub enum Registration {
    /// A `#[cached]` function.
    Cached(&'static Site),
    /// An `#[invalidates]` function.
    Invalidates(&'static InvalidationSite),
}

inventory::collect!(Registration);
