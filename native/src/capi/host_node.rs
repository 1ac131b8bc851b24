//! Node types implemented by the embedding host (Python, or any C caller) through a
//! vtable of callbacks.

use std::ffi::{CStr, c_char, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use serde_json::Value;

use crate::data::Data;
use crate::error::{Error, NodeFailure, Result};
use crate::nodes::{Emitter, Implementation, Node, NodeSpec, ParamError};

use super::outputs::RmDataView;
use super::runtime::RmRuntime;
use super::{RmStatus, arg, guard, str_arg};

/// Handed to every node callback; valid only during that callback, on its thread.
/// The node reports outputs and failures through its function pointers.
#[repr(C)]
pub struct RmNodeContext {
    /// Private to the runtime.
    pub host: *mut c_void,
    /// Emits one item on output port `port` (index into the type's outputs). The item
    /// is copied before this returns; `data` stays owned by the caller. Returns an
    /// `RmStatus` value. Not allowed during `create`.
    pub emit: unsafe extern "C" fn(ctx: *mut RmNodeContext, port: u32, data: *const RmDataView) -> i32,
    /// Sets the message reported with a failing status returned by this callback.
    /// `message` is NUL-terminated UTF-8, copied before this returns.
    pub set_error: unsafe extern "C" fn(ctx: *mut RmNodeContext, message: *const c_char),
}

/// Callbacks of a host node type. Each returns an `RmStatus` value: `RM_STATUS_OK`,
/// `RM_STATUS_TRANSIENT` for a failure that may pass if retried, or any other value
/// for a permanent failure; a message can be set with `ctx->set_error`. Callbacks must
/// not unwind or longjmp across the boundary.
///
/// Threading: callbacks of one instance are never called concurrently; they run on the
/// thread that called `rm_pipeline_run`, which may differ from call to call.
#[repr(C)]
pub struct RmNodeVTable {
    /// Passed to `create` and `release`; owned by the host.
    pub user_data: *mut c_void,
    /// Creates an instance from `params_len` bytes of JSON params (an object, borrowed
    /// for the call) and stores it in `*instance`. Required.
    pub create: Option<
        unsafe extern "C" fn(
            user_data: *mut c_void,
            params_json: *const c_char,
            params_len: usize,
            instance: *mut *mut c_void,
            ctx: *mut RmNodeContext,
        ) -> i32,
    >,
    /// Processes one item (borrowed for the call). Required.
    pub process: Option<unsafe extern "C" fn(instance: *mut c_void, input: *const RmDataView, ctx: *mut RmNodeContext) -> i32>,
    /// End of stream: emit what is held. Optional.
    pub flush: Option<unsafe extern "C" fn(instance: *mut c_void, ctx: *mut RmNodeContext) -> i32>,
    /// Forget stream state. Optional.
    pub reset: Option<unsafe extern "C" fn(instance: *mut c_void, ctx: *mut RmNodeContext) -> i32>,
    /// Destroys an instance; called exactly once per successful `create`. Required.
    pub destroy: Option<unsafe extern "C" fn(instance: *mut c_void)>,
    /// Called once when the runtime and every pipeline no longer need this type, so
    /// the host can free `user_data`. Optional.
    pub release: Option<unsafe extern "C" fn(user_data: *mut c_void)>,
}

/// Describes a host node type for `rm_runtime_register_node`. Everything is borrowed
/// for the call and copied.
#[repr(C)]
pub struct RmNodeTypeInfo {
    /// The `node_type` used in manifests. Required.
    pub node_type: *const c_char,
    /// One-line description, or NULL.
    pub description: *const c_char,
    /// JSON Schema of the params, or NULL for none given.
    pub params_schema_json: *const c_char,
    /// `n_outputs` output port names; NULL and 0 mean the single port "out".
    pub outputs: *const *const c_char,
    pub n_outputs: usize,
}

/// The vtable plus its teardown, shared by a node type and all its instances.
struct VTable(RmNodeVTable);

// SAFETY: the host promises (see `RmNodeVTable`) that callbacks may run on any thread,
// one at a time per instance; `user_data` is only handed back to the host.
unsafe impl Send for VTable {}
unsafe impl Sync for VTable {}

impl Drop for VTable {
    fn drop(&mut self) {
        if let Some(release) = self.0.release {
            unsafe { release(self.0.user_data) };
        }
    }
}

struct CtxState<'a> {
    emitter: Option<&'a mut Emitter>,
    n_outputs: usize,
    error: Option<String>,
}

unsafe extern "C" fn ctx_emit(ctx: *mut RmNodeContext, port: u32, data: *const RmDataView) -> i32 {
    let result = catch_unwind(AssertUnwindSafe(|| -> Result<()> {
        let ctx = unsafe { arg(ctx, "ctx") }?;
        let state = unsafe { &mut *ctx.host.cast::<CtxState>() };
        let view = unsafe { arg(data, "data") }?;
        let port = port as usize;
        if port >= state.n_outputs {
            return Err(Error::InvalidArgument(format!("port {port} out of range ({} outputs)", state.n_outputs)));
        }
        let item = unsafe { view.copy_data() }?;
        let emitter = state.emitter.as_mut().ok_or_else(|| Error::InvalidArgument("emit is not allowed in create".into()))?;
        emitter.emit_to(port, item);
        Ok(())
    }));
    match result {
        Ok(Ok(())) => RmStatus::Ok as i32,
        Ok(Err(e)) => {
            if let Some(ctx) = unsafe { ctx.as_ref() } {
                let state = unsafe { &mut *ctx.host.cast::<CtxState>() };
                state.error.get_or_insert_with(|| format!("emit failed: {e}"));
            }
            RmStatus::of(&e) as i32
        }
        Err(_) => RmStatus::Internal as i32,
    }
}

