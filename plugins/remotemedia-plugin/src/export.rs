//! The descriptor and the `extern "C"` trampolines behind [`export_plugin!`](crate::export_plugin).

use std::ffi::{CString, c_char, c_void};
use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;
use std::sync::atomic::{AtomicPtr, Ordering};

use crate::abi::{
    RM_EXTENSION_CONFIGURE, RM_EXTENSION_PORTS, RM_NODE_PREFERS_ISOLATION, RM_PLUGIN_ABI_MAJOR, RM_PLUGIN_ABI_MINOR, RmDataView,
    RmGetExtensionFn, RmHostServices, RmLogLevel, RmNodeConfigure, RmNodeContext, RmNodePorts, RmNodeTypeExtension, RmNodeTypeInfo,
    RmNodeVTable, RmPluginDescriptor, RmPluginNodeType, RmStatus,
};
use crate::{Error, ErrorKind, Input, Node, NodeInfo, Output, Params};

/// Host services given to the entry point; they outlive every use of the plugin.
static HOST: AtomicPtr<RmHostServices> = AtomicPtr::new(std::ptr::null_mut());

/// Logs `message` through the host (nothing happens before the entry point ran).
pub fn log(level: RmLogLevel, message: &str) {
    let host = HOST.load(Ordering::Acquire);
    if host.is_null() {
        return;
    }
    let text = crate::c_string(message);
    // SAFETY: the host keeps its services valid until this library is unloaded.
    unsafe { ((*host).log)(host, level as u32, text.as_ptr()) };
}

/// A node type ready to be listed in a descriptor.
pub struct NodeTypeDef {
    info: NodeInfo,
    vtable: RmNodeVTable,
    ports: RmNodePorts,
    configure: RmNodeConfigure,
}

/// The node type implemented by `N`.
pub fn node_type<N: Node>() -> NodeTypeDef {
    NodeTypeDef {
        info: N::info(),
        ports: RmNodePorts { process_port: Some(process_port::<N>) },
        configure: RmNodeConfigure { configure: Some(configure::<N>) },
        vtable: RmNodeVTable {
            user_data: std::ptr::null_mut(),
            create: Some(create::<N>),
            process: Some(process::<N>),
            flush: Some(flush::<N>),
            reset: Some(reset::<N>),
            destroy: Some(destroy::<N>),
            release: None,
        },
    }
}

/// A plugin's descriptor together with the strings and arrays it points into.
pub struct Plugin {
    _strings: Vec<CString>,
    _ports: Vec<Vec<*const c_char>>,
    _types: Vec<RmPluginNodeType>,
    _extensions: Vec<RmNodeTypeExtension>,
    /// Each node type's name and the extensions `get_extension` hands out for it.
    by_name: Vec<(CString, Box<RmNodePorts>, Box<RmNodeConfigure>)>,
    descriptor: RmPluginDescriptor,
}

// SAFETY: the descriptor is never mutated after construction; it only points into
// the heap buffers owned by the same struct.
unsafe impl Send for Plugin {}
unsafe impl Sync for Plugin {}

