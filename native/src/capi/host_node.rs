//! Node types implemented by the embedding host (Python, or any C caller) through a
//! vtable of callbacks (`RmNodeVTable`, defined by the node ABI in `remotemedia_plugin.h`).

use std::ffi::{c_char, c_void};

use remotemedia_plugin::abi::{RmNodeTypeExtension, RmNodeTypeInfo, RmNodeVTable};

use crate::error::Error;
use crate::nodes::Implementation;
use crate::nodes::foreign::{self, Extension, VTable, read_extension};

use super::runtime::RmRuntime;
use super::{RmStatus, guard};
use crate::ffi::arg;

/// Registers a node type implemented by the host (for example Python nodes). Its
/// `node_type` is used when a manifest node has `runtime_hint` "python", or "auto" and
/// no native implementation exists. A type of the same name registered earlier is
/// replaced for new pipelines; existing pipelines keep the old one. The same as
/// `rm_runtime_register_node_ext` with no extension: the node type's caps are undeclared.
///
/// `info` and the strings it points to are borrowed for the call. `vtable` is copied;
/// `vtable->user_data` stays owned by the host until `release` is called. Even when
/// this call fails, `release` is called (if set) before it returns. Any thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rm_runtime_register_node(
    runtime: *const RmRuntime,
    info: *const RmNodeTypeInfo,
    vtable: *const RmNodeVTable,
) -> RmStatus {
    unsafe { rm_runtime_register_node_ext(runtime, info, std::ptr::null(), vtable) }
}

/// `rm_runtime_register_node` with what the node type declares beyond `info`:
/// `extension` (NULL for none) as a plugin declares it, read as far as its `size`
/// covers: its `flags` and its `caps` (docs/PLUGINS.md, "Caps"), so pipelines insert
/// converters before it. A malformed extension fails with `RM_STATUS_INVALID_ARGUMENT`
/// naming the field. `extension` and its strings are borrowed for the call; the rest is
/// as for `rm_runtime_register_node`. Any thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rm_runtime_register_node_ext(
    runtime: *const RmRuntime,
    info: *const RmNodeTypeInfo,
    extension: *const RmNodeTypeExtension,
    vtable: *const RmNodeVTable,
) -> RmStatus {
    unsafe { rm_runtime_register_node_extensions(runtime, info, extension, vtable, None) }
}

/// `rm_runtime_register_node_ext` with `get_extension` (NULL for none), through which
/// the node type offers extensions by id as a plugin does (docs/PLUGINS.md, "Extensions"):
/// `RM_EXTENSION_PORTS` (several input ports, declared in its caps), `RM_EXTENSION_CONFIGURE`
/// and `RM_EXTENSION_LATENCY`. It is called during this call only, for each id, and
/// what it returns is copied; the functions it points to must stay callable until
/// `release`. A node type whose caps declare several input ports and that offers no
/// `process_port` fails with `RM_STATUS_INVALID_ARGUMENT`. The rest is as for
/// `rm_runtime_register_node_ext`. Any thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rm_runtime_register_node_extensions(
    runtime: *const RmRuntime,
    info: *const RmNodeTypeInfo,
    extension: *const RmNodeTypeExtension,
    vtable: *const RmNodeVTable,
    // spelled out (it is `RmGetExtensionFn`) for cbindgen, which does not read the kit
    get_extension: Option<unsafe extern "C" fn(node_type: *const c_char, id: *const c_char) -> *const c_void>,
) -> RmStatus {
    guard(|| {
        // Own the vtable first so that `release` runs exactly once, whatever fails.
        let vtable = VTable::new(*unsafe { arg(vtable, "vtable") }?, None);
        let runtime = unsafe { arg(runtime, "runtime") }?;
        let info = unsafe { arg(info, "info") }?;
        let extension = if extension.is_null() {
            Extension::default()
        } else {
            // SAFETY: the caller's promise: `size` readable bytes; a lone struct has no stride but its own size.
            let size = unsafe { std::ptr::read_unaligned(extension.cast::<u32>()) } as usize;
            unsafe { read_extension(extension, size) }.map_err(|m| Error::InvalidArgument(format!("extension.{m}")))?
        };
        let declared = unsafe { extension.declared(info) }.map_err(|m| Error::InvalidArgument(format!("extension.{m}")))?;
        let spec = unsafe { foreign::spec(info, vtable, Implementation::Host, declared, get_extension) }?;
        runtime.inner.register(spec);
        Ok(())
    })
}
