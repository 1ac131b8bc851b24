//! Loading plugins and listing them.

use std::ffi::c_char;
use std::path::Path;

use super::runtime::RmRuntime;
use super::{RmStatus, guard};
use crate::error::Error;
use crate::executor::MAX_TIMEOUT_MS;
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
/// odd-sized chunks in several formats, flushed, reset and destroyed in varied orders,
/// and its memory watched over a long stream. Each instance runs in a child process
/// (process isolation), each call limited to 10 s: a crash or a hang fails the check
/// it happened in, which the report names, and the other checks still run. The plugin
/// is loaded but its node types are not registered anywhere.
///
/// On success `*report` receives a JSON object (`plugin`, `file`, `passed`, and
/// `checks`, each with `node_type`, `check`, `ok`, `detail`; `crashed` or `hung` and
/// `at` when that happened) as a NUL-terminated UTF-8 string the caller owns and
/// releases with `rm_string_free`. A plugin that fails to load gives
/// `RM_STATUS_PLUGIN`; one whose entry point crashes ends this process (loading runs
/// in it), so hosts that must survive that run the check in a child (the CLI does).
/// Any thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rm_plugin_check(path: *const c_char, report: *mut *mut c_char) -> RmStatus {
    unsafe { rm_plugin_check_timed(path, crate::conformance::DEFAULT_CALL_TIMEOUT.as_millis() as u64, report) }
}

/// `rm_plugin_check` with each node call limited to `call_timeout_ms` (1 to
/// `RM_MAX_TIMEOUT_MS`) instead of 10 s. Same ownership and threading.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rm_plugin_check_timed(path: *const c_char, call_timeout_ms: u64, report: *mut *mut c_char) -> RmStatus {
    guard(|| {
        let path = unsafe { str_arg(path, "path") }?;
        let report = unsafe { arg_mut(report, "report") }?;
        if call_timeout_ms == 0 || call_timeout_ms > MAX_TIMEOUT_MS {
            return Err(Error::InvalidArgument(format!("call_timeout_ms must be 1 to {}, got {call_timeout_ms}", MAX_TIMEOUT_MS)));
        }
        let timeout = std::time::Duration::from_millis(call_timeout_ms);
        *report = into_raw_c_string(&crate::conformance::check(Path::new(path), timeout)?.to_string());
        Ok(())
    })
}