unsafe extern "C" fn ctx_set_error(ctx: *mut RmNodeContext, message: *const c_char) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        let (Some(ctx), false) = (unsafe { ctx.as_ref() }, message.is_null()) else { return };
        let state = unsafe { &mut *ctx.host.cast::<CtxState>() };
        state.error = Some(unsafe { CStr::from_ptr(message) }.to_string_lossy().into_owned());
    }));
}

/// Calls one callback with a fresh context and turns its status into a result.
fn with_ctx(emitter: Option<&mut Emitter>, n_outputs: usize, f: impl FnOnce(*mut RmNodeContext) -> i32) -> Result<(), NodeFailure> {
    let mut state = CtxState { emitter, n_outputs, error: None };
    let mut ctx = RmNodeContext { host: (&raw mut state).cast(), emit: ctx_emit, set_error: ctx_set_error };
    let status = f(&raw mut ctx);
    if status == RmStatus::Ok as i32 {
        return Ok(());
    }
    let message = state.error.unwrap_or_else(|| format!("node callback returned status {status}"));
    Err(if status == RmStatus::Transient as i32 { NodeFailure::transient(message) } else { NodeFailure::new(message) })
}

/// An instance created through a vtable.
struct ForeignNode {
    vtable: Arc<VTable>,
    instance: *mut c_void,
    n_outputs: usize,
}

// SAFETY: see `VTable`; the executor calls one instance from one thread at a time.
unsafe impl Send for ForeignNode {}

impl Node for ForeignNode {
    fn process(&mut self, input: &Data, out: &mut Emitter) -> Result<(), NodeFailure> {
        let process = self.vtable.0.process.expect("checked at registration");
        let mut json = String::new();
        let view = RmDataView::of(input, &mut json);
        with_ctx(Some(out), self.n_outputs, |ctx| unsafe { process(self.instance, &view, ctx) })
    }

    fn flush(&mut self, out: &mut Emitter) -> Result<(), NodeFailure> {
        match self.vtable.0.flush {
            Some(flush) => with_ctx(Some(out), self.n_outputs, |ctx| unsafe { flush(self.instance, ctx) }),
            None => Ok(()),
        }
    }

    fn reset(&mut self) -> Result<(), NodeFailure> {
        match self.vtable.0.reset {
            Some(reset) => with_ctx(None, self.n_outputs, |ctx| unsafe { reset(self.instance, ctx) }),
            None => Ok(()),
        }
    }
}

impl Drop for ForeignNode {
    fn drop(&mut self) {
        let destroy = self.vtable.0.destroy.expect("checked at registration");
        unsafe { destroy(self.instance) };
    }
}

/// Builds the spec of a node type implemented by `vtable`.
fn foreign_spec(info: &RmNodeTypeInfo, vtable: RmNodeVTable, implementation: Implementation) -> Result<NodeSpec> {
    let vtable = Arc::new(VTable(vtable));
    let node_type = unsafe { str_arg(info.node_type, "info.node_type") }?.to_string();
    if node_type.is_empty() {
        return Err(Error::InvalidArgument("info.node_type is empty".into()));
    }
    if vtable.0.create.is_none() || vtable.0.process.is_none() || vtable.0.destroy.is_none() {
        return Err(Error::InvalidArgument(format!("node type '{node_type}': create, process and destroy are required")));
    }
    let description =
        if info.description.is_null() { String::new() } else { unsafe { str_arg(info.description, "info.description") }?.to_string() };
    let params_schema = if info.params_schema_json.is_null() {
        serde_json::json!({"type": "object"})
    } else {
        let text = unsafe { str_arg(info.params_schema_json, "info.params_schema_json") }?;
        serde_json::from_str(text).map_err(|e| Error::InvalidArgument(format!("info.params_schema_json: {e}")))?
    };
    let outputs = if info.n_outputs == 0 {
        vec!["out".to_string()]
    } else {
        let names = unsafe { arg(info.outputs, "info.outputs") }?;
        let names = unsafe { std::slice::from_raw_parts(names, info.n_outputs) };
        names.iter().map(|&p| unsafe { str_arg(p, "info.outputs[i]") }.map(str::to_string)).collect::<Result<_>>()?
    };
    let n_outputs = outputs.len();
    let create = move |params: &serde_json::Map<String, Value>| -> Result<Box<dyn Node>, ParamError> {
        let create = vtable.0.create.expect("checked above");
        let json = Value::Object(params.clone()).to_string();
        let mut instance = std::ptr::null_mut();
        with_ctx(None, n_outputs, |ctx| unsafe {
            create(vtable.0.user_data, json.as_ptr().cast(), json.len(), &mut instance, ctx)
        })
        .map_err(|f| ParamError::new("", f.message))?;
        if instance.is_null() {
            return Err(ParamError::new("", "create returned OK but no instance"));
        }
        Ok(Box::new(ForeignNode { vtable: vtable.clone(), instance, n_outputs }))
    };
    Ok(NodeSpec { node_type, description, params_schema, outputs, implementation, create: Arc::new(create) })
}

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
        let vtable = unsafe { arg(vtable, "vtable") }?;
        let vtable = RmNodeVTable { ..*vtable };
        let runtime = unsafe { arg(runtime, "runtime") };
        let info = unsafe { arg(info, "info") };
        // Build the spec even on bad arguments so that `release` runs exactly once.
        let (runtime, info) = match (runtime, info) {
            (Ok(r), Ok(i)) => (r, i),
            (Err(e), _) | (_, Err(e)) => {
                drop(VTable(vtable));
                return Err(e);
            }
        };
        let spec = foreign_spec(info, vtable, Implementation::Host)?;
        runtime.inner.register(spec);
        Ok(())
    })
}
