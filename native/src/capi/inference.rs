//! Process-wide inference settings: where onnxruntime is loaded from, and the
//! inference thread budget (`crate::model`). They hold for every runtime of the process.

use std::ffi::c_char;

use super::{RmStatus, guard};
use crate::error::Error;
use crate::ffi::str_arg;

/// Names the onnxruntime library (`libonnxruntime.so`, version 1.17 or newer) that the
/// `Model` node loads when a model first needs it; without this call,
/// `REMOTEMEDIA_ONNXRUNTIME`, then `libonnxruntime.so` on the loader's path. The file is
/// not opened here: a missing or too old library fails the building of the pipeline
/// that needs it, with a manifest error at the node's `params.engine`. Fails with
/// `RM_STATUS_INVALID_ARGUMENT` once a library is loaded from another path (one per
/// process). `path` is borrowed for the call. Any thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rm_onnxruntime_set_path(path: *const c_char) -> RmStatus {
    guard(|| {
        let path = unsafe { str_arg(path, "path") }?;
        crate::model::onnxruntime::set_library(path).map_err(Error::InvalidArgument)
    })
}

/// Sets the process-wide inference thread budget: at most `threads` model calls (every
/// engine) run at once in the process, each on its caller's thread; callers over it
/// wait. 1 to 1024; the default is `REMOTEMEDIA_INFERENCE_THREADS`, else the number
/// of CPUs the process may use. Takes effect for calls that start after it. Any thread.
#[unsafe(no_mangle)]
pub extern "C" fn rm_set_inference_threads(threads: u32) -> RmStatus {
    guard(|| crate::model::budget::set_threads(threads as usize).map_err(Error::InvalidArgument))
}

/// The process-wide inference thread budget now (see `rm_set_inference_threads`). Any
/// thread, no allocation.
#[unsafe(no_mangle)]
pub extern "C" fn rm_inference_threads() -> u32 {
    crate::error::catch(|| crate::model::budget::threads() as u32).unwrap_or(0)
}
