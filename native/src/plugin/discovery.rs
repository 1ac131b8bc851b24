//! Where plugins are looked for.
//!
//! In order: the entries of `REMOTEMEDIA_PLUGIN_PATH`, then the user directory
//! (`$XDG_DATA_HOME/remotemedia/plugins`, else `~/.local/share/remotemedia/plugins`)
//! and the system directories (`/usr/local/lib/remotemedia/plugins`,
//! `/usr/lib/remotemedia/plugins`). `REMOTEMEDIA_PLUGIN_SYSTEM_PATH`, when set,
//! replaces the user and system directories (empty: none). Entries are separated by
//! `:` and are directories (every `*.so` in it, sorted, not recursive) or library
//! files. Only absolute entries are used, so nothing loads from the current directory
//! unless a path to it is given explicitly.

use std::env::consts::DLL_SUFFIX;
use std::path::{Path, PathBuf};

/// One place searched, and where it came from.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SearchDir {
    pub path: PathBuf,
    /// `REMOTEMEDIA_PLUGIN_PATH`, `REMOTEMEDIA_PLUGIN_SYSTEM_PATH`, `user` or `system`.
    pub source: &'static str,
}

fn split(var: &'static str) -> Option<Vec<SearchDir>> {
    let value = std::env::var_os(var)?;
    Some(std::env::split_paths(&value).filter(|p| !p.as_os_str().is_empty()).map(|path| SearchDir { path, source: var }).collect())
}

/// The directories and files searched, in order.
pub fn search_path() -> Vec<SearchDir> {
    let mut dirs = split("REMOTEMEDIA_PLUGIN_PATH").unwrap_or_default();
    dirs.extend(split("REMOTEMEDIA_PLUGIN_SYSTEM_PATH").unwrap_or_else(|| {
        let data_home = std::env::var_os("XDG_DATA_HOME")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".local/share")));
        let user = data_home.map(|d| SearchDir { path: d.join("remotemedia/plugins"), source: "user" });
        let system = ["/usr/local/lib/remotemedia/plugins", "/usr/lib/remotemedia/plugins"]
            .map(|p| SearchDir { path: PathBuf::from(p), source: "system" });
        user.into_iter().chain(system).collect()
    }));
    dirs
}

/// The library files found on `dirs`, and the entries skipped with the reason.
pub(crate) fn candidates(dirs: &[SearchDir]) -> (Vec<PathBuf>, Vec<(PathBuf, String)>) {
    let (mut files, mut skipped) = (Vec::new(), Vec::new());
    for dir in dirs {
        if !dir.path.is_absolute() {
            skipped.push((dir.path.clone(), format!("relative entry in {} ignored: only absolute paths are searched", dir.source)));
        } else if dir.path.is_file() {
            files.push(dir.path.clone());
        } else if let Ok(entries) = std::fs::read_dir(&dir.path) {
            let mut found: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file() && p.to_str().is_some_and(|s| s.ends_with(DLL_SUFFIX)))
                .collect();
            found.sort();
            files.extend(found);
        }
    }
    (files, skipped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_are_libraries_in_order_and_relative_entries_are_skipped() {
        let dir = std::env::temp_dir().join(format!("remotemedia-discovery-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("nested")).unwrap();
        for name in ["b.so", "a.so", "notes.txt", "nested/c.so"] {
            std::fs::write(dir.join(name), b"").unwrap();
        }
        let entry = |path: PathBuf| SearchDir { path, source: "REMOTEMEDIA_PLUGIN_PATH" };
        let dirs = [entry(dir.clone()), entry("relative/dir".into()), entry(dir.join("missing")), entry(dir.join("nested/c.so"))];
        let (files, skipped) = candidates(&dirs);
        assert_eq!(files, [dir.join("a.so"), dir.join("b.so"), dir.join("nested/c.so")], "sorted, not recursive, files as given");
        assert_eq!(skipped.len(), 1);
        assert_eq!(skipped[0].0, PathBuf::from("relative/dir"));
        assert!(skipped[0].1.contains("only absolute paths are searched"), "{}", skipped[0].1);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
