//! Loading plugins and listing them.

use std::ffi::c_char;
use std::path::Path;

use super::runtime::RmRuntime;
use super::{RmStatus, guard};
use crate::ffi::into_raw_c_string;
use crate::ffi::{arg, arg_mut, str_arg};

/// Loads the plugin library at `path` (NUL-terminated UTF-8; a relative path is taken
/// from the current directory) and registers its node types with `runtime`, for
/// pipelines created afterwards. Loading a file already loaded is a no-op.
///
/// Fails with `RM_STATUS_PLUGIN` and a last error naming the file and the reason: not a
/// shared library, no `remotemedia_plugin_entry` symbol, an incompatible ABI version,
/// an invalid descriptor, or a node type name already taken (the message names both
/// plugins). Nothing is registered then, and the runtime stays usable.
///
/// `path` is borrowed for the call. The library stays loaded while the runtime or any
/// pipeline or node made from it exists. Any thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rm_runtime_load_plugin(runtime: *const RmRuntime, path: *const c_char) -> RmStatus {
    guard(|| {
        let runtime = unsafe { arg(runtime, "runtime") }?;
        let path = unsafe { str_arg(path, "path") }?;
        runtime.inner.load_plugin(Path::new(path))?;
        Ok(())
    })
}

/// Describes the runtime's plugins as a JSON object: `plugins` (each with `name`,
/// `version`, `license`, `description`, `file`, `abi` and `node_types`), `rejected`
/// (libraries found by discovery that failed to load, each with `file` and `reason`)
/// and `search_path` (each directory with its `source`).
///
/// On success `*out` receives a NUL-terminated UTF-8 string that the caller owns and
/// must release with `rm_string_free`. Any thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rm_runtime_plugins(runtime: *const RmRuntime, out: *mut *mut c_char) -> RmStatus {
    guard(|| {
        let runtime = unsafe { arg(runtime, "runtime") }?;
        let out = unsafe { arg_mut(out, "out") }?;
        *out = into_raw_c_string(&runtime.inner.plugins().to_string());
        Ok(())
    })
}

/// Runs the plugin at `path` through the conformance check (see docs/PLUGINS.md): each
/// node type is created with its schema's defaults and with bad params, fed empty and
/// odd-sized chunks in several formats, flushed, reset and destroyed in varied orders.
/// The plugin is loaded but its node types are not registered anywhere.
///
/// On success `*report` receives a JSON object (`plugin`, `file`, `passed`, and
/// `checks`, each with `node_type`, `check`, `ok`, `detail`) as a NUL-terminated UTF-8
/// string the caller owns and releases with `rm_string_free`. A plugin that fails to
/// load gives `RM_STATUS_PLUGIN`. A plugin that crashes takes the process with it: run
/// this in a child process to survive that (the CLI does). Any thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rm_plugin_check(path: *const c_char, report: *mut *mut c_char) -> RmStatus {
    guard(|| {
        let path = unsafe { str_arg(path, "path") }?;
        let report = unsafe { arg_mut(report, "report") }?;
        *report = into_raw_c_string(&crate::plugin::conformance::check(Path::new(path))?.to_string());
        Ok(())
    })
}