impl Plugin {
    /// Builds the descriptor. Interior NUL bytes in strings are escaped (see [`c_string`](crate::c_string)).
    pub fn new(name: &str, version: &str, license: &str, description: &str, types: Vec<NodeTypeDef>) -> Self {
        let mut strings = Vec::new();
        let mut c = |s: &str| {
            let cs = crate::c_string(s);
            let ptr = cs.as_ptr();
            strings.push(cs);
            ptr
        };
        let (name, version, license, description) = (c(name), c(version), c(license), c(description));
        let mut ports = Vec::new();
        let mut node_types = Vec::new();
        let mut extensions = Vec::new();
        let mut by_name = Vec::new();
        for t in types {
            by_name.push((crate::c_string(&t.info.node_type), Box::new(t.ports), Box::new(t.configure)));
            let flags = if t.info.prefers_isolation { RM_NODE_PREFERS_ISOLATION } else { 0 };
            let caps = t.info.caps.as_deref().map_or(std::ptr::null(), &mut c);
            extensions.push(RmNodeTypeExtension { size: std::mem::size_of::<RmNodeTypeExtension>() as u32, flags, caps });
            let outputs: Vec<*const c_char> = t.info.outputs.iter().map(|p| c(p)).collect();
            node_types.push(RmPluginNodeType {
                info: RmNodeTypeInfo {
                    node_type: c(&t.info.node_type),
                    description: c(&t.info.description),
                    params_schema_json: c(&t.info.params_schema),
                    outputs: outputs.as_ptr(),
                    n_outputs: outputs.len(),
                    input_kinds: t.info.input_kinds,
                    output_kinds: t.info.output_kinds,
                },
                vtable: t.vtable,
            });
            ports.push(outputs);
        }
        let descriptor = RmPluginDescriptor {
            abi_major: RM_PLUGIN_ABI_MAJOR,
            abi_minor: RM_PLUGIN_ABI_MINOR,
            name,
            version,
            license,
            description,
            node_types: node_types.as_ptr(),
            n_node_types: node_types.len(),
            unload: None,
            extensions: extensions.as_ptr(),
            get_extension: None,
            reserved: [std::ptr::null(); 2],
        };
        Self { _strings: strings, _ports: ports, _types: node_types, _extensions: extensions, by_name, descriptor }
    }

    /// The extension `id` of node type `node_type`: every node type of the kit offers
    /// input ports and `configure` (their defaults hand items to `process` and keep
    /// nothing); NULL for other ids and unknown types.
    fn extension(&self, node_type: &std::ffi::CStr, id: &std::ffi::CStr) -> *const c_void {
        let Some((_, ports, configure)) = self.by_name.iter().find(|(name, _, _)| name.as_c_str() == node_type) else {
            return std::ptr::null();
        };
        match id {
            id if id == RM_EXTENSION_PORTS => (&raw const **ports).cast(),
            id if id == RM_EXTENSION_CONFIGURE => (&raw const **configure).cast(),
            _ => std::ptr::null(),
        }
    }
}

/// Body of the exported `get_extension` (see `RmGetExtensionFn`): looks the extension up
/// in the plugin `slot` holds; NULL for NULL arguments, an unloaded plugin, or an id it
/// does not offer.
///
/// # Safety
/// `node_type` and `id` must be NULL or NUL-terminated strings, borrowed for the call.
pub unsafe fn get_extension(slot: &'static PluginSlot, node_type: *const c_char, id: *const c_char) -> *const c_void {
    if node_type.is_null() || id.is_null() {
        return std::ptr::null();
    }
    catch_unwind(|| {
        let plugin = slot.lock().unwrap_or_else(|e| e.into_inner());
        // SAFETY: the caller's promise; the plugin, and the structs it points to, live until unload.
        let (node_type, id) = unsafe { (std::ffi::CStr::from_ptr(node_type), std::ffi::CStr::from_ptr(id)) };
        plugin.as_ref().map_or(std::ptr::null(), |p| p.extension(node_type, id))
    })
    .unwrap_or(std::ptr::null())
}

/// Where the exported entry point keeps its plugin between load and unload.
pub type PluginSlot = Mutex<Option<Box<Plugin>>>;

/// Body of the exported entry point: remembers `host` and returns the descriptor built
/// by `build` (once per load), whose `unload` hook is `unload`; NULL if building panicked.
pub fn entry(
    host: *const RmHostServices,
    slot: &'static PluginSlot,
    unload: unsafe extern "C" fn(),
    get_extension: RmGetExtensionFn,
    build: impl FnOnce() -> Plugin,
) -> *const RmPluginDescriptor {
    catch_unwind(AssertUnwindSafe(|| {
        if !host.is_null() {
            HOST.store(host.cast_mut(), Ordering::Release);
        }
        let mut slot = slot.lock().unwrap_or_else(|e| e.into_inner());
        let plugin = slot.get_or_insert_with(|| {
            let mut plugin = Box::new(build());
            plugin.descriptor.unload = Some(unload);
            plugin.descriptor.get_extension = Some(get_extension);
            plugin
        });
        &raw const plugin.descriptor
    }))
    .unwrap_or(std::ptr::null())
}

