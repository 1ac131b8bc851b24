//! Process isolation (`"isolation": "process"` on a node): the node runs in a child
//! process, so a crash, an abort or a hang in it becomes a failure of that node's
//! call while the host and the other nodes carry on.
//!
//! The child is `remotemedia-node-host`, a small executable shipped beside the library
//! (it links the runtime statically, so it needs nothing but the plugin it loads). A
//! spawned executable rather than a fork of the host: forking a multi-threaded host
//! (Python, tokio pools) may copy held locks into the child, while exec starts clean.
//! Items travel through shared memory as raw samples; a socket carries small headers.

mod channel;
mod child;
mod proxy;
mod wire;

use std::path::{Path, PathBuf};

pub use proxy::{Isolated, Recipe, StartError};

/// The executable's file name.
pub const HOST_EXECUTABLE: &str = "remotemedia-node-host";
/// Environment variable naming the executable, overriding the search.
pub const HOST_ENV: &str = "REMOTEMEDIA_NODE_HOST";

/// Entry point of `remotemedia-node-host` (see [`HOST_EXECUTABLE`]); returns its exit status.
pub fn child_main(args: impl Iterator<Item = String>) -> i32 {
    crate::nodes::allow_process_faults();
    child::main(args)
}

/// The file this code was loaded from (the shared library, or a program linking it).
fn own_file() -> Option<PathBuf> {
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    // SAFETY: dladdr only reads the address and fills `info`.
    let found = unsafe { libc::dladdr(own_file as *const libc::c_void, &mut info) };
    if found == 0 || info.dli_fname.is_null() {
        return None;
    }
    // SAFETY: dladdr returned a NUL-terminated path.
    let name = unsafe { std::ffi::CStr::from_ptr(info.dli_fname) };
    std::fs::canonicalize(Path::new(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(name.to_bytes()))).ok()
}

/// Where the node host executable is: `$REMOTEMEDIA_NODE_HOST`, else beside the
/// library, its parent folder, or `../libexec/remotemedia/` from it (an installed
/// prefix). The error lists where it looked.
pub fn host_executable() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os(HOST_ENV).filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        return if path.is_file() { Ok(path) } else { Err(format!("{HOST_ENV} names {}, which is not a file", path.display())) };
    }
    let dir = own_file().and_then(|f| f.parent().map(Path::to_path_buf));
    let candidates: Vec<PathBuf> = dir
        .iter()
        .flat_map(|d| {
            [
                Some(d.join(HOST_EXECUTABLE)),
                d.parent().map(|p| p.join(HOST_EXECUTABLE)),
                Some(d.join("../libexec/remotemedia").join(HOST_EXECUTABLE)),
            ]
        })
        .flatten()
        .collect();
    candidates.iter().find(|p| p.is_file()).cloned().ok_or_else(|| {
        let looked: Vec<String> = candidates.iter().map(|p| p.display().to_string()).collect();
        format!("process isolation needs the executable '{HOST_EXECUTABLE}' (looked in: {}); set {HOST_ENV} to its path", looked.join(", "))
    })
}
