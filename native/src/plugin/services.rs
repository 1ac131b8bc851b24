//! Host services handed to plugins: logging into `tracing`.

use std::collections::HashMap;
use std::ffi::{CStr, c_char, c_void};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use remotemedia_plugin::abi::{RM_PLUGIN_ABI_MAJOR, RM_PLUGIN_ABI_MINOR, RmHostServices};

/// What the services know about the plugin calling them.
struct HostData {
    /// The plugin's name once its descriptor was read; its file until then.
    name: OnceLock<String>,
    file: String,
}

/// The services of the library at `file`, one per file for the life of the process,
/// so a plugin may keep the pointer in a global even if the library is loaded again.
pub(super) fn for_file(file: &Path) -> &'static RmHostServices {
    static ALL: Mutex<Option<HashMap<PathBuf, Leaked>>> = Mutex::new(None);
    let mut all = ALL.lock().unwrap_or_else(|e| e.into_inner());
    let leaked = all.get_or_insert_with(HashMap::new).entry(file.to_path_buf()).or_insert_with(|| {
        let data = Box::leak(Box::new(HostData { name: OnceLock::new(), file: file.display().to_string() }));
        Leaked(Box::leak(Box::new(RmHostServices {
            abi_major: RM_PLUGIN_ABI_MAJOR,
            abi_minor: RM_PLUGIN_ABI_MINOR,
            host_data: (data as *mut HostData).cast(),
            log,
            get_extension,
        })))
    });
    leaked.0
}

/// Services that live for the rest of the process.
struct Leaked(&'static RmHostServices);

// SAFETY: the services are immutable after creation; `host_data` points to a `HostData`
// that is only read (its `OnceLock` synchronizes the one write).
unsafe impl Send for Leaked {}
unsafe impl Sync for Leaked {}

/// Records the plugin's name for its log records.
pub(super) fn set_name(services: &RmHostServices, name: &str) {
    // SAFETY: `host_data` of services made by `for_file` is a leaked `HostData`.
    let data = unsafe { &*services.host_data.cast::<HostData>() };
    let _ = data.name.set(name.to_string());
}

unsafe extern "C" fn log(host: *const RmHostServices, level: u32, message: *const c_char) {
    let _ = crate::error::catch(|| {
        let (Some(host), false) = (unsafe { host.as_ref() }, message.is_null()) else { return };
        let data = unsafe { &*host.host_data.cast::<HostData>() };
        let plugin = data.name.get().unwrap_or(&data.file);
        let message = unsafe { CStr::from_ptr(message) }.to_string_lossy();
        match level {
            1 => tracing::error!(target: "remotemedia::plugin", plugin = %plugin, "{message}"),
            2 => tracing::warn!(target: "remotemedia::plugin", plugin = %plugin, "{message}"),
            3 => tracing::info!(target: "remotemedia::plugin", plugin = %plugin, "{message}"),
            4 => tracing::debug!(target: "remotemedia::plugin", plugin = %plugin, "{message}"),
            _ => tracing::trace!(target: "remotemedia::plugin", plugin = %plugin, "{message}"),
        }
    });
}

unsafe extern "C" fn get_extension(_host: *const RmHostServices, _id: *const c_char) -> *const c_void {
    std::ptr::null()
}
