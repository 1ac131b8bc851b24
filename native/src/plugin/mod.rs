//! Plugins: shared libraries that offer node types through the ABI of
//! `include/remotemedia_plugin.h`, loaded at run time.
//!
//! A library is loaded once per process and shared by every runtime that asks for it.
//! It is unloaded only when nothing can call into it any more: every node spec and
//! instance made from it holds a reference to the library.

pub mod discovery;
mod services;

use std::collections::HashMap;
use std::ffi::c_char;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};

use remotemedia_plugin::abi::{
    RM_PLUGIN_ABI_MAJOR, RM_PLUGIN_ABI_MINOR, RM_PLUGIN_ENTRY_SYMBOL as ENTRY_SYMBOL, RmNodeTypeExtension, RmPluginDescriptor,
    RmPluginEntryFn,
};
use serde_json::{Value, json};

use crate::error::{Error, Result, catch};
use crate::ffi::optional_str_arg;
use crate::nodes::foreign::{self, Extension, VTable, read_extension};
use crate::nodes::{Implementation, NodeSpec, PluginMeta};
use crate::view::kind_names;

pub use discovery::search_path;

/// An open library; dropping it calls the plugin's `unload` hook, then unloads it.
struct Library {
    library: Option<libloading::Library>,
    unload: Option<unsafe extern "C" fn()>,
}

impl Drop for Library {
    fn drop(&mut self) {
        if let Some(unload) = self.unload {
            let _ = catch(|| unsafe { unload() });
        }
        drop(self.library.take());
    }
}

/// A loaded plugin and its node types.
pub struct Plugin {
    pub meta: Arc<PluginMeta>,
    specs: Vec<Arc<NodeSpec>>,
    /// `(input_kinds, output_kinds)` of each spec.
    kinds: Vec<(u32, u32)>,
}

impl Plugin {
    /// The node types, ready for a registry.
    pub fn specs(&self) -> &[Arc<NodeSpec>] {
        &self.specs
    }

    /// `(input_kinds, output_kinds)` of each node type, as in `specs`.
    pub fn kinds(&self) -> &[(u32, u32)] {
        &self.kinds
    }

    /// A JSON description for listings (`remotemedia plugins`).
    pub fn describe(&self) -> Value {
        let m = &self.meta;
        let node_types: Vec<Value> = self
            .specs
            .iter()
            .zip(&self.kinds)
            .map(|(s, &(inputs, outputs))| {
                let mut d = s.describe();
                d["input_kinds"] = json!(kind_names(inputs));
                d["output_kinds"] = json!(kind_names(outputs));
                d
            })
            .collect();
        json!({
            "name": m.name, "version": m.version, "license": m.license, "description": m.description,
            "file": m.file.display().to_string(), "abi": format!("{}.{}", m.abi.0, m.abi.1), "node_types": node_types,
        })
    }
}

/// A `PluginError` about `file`.
pub(crate) fn error(file: &Path, message: impl Into<String>) -> Error {
    Error::Plugin { file: file.display().to_string(), message: message.into(), path: None }
}

/// Loads the plugin at `path`, or returns the one already loaded from that file.
pub fn load(path: &Path) -> Result<Arc<Plugin>> {
    static LOADED: Mutex<Option<HashMap<PathBuf, Weak<Plugin>>>> = Mutex::new(None);
    let file = std::fs::canonicalize(path).map_err(|e| error(path, format!("cannot open: {e}")))?;
    let mut loaded = LOADED.lock().unwrap_or_else(|e| e.into_inner());
    let loaded = loaded.get_or_insert_with(HashMap::new);
    if let Some(plugin) = loaded.get(&file).and_then(Weak::upgrade) {
        return Ok(plugin);
    }
    let plugin = Arc::new(open(&file)?);
    loaded.retain(|_, p| p.strong_count() > 0);
    loaded.insert(file, Arc::downgrade(&plugin));
    Ok(plugin)
}

fn open(file: &Path) -> Result<Plugin> {
    let fail = |message: String| error(file, message);
    // SAFETY: loading runs the library's initializers; that is what loading a plugin means.
    let library = unsafe { libloading::Library::new(file) }.map_err(|e| fail(format!("not a loadable shared library: {e}")))?;
    let entry: RmPluginEntryFn = *unsafe { library.get::<RmPluginEntryFn>(ENTRY_SYMBOL.to_bytes_with_nul()) }
        .map_err(|e| fail(format!("missing entry symbol `{}`: {e}", ENTRY_SYMBOL.to_string_lossy())))?;
    let services = services::for_file(file);
    let descriptor = catch(|| unsafe { entry(services) }).map_err(|_| fail("entry point panicked".into()))?;
    // SAFETY: a non-null descriptor stays valid until the library is unloaded.
    let descriptor =
        unsafe { descriptor.as_ref() }.ok_or_else(|| fail("entry point returned NULL (the plugin refused to load; see its log)".into()))?;
    let (major, minor) = (descriptor.abi_major, descriptor.abi_minor);
    if major != RM_PLUGIN_ABI_MAJOR {
        return Err(fail(format!(
            "plugin ABI {major}.{minor} is incompatible with this runtime's ABI {RM_PLUGIN_ABI_MAJOR}.{RM_PLUGIN_ABI_MINOR} (major versions differ)"
        )));
    }
    if minor > RM_PLUGIN_ABI_MINOR {
        return Err(fail(format!(
            "plugin ABI {major}.{minor} is newer than this runtime's ABI {RM_PLUGIN_ABI_MAJOR}.{RM_PLUGIN_ABI_MINOR}; upgrade remotemedia"
        )));
    }
    let library = Arc::new(Library { library: Some(library), unload: descriptor.unload });
    let plugin = catch(|| unsafe { read_descriptor(descriptor, file, &library) })
        .unwrap_or_else(|_| Err("reading the descriptor panicked".into()))
        .map_err(fail)?;
    services::set_name(services, &plugin.meta.name);
    Ok(plugin)
}