/// Body of the `unload` hook: frees the descriptor and forgets the host, so nothing the
/// plugin allocated outlives its library.
pub fn unload(slot: &'static PluginSlot) {
    let _ = catch_unwind(|| {
        HOST.store(std::ptr::null_mut(), Ordering::Release);
        drop(slot.lock().unwrap_or_else(|e| e.into_inner()).take());
    });
}

/// An instance: the node, and whether a panic left it broken.
struct Instance<N> {
    node: N,
    broken: bool,
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    let text = payload.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| payload.downcast_ref::<String>().cloned());
    format!("panicked: {}", text.as_deref().unwrap_or("non-string payload"))
}

fn failure(out: &mut Output<'_>, e: &Error) -> i32 {
    out.set_error(&e.message);
    let status = match e.kind {
        ErrorKind::Permanent => RmStatus::Node,
        ErrorKind::Transient => RmStatus::Transient,
        ErrorKind::InvalidInput => RmStatus::InvalidArgument,
    };
    status as i32
}

/// Runs `f` on the instance with panics caught; a panic breaks the instance.
unsafe fn call<N: Node>(
    instance: *mut c_void,
    ctx: *mut RmNodeContext,
    f: impl FnOnce(&mut N, &mut Output<'_>) -> Result<(), Error>,
) -> i32 {
    if instance.is_null() || ctx.is_null() {
        return RmStatus::InvalidArgument as i32;
    }
    let mut out = Output { ctx, _call: PhantomData };
    // SAFETY: `instance` came from `create::<N>` and is not used concurrently.
    let instance = unsafe { &mut *instance.cast::<Instance<N>>() };
    if instance.broken {
        out.set_error("instance is broken by an earlier panic");
        return RmStatus::Internal as i32;
    }
    match catch_unwind(AssertUnwindSafe(|| f(&mut instance.node, &mut out))) {
        Ok(Ok(())) => RmStatus::Ok as i32,
        Ok(Err(e)) => failure(&mut out, &e),
        Err(payload) => {
            instance.broken = true;
            out.set_error(&panic_text(&*payload));
            RmStatus::Internal as i32
        }
    }
}

unsafe extern "C" fn create<N: Node>(
    _user_data: *mut c_void,
    params_json: *const c_char,
    params_len: usize,
    instance: *mut *mut c_void,
    ctx: *mut RmNodeContext,
) -> i32 {
    if params_json.is_null() || instance.is_null() || ctx.is_null() {
        return RmStatus::InvalidArgument as i32;
    }
    let mut out = Output { ctx, _call: PhantomData };
    let result = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the runtime passes `params_len` readable bytes.
        let bytes = unsafe { std::slice::from_raw_parts(params_json.cast::<u8>(), params_len) };
        let params: Params = serde_json::from_slice(bytes).map_err(|e| Error::new(format!("params are not a JSON object: {e}")))?;
        N::create(&params)
    }));
    match result {
        Ok(Ok(node)) => {
            let boxed = Box::new(Instance { node, broken: false });
            // SAFETY: checked non-null above.
            unsafe { *instance = Box::into_raw(boxed).cast() };
            RmStatus::Ok as i32
        }
        Ok(Err(e)) => failure(&mut out, &e),
        Err(payload) => {
            out.set_error(&panic_text(&*payload));
            RmStatus::Internal as i32
        }
    }
}

unsafe extern "C" fn process<N: Node>(instance: *mut c_void, input: *const RmDataView, ctx: *mut RmNodeContext) -> i32 {
    if input.is_null() {
        return RmStatus::InvalidArgument as i32;
    }
    // SAFETY: the runtime keeps the view and its memory valid during the call.
    unsafe { call::<N>(instance, ctx, |node, out| node.process(Input::from_view(&*input)?, out)) }
}

unsafe extern "C" fn process_port<N: Node>(instance: *mut c_void, port: u32, input: *const RmDataView, ctx: *mut RmNodeContext) -> i32 {
    if input.is_null() {
        return RmStatus::InvalidArgument as i32;
    }
    // SAFETY: the runtime keeps the view and its memory valid during the call.
    unsafe { call::<N>(instance, ctx, |node, out| node.process_port(port as usize, Input::from_view(&*input)?, out)) }
}

