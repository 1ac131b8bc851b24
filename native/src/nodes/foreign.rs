//! Node types implemented outside this library through an `RmNodeVTable`: host nodes
//! (Python, C callers) and plugin nodes.

use std::any::Any;
use std::ffi::{CStr, c_char, c_void};
use std::sync::Arc;

use remotemedia_plugin::abi::{
    RM_EXTENSION_CONFIGURE, RM_EXTENSION_LATENCY, RM_EXTENSION_PORTS, RM_NODE_PREFERS_ISOLATION, RmDataView, RmGetExtensionFn,
    RmNodeConfigure, RmNodeContext, RmNodeLatency, RmNodePorts, RmNodeTypeExtension, RmNodeTypeInfo, RmNodeVTable, RmStatus,
};
use serde_json::Value;

use crate::caps::Caps;
use crate::data::Data;
use crate::error::{Error, NodeFailure, Result, catch};
use crate::ffi::{arg, optional_str_arg, str_arg};
use crate::view::{copy_data, kind_bit, kind_names, view_of};

use super::{Emitter, Implementation, Node, NodeSpec, ParamError};

/// A vtable and what must outlive it. Dropping the last reference calls `release`,
/// then drops `owner` (for a plugin, its library: never unloaded before `release`).
pub(crate) struct VTable {
    raw: RmNodeVTable,
    owner: Option<Arc<dyn Any + Send + Sync>>,
    /// The node type's extensions (ABI minor 3), copied when the type is loaded.
    ports: Option<RmNodePorts>,
    configure: Option<RmNodeConfigure>,
}

// SAFETY: whoever supplies a vtable promises (see `RmNodeVTable`) that callbacks may run
// on any thread, one at a time per instance; `user_data` is only handed back to them.
unsafe impl Send for VTable {}
unsafe impl Sync for VTable {}

impl VTable {
    /// Takes ownership of `raw` (its `release` will be called once, even if the spec
    /// built from it is rejected) and keeps `owner` alive until then.
    pub(crate) fn new(raw: RmNodeVTable, owner: Option<Arc<dyn Any + Send + Sync>>) -> Self {
        Self { raw, owner, ports: None, configure: None }
    }
}

impl Drop for VTable {
    fn drop(&mut self) {
        if let Some(release) = self.raw.release {
            unsafe { release(self.raw.user_data) };
        }
        drop(self.owner.take());
    }
}

struct CtxState<'a> {
    emitter: Option<&'a mut Emitter>,
    n_outputs: usize,
    output_kinds: u32,
    error: Option<String>,
}

unsafe extern "C" fn ctx_emit(ctx: *mut RmNodeContext, port: u32, data: *const RmDataView) -> i32 {
    let result = catch(|| -> Result<()> {
        let ctx = unsafe { arg(ctx, "ctx") }?;
        let state = unsafe { &mut *ctx.host.cast::<CtxState>() };
        let view = unsafe { arg(data, "data") }?;
        let port = port as usize;
        if port >= state.n_outputs {
            return Err(Error::InvalidArgument(format!("port {port} out of range ({} outputs)", state.n_outputs)));
        }
        let item = unsafe { copy_data(view) }?;
        if state.output_kinds != 0 && kind_bit(&item) & state.output_kinds == 0 {
            let allowed = kind_names(state.output_kinds).join(", ");
            return Err(Error::InvalidArgument(format!(
                "emitted {} but the node type declares outputs of {allowed}",
                kind_names(kind_bit(&item))[0]
            )));
        }
        let emitter = state.emitter.as_mut().ok_or_else(|| Error::InvalidArgument("emit is not allowed in create or reset".into()))?;
        emitter.emit_to(port, item);
        Ok(())
    });
    match result {
        Ok(Ok(())) => RmStatus::Ok as i32,
        Ok(Err(e)) => {
            if let Some(ctx) = unsafe { ctx.as_ref() } {
                let state = unsafe { &mut *ctx.host.cast::<CtxState>() };
                state.error.get_or_insert_with(|| format!("emit failed: {e}"));
            }
            e.status() as i32
        }
        Err(_) => RmStatus::Internal as i32,
    }
}