/// The rejection reason for a descriptor part (`at`, e.g. `node_types[1]: `, or empty)
/// that failed a check.
fn invalid(at: &str, e: Error) -> String {
    match e {
        Error::InvalidArgument(m) => format!("invalid descriptor: {at}{m}"),
        other => format!("invalid descriptor: {at}{other}"),
    }
}

/// An optional string field of the descriptor.
unsafe fn optional(ptr: *const c_char, field: &str) -> Result<Option<String>, String> {
    unsafe { optional_str_arg(ptr, field) }.map_err(|e| invalid("", e))
}

/// A required non-empty string field of the descriptor.
unsafe fn required(ptr: *const c_char, field: &str) -> Result<String, String> {
    let text = unsafe { optional(ptr, field) }?.ok_or_else(|| format!("invalid descriptor: {field} is NULL"))?;
    if text.is_empty() { Err(format!("invalid descriptor: {field} is empty")) } else { Ok(text) }
}

/// Most node types one plugin may offer.
const MAX_NODE_TYPES: usize = 1024;

/// The extensions of `d`'s node types (none before ABI minor 1 or when NULL), each read
/// as far as the plugin's `size` covers, stepping through the array by that size.
///
/// # Safety
/// `d` must be a descriptor returned by a plugin's entry point.
unsafe fn extensions(d: &RmPluginDescriptor) -> Result<Vec<Extension>, String> {
    if d.abi_minor < 1 || d.extensions.is_null() {
        return Ok((0..d.n_node_types).map(|_| Extension::default()).collect());
    }
    // SAFETY: the contract: `n_node_types` extensions of the plugin's `size`, valid until unload.
    let stride = unsafe { std::ptr::read_unaligned(d.extensions.cast::<u32>()) } as usize;
    (0..d.n_node_types)
        .map(|i| {
            let at = d.extensions.cast::<u8>().wrapping_add(i * stride).cast::<RmNodeTypeExtension>();
            // SAFETY: as above; `read_extension` checks `size` before reading past it.
            unsafe { read_extension(at, stride) }.map_err(|m| format!("invalid descriptor: extensions[{i}].{m}"))
        })
        .collect()
}

/// Checks the descriptor and builds the plugin's node specs.
///
/// # Safety
/// `d` must be a descriptor returned by the entry point of the library in `library`.
unsafe fn read_descriptor(d: &RmPluginDescriptor, file: &Path, library: &Arc<Library>) -> Result<Plugin, String> {
    if d.abi_minor < 3 && d.get_extension.is_some() {
        return Err("invalid descriptor: reserved_1 is not NULL (it is get_extension from ABI minor 3)".into());
    }
    if let Some(i) = d.reserved.iter().position(|p| !p.is_null()) {
        return Err(format!("invalid descriptor: reserved_{} is not NULL", i + 2));
    }
    if d.node_types.is_null() || d.n_node_types == 0 {
        return Err("invalid descriptor: no node types (node_types is NULL or n_node_types is 0)".into());
    }
    if d.n_node_types > MAX_NODE_TYPES {
        return Err(format!("invalid descriptor: {} node types, at most {MAX_NODE_TYPES} allowed", d.n_node_types));
    }
    let extensions = unsafe { extensions(d) }?;
    let meta = Arc::new(PluginMeta {
        name: unsafe { required(d.name, "name") }?,
        version: unsafe { required(d.version, "version") }?,
        license: unsafe { required(d.license, "license") }?,
        description: unsafe { optional(d.description, "description") }?.unwrap_or_default(),
        file: file.to_path_buf(),
        abi: (d.abi_major, d.abi_minor),
    });
    let types = unsafe { std::slice::from_raw_parts(d.node_types, d.n_node_types) };
    let (mut specs, mut kinds) = (Vec::new(), Vec::new());
    for (i, t) in types.iter().enumerate() {
        let owner: Arc<dyn std::any::Any + Send + Sync> = library.clone();
        let vtable = VTable::new(t.vtable, Some(owner));
        let get_extension = if d.abi_minor >= 3 { d.get_extension } else { None };
        let declared = unsafe { extensions[i].declared(&t.info) }.map_err(|m| format!("invalid descriptor: extensions[{i}].{m}"))?;
        let spec = unsafe { foreign::spec(&t.info, vtable, Implementation::Plugin(meta.clone()), declared, get_extension) }
            .map_err(|e| invalid(&format!("node_types[{i}]: "), e))?;
        if specs.iter().any(|s: &Arc<NodeSpec>| s.node_type == spec.node_type) {
            return Err(format!("invalid descriptor: node type '{}' is listed twice", spec.node_type));
        }
        specs.push(Arc::new(spec));
        kinds.push((t.info.input_kinds, t.info.output_kinds));
    }
    Ok(Plugin { meta, specs, kinds })
}
