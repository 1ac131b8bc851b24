//! Runtime handles.

use std::ffi::c_char;
use std::sync::Arc;

use crate::ffi::free_raw_c_string;
use crate::ffi::into_raw_c_string;
use crate::runtime::Runtime;

use super::{RmStatus, free_boxed, guard, guard_void};
use crate::ffi::{arg, arg_mut};

/// A runtime: node registry plus worker thread. Opaque.
pub struct RmRuntime {
    pub(crate) inner: Arc<Runtime>,
}

/// Creates a runtime holding the built-in node types and the node types of every
/// plugin found on the plugin search path (`REMOTEMEDIA_PLUGIN_PATH`, then the user and
/// system plugin directories; see docs/PLUGINS.md). A plugin that fails to load does
/// not fail this call: `rm_runtime_plugins` lists it with the reason.
///
/// On success `*out` receives a new runtime that the caller owns and must release
/// with `rm_runtime_free`. Any thread. A runtime may be used from many threads at once.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rm_runtime_new(out: *mut *mut RmRuntime) -> RmStatus {
    guard(|| {
        let out = unsafe { arg_mut(out, "out") }?;
        let inner = Runtime::new()?;
        inner.discover_plugins();
        *out = Box::into_raw(Box::new(RmRuntime { inner }));
        Ok(())
    })
}

/// Releases a runtime. NULL is ignored. Pipelines created from it stay usable: they
/// keep the shared parts alive. After this call `runtime` must not be used. Any thread,
/// but not while another thread is inside a call that uses this handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rm_runtime_free(runtime: *mut RmRuntime) {
    unsafe { free_boxed(runtime) }
}

/// Describes every registered node type as a JSON array of objects with `node_type`,
/// `description`, `runtime` ("native" or "python"), `outputs`, `params` (a JSON
/// Schema) and, for a plugin's node type, `plugin` (the plugin's name).
///
/// On success `*out` receives a NUL-terminated UTF-8 string that the caller owns and
/// must release with `rm_string_free`. Any thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rm_runtime_node_types(runtime: *const RmRuntime, out: *mut *mut c_char) -> RmStatus {
    guard(|| {
        let runtime = unsafe { arg(runtime, "runtime") }?;
        let out = unsafe { arg_mut(out, "out") }?;
        let list: Vec<_> = runtime.inner.registry().specs().map(|s| s.describe()).collect();
        *out = into_raw_c_string(&serde_json::Value::from(list).to_string());
        Ok(())
    })
}

/// Releases a string returned by this library. NULL is ignored. Any thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rm_string_free(s: *mut c_char) {
    guard_void(|| unsafe { free_raw_c_string(s) })
}