unsafe extern "C" fn configure<N: Node>(instance: *mut c_void, caps_json: *const c_char, len: usize, ctx: *mut RmNodeContext) -> i32 {
    if caps_json.is_null() {
        return RmStatus::InvalidArgument as i32;
    }
    // SAFETY: the runtime passes `len` readable bytes of UTF-8 JSON.
    let text = String::from_utf8_lossy(unsafe { std::slice::from_raw_parts(caps_json.cast::<u8>(), len) }).into_owned();
    unsafe { call::<N>(instance, ctx, |node, _| node.configure(&text)) }
}

unsafe extern "C" fn flush<N: Node>(instance: *mut c_void, ctx: *mut RmNodeContext) -> i32 {
    unsafe { call::<N>(instance, ctx, |node, out| node.flush(out)) }
}

unsafe extern "C" fn reset<N: Node>(instance: *mut c_void, ctx: *mut RmNodeContext) -> i32 {
    unsafe { call::<N>(instance, ctx, |node, _| node.reset()) }
}

unsafe extern "C" fn destroy<N: Node>(instance: *mut c_void) {
    if !instance.is_null() {
        // SAFETY: `instance` came from `create::<N>`; destroy is called once.
        let _ = catch_unwind(AssertUnwindSafe(|| drop(unsafe { Box::from_raw(instance.cast::<Instance<N>>()) })));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Quiet;

    impl Node for Quiet {
        fn info() -> NodeInfo {
            NodeInfo::new("Quiet", "drops everything").prefers_isolation()
        }
        fn create(_: &Params) -> Result<Self, Error> {
            Ok(Quiet)
        }
        fn process(&mut self, _: Input<'_>, _: &mut Output<'_>) -> Result<(), Error> {
            Ok(())
        }
    }

    #[test]
    fn the_descriptor_carries_one_extension_per_node_type() {
        let plugin = Plugin::new("quiet", "1.0.0", "MIT", "", vec![node_type::<Quiet>()]);
        let d = &plugin.descriptor;
        assert_eq!((d.abi_minor, d.n_node_types), (RM_PLUGIN_ABI_MINOR, 1));
        // SAFETY: one extension per node type, owned by `plugin`.
        let ext = unsafe { &*d.extensions };
        assert_eq!(ext.size as usize, std::mem::size_of::<RmNodeTypeExtension>());
        assert_eq!(ext.flags, RM_NODE_PREFERS_ISOLATION);
        assert!(d.reserved.iter().all(|p| p.is_null()));
    }

    #[test]
    fn every_node_type_offers_ports_and_configure_by_id() {
        let plugin = Plugin::new("quiet", "1.0.0", "MIT", "", vec![node_type::<Quiet>()]);
        let ports = plugin.extension(c"Quiet", RM_EXTENSION_PORTS).cast::<RmNodePorts>();
        // SAFETY: a non-null result points to the plugin's own struct.
        assert!(!ports.is_null() && unsafe { (*ports).process_port.is_some() });
        assert!(!plugin.extension(c"Quiet", RM_EXTENSION_CONFIGURE).is_null());
        assert!(plugin.extension(c"Quiet", c"remotemedia.unknown/1").is_null(), "an unknown id gets NULL");
        assert!(plugin.extension(c"Loud", RM_EXTENSION_PORTS).is_null(), "an unknown node type gets NULL");
    }

    #[test]
    fn the_descriptor_ends_four_pointers_after_unload() {
        // Its size is frozen: the C header's hand-written twin, and every plugin built
        // against an earlier minor, have exactly these bytes.
        let ptr = std::mem::size_of::<*const u8>();
        assert_eq!(std::mem::offset_of!(RmPluginDescriptor, extensions), std::mem::offset_of!(RmPluginDescriptor, unload) + ptr);
        assert_eq!(std::mem::size_of::<RmPluginDescriptor>(), std::mem::offset_of!(RmPluginDescriptor, unload) + 5 * ptr);
    }
}
