//! Panics inside the store (redb can panic on a page damaged after open) become store errors.

use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::store::StoreError;

/// The text of a panic payload.
pub(crate) fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".to_owned())
}

/// Runs a store call, turning a panic into a [`StoreError`].
pub(crate) fn unwind<T>(f: impl FnOnce() -> Result<T, StoreError>) -> Result<T, StoreError> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(panic) => Err(StoreError {
            message: format!(
                "the store panicked (damaged file?): {}",
                panic_text(&*panic)
            ),
            io: None,
            no_space: false,
        }),
    }
}
