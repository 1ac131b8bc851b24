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

// Process isolation, and the library with it, is Linux-only: memfd, MSG_NOSIGNAL,
// POLLRDHUP and /proc/self/maps.
#[cfg(not(target_os = "linux"))]
compile_error!("remotemedia builds on Linux only: process isolation (native/src/isolation) uses memfd, POLLRDHUP and /proc");

/// The executable's file name.
pub const HOST_EXECUTABLE: &str = "remotemedia-node-host";
/// Environment variable naming the executable, overriding the search.
pub const HOST_ENV: &str = "REMOTEMEDIA_NODE_HOST";

/// Entry point of `remotemedia-node-host` (see [`HOST_EXECUTABLE`]); returns its exit status.
pub fn child_main(args: impl Iterator<Item = String>) -> i32 {
    crate::nodes::allow_process_faults();
    child::main(args)
}

/// The file this code was loaded from (the shared library, or a program linking it):
/// the mapping of `/proc/self/maps` that holds this function.
fn own_file() -> Option<PathBuf> {
    let here = own_file as fn() -> Option<PathBuf> as usize;
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    maps.lines().find_map(|line| {
        // address perms offset dev inode path
        let mut fields = line.split_whitespace();
        let (low, high) = fields.next()?.split_once('-')?;
        let (low, high) = (usize::from_str_radix(low, 16).ok()?, usize::from_str_radix(high, 16).ok()?);
        let path = fields.nth(4)?;
        ((low..high).contains(&here) && path.starts_with('/')).then(|| std::fs::canonicalize(Path::new(path)).ok()).flatten()
    })
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
