//! Node types implemented by the embedding host (Python, or any C caller) through a
//! vtable of callbacks (`RmNodeVTable`, defined by the node ABI in `remotemedia_plugin.h`).

use remotemedia_plugin::abi::{RmNodeTypeInfo, RmNodeVTable};

use crate::nodes::Implementation;
use crate::nodes::foreign::{self, VTable};

use super::runtime::RmRuntime;
use super::{RmStatus, guard};
use crate::ffi::arg;

/// Registers a node type implemented by the host (for example Python nodes). Its
/// `node_type` is used when a manifest node has `runtime_hint` "python", or "auto" and
/// no native implementation exists. A type of the same name registered earlier is
/// replaced for new pipelines; existing pipelines keep the old one.
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
    guard(|| {
        // Own the vtable first so that `release` runs exactly once, whatever fails.
        let vtable = VTable::new(*unsafe { arg(vtable, "vtable") }?, None);
        let runtime = unsafe { arg(runtime, "runtime") }?;
        let info = unsafe { arg(info, "info") }?;
        let spec = unsafe { foreign::spec(info, vtable, Implementation::Host) }?;
        runtime.inner.register(spec);
        Ok(())
    })
}