unsafe extern "C" fn ctx_set_error(ctx: *mut RmNodeContext, message: *const c_char) {
    let _ = catch(|| {
        let (Some(ctx), false) = (unsafe { ctx.as_ref() }, message.is_null()) else { return };
        let state = unsafe { &mut *ctx.host.cast::<CtxState>() };
        state.error = Some(unsafe { CStr::from_ptr(message) }.to_string_lossy().into_owned());
    });
}

/// Ports and kinds of a node type, as the context checks emitted items against them.
#[derive(Clone, Copy)]
struct Shape {
    n_outputs: usize,
    input_kinds: u32,
    output_kinds: u32,
}

/// Calls one callback with a fresh context and turns its status into a result.
fn with_ctx(emitter: Option<&mut Emitter>, shape: Shape, f: impl FnOnce(*mut RmNodeContext) -> i32) -> Result<(), NodeFailure> {
    let mut state = CtxState { emitter, n_outputs: shape.n_outputs, output_kinds: shape.output_kinds, error: None };
    let mut ctx = RmNodeContext { host: (&raw mut state).cast(), emit: ctx_emit, set_error: ctx_set_error };
    let status = f(&raw mut ctx);
    if status == RmStatus::Ok as i32 {
        return Ok(());
    }
    let message = state.error.unwrap_or_else(|| format!("node callback returned status {status}"));
    Err(match status {
        s if s == RmStatus::Transient as i32 => NodeFailure::transient(message),
        s if s == RmStatus::Internal as i32 => NodeFailure::broken(message),
        s if s == RmStatus::InvalidArgument as i32 => NodeFailure::invalid_input(message),
        _ => NodeFailure::new(message),
    })
}

/// An instance created through a vtable.
struct ForeignNode {
    vtable: Arc<VTable>,
    instance: *mut c_void,
    shape: Shape,
}

// SAFETY: see `VTable`; the executor calls one instance from one thread at a time.
unsafe impl Send for ForeignNode {}

impl Node for ForeignNode {
    fn process(&mut self, input: &Data, out: &mut Emitter) -> Result<(), NodeFailure> {
        self.process_port(0, input, out)
    }

    /// Through the ports extension when the type has one, else `process`.
    fn process_port(&mut self, port: usize, input: &Data, out: &mut Emitter) -> Result<(), NodeFailure> {
        let accepted = self.shape.input_kinds;
        if accepted != 0 && kind_bit(input) & accepted == 0 {
            let (got, wanted) = (kind_names(kind_bit(input))[0], kind_names(accepted).join(", "));
            return Err(NodeFailure::new(format!("received {got} but the node type accepts {wanted}")));
        }
        let mut json = String::new();
        let view = view_of(input, &mut json);
        match self.vtable.ports.and_then(|p| p.process_port) {
            Some(process_port) => {
                let port = port as u32;
                with_ctx(Some(out), self.shape, |ctx| unsafe { process_port(self.instance, port, &view, ctx) })
            }
            None => {
                let process = self.vtable.raw.process.expect("checked in spec()");
                with_ctx(Some(out), self.shape, |ctx| unsafe { process(self.instance, &view, ctx) })
            }
        }
    }

    fn configure(&mut self, inputs: &[Caps]) -> Result<(), NodeFailure> {
        let Some(configure) = self.vtable.configure.and_then(|c| c.configure) else { return Ok(()) };
        let json = Value::Array(inputs.iter().map(Caps::to_json).collect()).to_string();
        with_ctx(None, self.shape, |ctx| unsafe { configure(self.instance, json.as_ptr().cast(), json.len(), ctx) })
    }

