//! The panic boundary every exported function runs behind.

use std::panic::{catch_unwind, AssertUnwindSafe};

/// Runs `f`; if it panics, returns `fallback` (the host's failure value) instead of unwinding
/// into C, which would abort the host process.
pub fn boundary<T>(what: &str, fallback: T, f: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(v) => v,
        Err(e) => {
            let msg = e
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| e.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            eprintln!("[input:mimecast] internal error in {what}: {msg}; the call failed safely");
            fallback
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn panics_become_the_fallback() {
        assert_eq!(super::boundary("t", -1, || -> i32 { panic!("boom") }), -1);
        assert_eq!(super::boundary("t", -1, || 5), 5);
    }
}
