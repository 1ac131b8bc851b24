//! What the fuzz targets share: one runtime for the whole run, as a host keeps one.

use std::ptr;
use std::sync::OnceLock;

use remotemedia::capi::{RmRuntime, RmStatus, rm_runtime_new};

/// The process's runtime, made on first use and never freed (reachable, so no leak).
pub fn runtime() -> *const RmRuntime {
    static RUNTIME: OnceLock<usize> = OnceLock::new();
    *RUNTIME.get_or_init(|| {
        let mut rt = ptr::null_mut();
        assert_eq!(unsafe { rm_runtime_new(&mut rt) }, RmStatus::Ok);
        rt as usize
    }) as *const RmRuntime
}