    fn flush(&mut self, out: &mut Emitter) -> Result<(), NodeFailure> {
        match self.vtable.raw.flush {
            Some(flush) => with_ctx(Some(out), self.shape, |ctx| unsafe { flush(self.instance, ctx) }),
            None => Ok(()),
        }
    }

    fn reset(&mut self) -> Result<(), NodeFailure> {
        match self.vtable.raw.reset {
            Some(reset) => with_ctx(None, self.shape, |ctx| unsafe { reset(self.instance, ctx) }),
            None => Ok(()),
        }
    }
}

impl Drop for ForeignNode {
    fn drop(&mut self) {
        let destroy = self.vtable.raw.destroy.expect("checked in spec()");
        unsafe { destroy(self.instance) };
    }
}

/// Output port names must be non-empty, unique and free of '.', which separates node
/// and port in a connection's `from`.
fn check_port_names(node_type: &str, outputs: &[String]) -> Result<()> {
    for (i, name) in outputs.iter().enumerate() {
        let problem = if name.is_empty() {
            "is empty"
        } else if name.contains('.') {
            "contains '.'"
        } else if outputs[..i].contains(name) {
            "is given twice"
        } else {
            continue;
        };
        return Err(Error::InvalidArgument(format!("node type '{node_type}': output port name '{name}' (outputs[{i}]) {problem}")));
    }
    Ok(())
}

/// What one `RmNodeTypeExtension` declares.
#[derive(Default)]
pub(crate) struct Extension {
    pub flags: u32,
    /// The caps declaration's text, not yet parsed.
    caps: Option<String>,
}

impl Extension {
    /// The flags, and the caps declaration parsed and checked against the node type's
    /// `info` (its output ports); errors name the field.
    ///
    /// # Safety
    /// The pointers in `info` must be null or valid as `RmNodeTypeInfo` documents.
    pub(crate) unsafe fn declared(&self, info: &RmNodeTypeInfo) -> std::result::Result<(u32, Option<Value>), String> {
        let Some(text) = &self.caps else { return Ok((self.flags, None)) };
        let value: Value = serde_json::from_str(text).map_err(|e| format!("caps: not JSON: {e}"))?;
        let outputs = unsafe { output_names(info) }.map_err(|e| e.to_string())?;
        crate::caps::check_decl(&value, &outputs).map_err(|m| format!("caps: {m}"))?;
        Ok((self.flags, Some(value)))
    }
}

/// Smallest and largest `RmNodeTypeExtension::size` accepted.
const EXTENSION_SIZE: std::ops::RangeInclusive<usize> = 8..=4096;

/// Reads the extension at `ext` as far as its `size` covers; `stride` is the size every
/// extension of its array must have (the first one's). Errors name the field.
///
/// # Safety
/// `ext` must point to an extension whose first `size` bytes are readable (any alignment).
pub(crate) unsafe fn read_extension(ext: *const RmNodeTypeExtension, stride: usize) -> std::result::Result<Extension, String> {
    // SAFETY: the caller's promise; every field read lies within `size`.
    let size = unsafe { std::ptr::read_unaligned(std::ptr::addr_of!((*ext).size)) } as usize;
    if !EXTENSION_SIZE.contains(&size) {
        return Err(format!("size is {size}, expected {} to {}", EXTENSION_SIZE.start(), EXTENSION_SIZE.end()));
    }
    if size != stride {
        return Err(format!("size is {size}, but the first extension's is {stride}: all must be the same"));
    }
    let flags = unsafe { std::ptr::read_unaligned(std::ptr::addr_of!((*ext).flags)) };
    if flags & !RM_NODE_PREFERS_ISOLATION != 0 {
        return Err(format!("flags has unknown bits {flags:#x}"));
    }
    let caps_end = std::mem::offset_of!(RmNodeTypeExtension, caps) + std::mem::size_of::<*const c_char>();
    let caps = if size >= caps_end {
        let ptr = unsafe { std::ptr::read_unaligned(std::ptr::addr_of!((*ext).caps)) };
        unsafe { optional_str_arg(ptr, "caps") }.map_err(|e| format!("caps: {e}"))?
    } else {
        None
    };
    Ok(Extension { flags, caps })
}

/// A node type's extension `id` through `get_extension`, copied; `None` when there is
/// no lookup, or it has no such extension.
///
/// # Safety
/// `get_extension` must return NULL or a pointer to a readable `T` (what `id` defines).
unsafe fn extension<T: Copy>(get_extension: Option<RmGetExtensionFn>, node_type: &CStr, id: &CStr) -> Result<Option<T>> {
    let Some(get) = get_extension else { return Ok(None) };
    let found = catch(|| unsafe { get(node_type.as_ptr(), id.as_ptr()) })
        .map_err(|_| Error::InvalidArgument(format!("get_extension panicked for {}", id.to_string_lossy())))?;
    // SAFETY: the caller's promise; read unaligned, the plugin's struct may be packed otherwise.
    Ok((!found.is_null()).then(|| unsafe { std::ptr::read_unaligned(found.cast::<T>()) }))
}

/// Builds the spec of a node type implemented by `vtable`, checking `info`, with what
/// its `RmNodeTypeExtension` declares (`declared`: its flags, and its caps checked by
/// the caller) and the extensions `get_extension` offers (several input ports,
/// `configure`, latency).
///
/// # Safety
/// The pointers in `info` must be null or valid as `RmNodeTypeInfo` documents, and
/// `get_extension` as `RmGetExtensionFn` documents.
pub(crate) unsafe fn spec(
    info: &RmNodeTypeInfo,
    mut vtable: VTable,
    implementation: Implementation,
    declared: (u32, Option<Value>),
    get_extension: Option<RmGetExtensionFn>,
) -> Result<NodeSpec> {
    let node_type = unsafe { str_arg(info.node_type, "info.node_type") }?.to_string();
    let name = unsafe { CStr::from_ptr(info.node_type) };
    vtable.ports = unsafe { extension::<RmNodePorts>(get_extension, name, RM_EXTENSION_PORTS) }?;
    vtable.configure = unsafe { extension::<RmNodeConfigure>(get_extension, name, RM_EXTENSION_CONFIGURE) }?;
    let latency = unsafe { extension::<RmNodeLatency>(get_extension, name, RM_EXTENSION_LATENCY) }?;
    for (id, given) in [
        (RM_EXTENSION_PORTS, vtable.ports.map(|p| p.process_port.is_some())),
        (RM_EXTENSION_CONFIGURE, vtable.configure.map(|c| c.configure.is_some())),
        (RM_EXTENSION_LATENCY, latency.map(|l| l.latency.is_some())),
    ] {
        if given == Some(false) {
            return Err(Error::InvalidArgument(format!("node type '{node_type}': extension {} has a NULL callback", id.to_string_lossy())));
        }
    }
    let vtable = Arc::new(vtable);
    if node_type.is_empty() {
        return Err(Error::InvalidArgument("info.node_type is empty".into()));
    }
    if vtable.raw.create.is_none() || vtable.raw.process.is_none() || vtable.raw.destroy.is_none() {
        return Err(Error::InvalidArgument(format!("node type '{node_type}': create, process and destroy are required")));
    }
    let description = unsafe { optional_str_arg(info.description, "info.description") }?.unwrap_or_default();
    let params_schema = match unsafe { optional_str_arg(info.params_schema_json, "info.params_schema_json") }? {
        None => serde_json::json!({"type": "object"}),
        Some(text) => match serde_json::from_str(&text) {
            Ok(Value::Object(schema)) => {
                let schema = Value::Object(schema);
                // the runtime checks a plugin node's params against it (a host's Python
                // nodes are checked on the Python side)
                if implementation.plugin().is_some() {
                    super::ParamsSchema::compile(&schema).map_err(|e| {
                        Error::InvalidArgument(format!("node type '{node_type}': params_schema_json is not a supported JSON Schema: {e}"))
                    })?;
                }
                schema
            }
            Ok(_) => return Err(Error::InvalidArgument(format!("node type '{node_type}': params_schema_json is not a JSON object"))),
            Err(e) => return Err(Error::InvalidArgument(format!("node type '{node_type}': params_schema_json: {e}"))),
        },
    };
    let outputs = unsafe { output_names(info) }?;
    check_port_names(&node_type, &outputs)?;
    let known = remotemedia_plugin::abi::RM_KIND_AUDIO | remotemedia_plugin::abi::RM_KIND_JSON;
    if (info.input_kinds | info.output_kinds) & !known != 0 {
        return Err(Error::InvalidArgument(format!("node type '{node_type}': unknown bits in input_kinds or output_kinds")));
    }
    let shape = Shape { n_outputs: outputs.len(), input_kinds: info.input_kinds, output_kinds: info.output_kinds };
    let (has_ports, kept) = (vtable.ports.is_some(), vtable.clone());
    let create = move |params: &serde_json::Map<String, Value>| -> Result<Box<dyn Node>, ParamError> {
        let create = vtable.raw.create.expect("checked above");
        let json = Value::Object(params.clone()).to_string();
        let mut instance = std::ptr::null_mut();
        with_ctx(None, shape, |ctx| unsafe { create(vtable.raw.user_data, json.as_ptr().cast(), json.len(), &mut instance, ctx) })
            .map_err(|f| ParamError::new("", f.message))?;
        if instance.is_null() {
            return Err(ParamError::new("", "create returned OK but no instance"));
        }
        Ok(Box::new(ForeignNode { vtable: vtable.clone(), instance, shape }))
    };
    let (flags, caps) = declared;
    let spec = NodeSpec {
        node_type,
        description,
        params_schema,
        outputs,
        implementation,
        prefers_isolation: flags & RM_NODE_PREFERS_ISOLATION != 0,
        caps,
        latency: latency.and_then(|l| l.latency).map(|f| latency_fn(f, kept)),
        create: Arc::new(create),
    };
    if ports_of(&spec).len() > 1 && !has_ports {
        return Err(Error::InvalidArgument(format!(
            "node type '{}': its caps declare the input ports {}, so it needs the extension {} (process_port)",
            spec.node_type,
            ports_of(&spec).join(", "),
            RM_EXTENSION_PORTS.to_string_lossy()
        )));
    }
    Ok(spec)
}

/// The output port names `info` gives (`out` when it gives none).
///
/// # Safety
/// As for [`spec`].
unsafe fn output_names(info: &RmNodeTypeInfo) -> Result<Vec<String>> {
    if info.n_outputs == 0 {
        return Ok(vec!["out".to_string()]);
    }
    let names = unsafe { arg(info.outputs, "info.outputs") }?;
    let names = unsafe { std::slice::from_raw_parts(names, info.n_outputs) };
    names.iter().map(|&p| unsafe { str_arg(p, "info.outputs[i]") }.map(str::to_string)).collect()
}

/// The input ports of a node type with its params' defaults.
fn ports_of(spec: &NodeSpec) -> Vec<String> {
    spec.ports(&serde_json::Map::new()).inputs
}

/// The spec's latency through a type's latency extension, given its vtable's `user_data`
/// (kept alive with the vtable).
fn latency_fn(
    f: unsafe extern "C" fn(*mut c_void, *const c_char, usize, *const c_char, usize) -> i64,
    vtable: Arc<VTable>,
) -> Arc<super::LatencyFn> {
    Arc::new(move |params, caps| {
        let (params, caps) = (Value::Object(params.clone()).to_string(), caps.to_json().to_string());
        let user_data = vtable.raw.user_data;
        let frames = catch(|| unsafe { f(user_data, params.as_ptr().cast(), params.len(), caps.as_ptr().cast(), caps.len()) }).ok()?;
        usize::try_from(frames).ok()
    })
}
