//! The node ABI: plain `repr(C)` data shared by the runtime, host nodes and plugins.
//!
//! `include/remotemedia_plugin.h` is generated from this file alone; the runtime's
//! header `remotemedia.h` includes it. Nothing here allocates or calls anything.
//!
//! Compatibility: within one major version, new values go only to the end of an enum,
//! and no struct a plugin fills grows or changes its layout, so that a plugin's source
//! written against an earlier minor compiles unchanged (positional initialisers
//! included); a new minor renames a reserved slot of the descriptor, or defines a
//! struct behind a versioned id (docs/PLUGINS.md, "Versions"). The runtime reads a
//! plugin's structs as the plugin's minor version defines them.

use std::ffi::{c_char, c_void};

/// Major version of the plugin ABI. The runtime loads a plugin only when the majors match.
pub const RM_PLUGIN_ABI_MAJOR: u32 = 1;

/// Minor version of the plugin ABI. The runtime loads a plugin whose minor is at most its own.
///
/// Minor 1 added `RmPluginDescriptor::extensions` (`RmNodeTypeExtension`, with the
/// `RM_NODE_PREFERS_ISOLATION` flag). Minor 2 appended `RmNodeTypeExtension::caps`.
/// Minor 3 took `reserved_1` for `get_extension`: node type extensions by id
/// (`RM_EXTENSION_PORTS`, `RM_EXTENSION_CONFIGURE`, `RM_EXTENSION_LATENCY`). A plugin
/// built against an older minor loads as before (its node types undeclared, with one
/// input port).
pub const RM_PLUGIN_ABI_MINOR: u32 = 3;

/// `RmNodeTypeExtension::flags` bit: the node type should run in a process of its own
/// (`"isolation": "process"` in a manifest), e.g. because it wraps code that may crash.
/// The manifest decides; the runtime logs a warning when it runs such a node in-process,
/// and listings show the preference.
pub const RM_NODE_PREFERS_ISOLATION: u32 = 1;

/// What a node type declares beyond `RmNodeTypeInfo` (ABI minor 1 and later), in an
/// array parallel to the descriptor's `node_types`. Minor 2 appended `caps`, the last
/// field it will have (a longer struct would break positional initialisers); `size`
/// says how many bytes of the struct the plugin filled (every element the same), so the
/// runtime reads only those and steps through the array by it.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct RmNodeTypeExtension {
    /// `sizeof(RmNodeTypeExtension)` as the plugin was compiled (at least 8).
    pub size: u32,
    /// `RM_NODE_*` flag bits; unknown bits are refused.
    pub flags: u32,
    /// ABI minor 2: what the node type's ports carry, as NUL-terminated JSON text
    /// `{"input": {...}, "outputs": {"port": {...}}}` (docs/PLUGINS.md, "Caps"), or NULL:
    /// undeclared, it accepts anything and its outputs are not known before data flows,
    /// so no converter is inserted around it. Read and copied while the plugin loads; a
    /// malformed declaration refuses the plugin.
    pub caps: *const c_char,
}

/// Name of the symbol every plugin exports, an `RmPluginEntryFn` with C linkage.
pub const RM_PLUGIN_ENTRY_SYMBOL: &std::ffi::CStr = c"remotemedia_plugin_entry";

/// Bit of `RmNodeTypeInfo::input_kinds` and `output_kinds`: audio items.
pub const RM_KIND_AUDIO: u32 = 1 << 0;

/// Bit of `RmNodeTypeInfo::input_kinds` and `output_kinds`: JSON items.
pub const RM_KIND_JSON: u32 = 1 << 1;

/// Result of a runtime call or a node callback. `RM_STATUS_OK` is 0. Values are stable;
/// new ones are only appended.
///
/// A node callback returns `RM_STATUS_OK`, `RM_STATUS_TRANSIENT` for a failure that may
/// pass if retried, `RM_STATUS_INVALID_ARGUMENT` when `process` refuses its input and
/// left its state unchanged (the user gets an invalid-input error naming the node; the
/// breaker does not count it), `RM_STATUS_INTERNAL` when the instance is broken (a
/// caught panic, corrupt state: the runtime never calls it again except `destroy`), or
/// any other value (`RM_STATUS_NODE` is usual) for a permanent failure of this call.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RmStatus {
    Ok = 0,
    /// A null, mis-sized or otherwise unusable argument; from a node: input it refused
    /// (`rm_last_error_node_id` names the node).
    InvalidArgument = 1,
    /// The manifest failed to parse or validate.
    Manifest = 2,
    /// The graph cannot run.
    Graph = 3,
    /// The graph has a cycle (message lists it).
    Cycle = 4,
    /// A node failed; `rm_last_error_node_id` names it.
    Node = 5,
    /// A bug inside the runtime, including a caught panic outside any node; from a node
    /// callback: the instance is broken.
    Internal = 6,
    /// Returned by a node callback: a failure that may succeed if retried.
    Transient = 7,
    /// A session's output queue stayed full for the whole push timeout.
    QueueFull = 8,
    /// The session is closed.
    Closed = 9,
    /// The node's circuit breaker is open; `rm_last_error_node_id` names it.
    CircuitOpen = 10,
    /// A node call ran past its `timeout_ms`; `rm_last_error_node_id` names it.
    Timeout = 11,
    /// A call waiting inside the runtime was interrupted (a blocked push, by close).
    Cancelled = 12,
    /// A plugin could not be loaded or one of its nodes could not be created; the
    /// message names the file and the reason.
    Plugin = 13,
}

/// Sample encoding of audio.
///
/// One scaling convention for conversions between them: full scale is ±1.0 for floats
/// and `-2^(N-1) .. 2^(N-1)-1` for an N-bit integer, i.e. `i = round(f * 2^(N-1))`
/// clipped to the integer range.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SampleFormat {
    F32 = 0,
    I16 = 1,
    I32 = 2,
    F64 = 3,
}

impl SampleFormat {
    /// Bytes per sample.
    pub fn size(self) -> usize {
        match self {
            SampleFormat::I16 => 2,
            SampleFormat::F32 | SampleFormat::I32 => 4,
            SampleFormat::F64 => 8,
        }
    }

    /// Decodes the C value; `None` for an unknown number.
    pub fn from_raw(raw: u32) -> Option<Self> {
        Some(match raw {
            0 => SampleFormat::F32,
            1 => SampleFormat::I16,
            2 => SampleFormat::I32,
            3 => SampleFormat::F64,
            _ => return None,
        })
    }
}

/// What an `RmDataView` holds.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RmDataKind {
    /// Interleaved samples: `data` points to `len` samples of `format`.
    Audio = 0,
    /// A structured event: `data` points to `len` bytes of UTF-8 JSON (no NUL).
    Json = 1,
}

/// A borrowed view of one data item. Enum-valued fields are plain integers so a bad
/// value is an error, not undefined behaviour: `kind` is an `RmDataKind`, `format` an
/// `RmSampleFormat`. `format`, `channels` and `sample_rate` are 0 for JSON. Audio
/// `data` is aligned for its sample type and may be NULL only when `len` is 0.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct RmDataView {
    pub kind: u32,
    pub data: *const c_void,
    pub len: usize,
    pub format: u32,
    pub channels: u32,
    pub sample_rate: u32,
}

/// Handed to every node callback; valid only during that callback, on its thread.
/// The node reports outputs and failures through its function pointers.
#[repr(C)]
pub struct RmNodeContext {
    /// Private to the runtime.
    pub host: *mut c_void,
    /// Emits one item on output port `port` (index into the type's outputs). The item
    /// is copied before this returns; `data` stays owned by the caller. Returns an
    /// `RmStatus` value: `RM_STATUS_INVALID_ARGUMENT` for a bad port, a malformed item
    /// or a kind not in the type's `output_kinds`. Not allowed during `create` or `reset`.
    pub emit: unsafe extern "C" fn(ctx: *mut RmNodeContext, port: u32, data: *const RmDataView) -> i32,
    /// Sets the message reported with a failing status returned by this callback.
    /// `message` is NUL-terminated UTF-8, copied before this returns.
    pub set_error: unsafe extern "C" fn(ctx: *mut RmNodeContext, message: *const c_char),
}

/// Callbacks of a node type. Each returns an `RmStatus` value (see `RmStatus` for what
/// a node may return); a message can be set with `ctx->set_error`. Callbacks must not
/// unwind or longjmp across the boundary.
///
/// Threading: callbacks of one instance are never called concurrently, but may be
/// called from a different thread each time. Different instances may run at once on
/// different threads. `create` may run on any thread, concurrently with calls into
/// other instances. After a call runs past its node's `timeout_ms`, the runtime
/// abandons it and calls `create` again with the same params for a fresh instance,
/// while the old call may still be running; the old instance is destroyed on its
/// thread once that call returns.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct RmNodeVTable {
    /// Passed to `create` and `release`; owned by whoever supplies the vtable.
    pub user_data: *mut c_void,
    /// Creates an instance from `params_len` bytes of JSON params (an object, borrowed
    /// for the call, not NUL-terminated) and stores it in `*instance`. A failure should
    /// set a message naming the bad param. Required.
    pub create: Option<
        unsafe extern "C" fn(
            user_data: *mut c_void,
            params_json: *const c_char,
            params_len: usize,
            instance: *mut *mut c_void,
            ctx: *mut RmNodeContext,
        ) -> i32,
    >,
    /// Processes one item (`input`, borrowed for the call). Required.
    pub process: Option<unsafe extern "C" fn(instance: *mut c_void, input: *const RmDataView, ctx: *mut RmNodeContext) -> i32>,
    /// End of stream: emit what is held (a tail, a last partial frame). Called at the end
    /// of every one-shot run and when a stream is flushed or closed; the runtime calls
    /// `reset` right after it (even when it fails), so `flush` need not clear state.
    /// Optional.
    pub flush: Option<unsafe extern "C" fn(instance: *mut c_void, ctx: *mut RmNodeContext) -> i32>,
    /// Forget all stream state, as if newly created: the next call is the first of a new
    /// stream. Called before every one-shot run and after every `flush`; not after a
    /// failed `process` (the stream goes on; return `RM_STATUS_INTERNAL` from a call that
    /// left the instance unusable, and it is never called again) nor between retries
    /// (a retried `process` gets the same input again, so it must not have kept part of
    /// it). After a timeout the instance is replaced by a new `create`. Optional, but a
    /// node that keeps state across calls must implement it: the conformance check
    /// compares a stream after flush and reset with a fresh instance's.
    pub reset: Option<unsafe extern "C" fn(instance: *mut c_void, ctx: *mut RmNodeContext) -> i32>,
    /// Destroys an instance; called exactly once per successful `create`, also after a
    /// failed or broken call. Required.
    pub destroy: Option<unsafe extern "C" fn(instance: *mut c_void)>,
    /// Called once when no pipeline and no runtime need this type any more, so its
    /// owner can free `user_data`. Optional.
    pub release: Option<unsafe extern "C" fn(user_data: *mut c_void)>,
}

/// Id of [`RmNodePorts`] (`"remotemedia.ports/1"`), for `get_extension`.
pub const RM_EXTENSION_PORTS: &std::ffi::CStr = c"remotemedia.ports/1";
/// Id of [`RmNodeConfigure`] (`"remotemedia.configure/1"`), for `get_extension`.
pub const RM_EXTENSION_CONFIGURE: &std::ffi::CStr = c"remotemedia.configure/1";
/// Id of [`RmNodeLatency`] (`"remotemedia.latency/1"`), for `get_extension`.
pub const RM_EXTENSION_LATENCY: &std::ffi::CStr = c"remotemedia.latency/1";

/// Looks up an extension of node type `node_type` by its versioned `id` (both
/// NUL-terminated, borrowed for the call): a pointer to the struct that id defines, or
/// NULL when the node type has none. The runtime asks once per node type and id, when
/// it loads the plugin (or registers the host's node type), on any thread, and copies
/// what the struct holds; the struct must stay valid until then. Unknown ids must get
/// NULL: later runtimes ask for ids this header does not know.
pub type RmGetExtensionFn = unsafe extern "C" fn(node_type: *const c_char, id: *const c_char) -> *const c_void;

/// `RM_EXTENSION_PORTS`: a node type that declares several input ports (its caps'
/// `"inputs"`, docs/PLUGINS.md) gets each item through `process_port` instead of
/// `process`, with the index of the port it arrived at (in declaration order).
/// Threading and ownership as `RmNodeVTable::process`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct RmNodePorts {
    /// Processes one item (`input`, borrowed for the call) that arrived at input port
    /// `port`. Required.
    pub process_port:
        Option<unsafe extern "C" fn(instance: *mut c_void, port: u32, input: *const RmDataView, ctx: *mut RmNodeContext) -> i32>,
}

/// `RM_EXTENSION_CONFIGURE`: the node is told the caps negotiated for its input ports
/// before each stream's first item (gst-plugins-rs's `set_caps`), so it can size its
/// state there. Threading as `RmNodeVTable::process`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct RmNodeConfigure {
    /// Called exactly once per stream (a run, or a session's pushes up to a flush),
    /// after `reset` and before the first `process`, with `len` bytes of JSON (not
    /// NUL-terminated, borrowed for the call): an array with the caps of each input
    /// port in order, each `{"kind": "audio", "format", "channels", "sample_rate"}`
    /// (`null` where not known before data flows) or `{"kind": "json"}`. Return
    /// `RM_STATUS_INVALID_ARGUMENT` (with a message) to refuse caps it cannot take.
    /// Required.
    pub configure:
        Option<unsafe extern "C" fn(instance: *mut c_void, caps_json: *const c_char, len: usize, ctx: *mut RmNodeContext) -> i32>,
}

/// `RM_EXTENSION_LATENCY`: the node type's algorithmic latency (CLAP's `latency.get`),
/// which plans use for latency budgets.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct RmNodeLatency {
    /// The most output frames (at its output rate) an input sample may wait in a node
    /// of this type (`user_data`: its vtable's) with these params (`params_len` bytes
    /// of JSON) whose first input port carries
    /// these caps (`caps_len` bytes of JSON, as `configure` gets one), both borrowed
    /// for the call; a negative value when that is not known. Called on any thread, at
    /// any time, with no instance; it must not fail or block. Required.
    pub latency: Option<
        unsafe extern "C" fn(
            user_data: *mut c_void,
            params_json: *const c_char,
            params_len: usize,
            caps_json: *const c_char,
            caps_len: usize,
        ) -> i64,
    >,
}

/// Describes a node type. Strings are NUL-terminated UTF-8.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct RmNodeTypeInfo {
    /// The `node_type` used in manifests. Required.
    pub node_type: *const c_char,
    /// One-line description, or NULL.
    pub description: *const c_char,
    /// JSON Schema of the params (a JSON object), or NULL for none given.
    pub params_schema_json: *const c_char,
    /// `n_outputs` output port names (non-empty, unique, without `.`); NULL and 0 mean
    /// the single port "out".
    pub outputs: *const *const c_char,
    pub n_outputs: usize,
    /// `RM_KIND_*` bits of the items `process` accepts; 0 means any. Items of another
    /// kind fail before reaching the node.
    pub input_kinds: u32,
    /// `RM_KIND_*` bits of the items the node may emit; 0 means any.
    pub output_kinds: u32,
}

/// One node type of a plugin.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct RmPluginNodeType {
    pub info: RmNodeTypeInfo,
    pub vtable: RmNodeVTable,
}

/// Severity of a log record, as in `tracing` (and Python's logging levels ERROR to DEBUG,
/// with TRACE below DEBUG).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RmLogLevel {
    Error = 1,
    Warn = 2,
    Info = 3,
    Debug = 4,
    Trace = 5,
}

/// Services the runtime offers a plugin, handed to its entry point. The struct and its
/// function pointers stay valid until the plugin's library is unloaded; the plugin may
/// keep the pointer and call the functions from any thread.
#[repr(C)]
pub struct RmHostServices {
    /// Plugin ABI version of the runtime.
    pub abi_major: u32,
    pub abi_minor: u32,
    /// Private to the runtime.
    pub host_data: *mut c_void,
    /// Logs `message` (NUL-terminated UTF-8, borrowed for the call) at `level` (an
    /// `RmLogLevel` value) to the host's logging, tagged with the plugin's name.
    pub log: unsafe extern "C" fn(host: *const RmHostServices, level: u32, message: *const c_char),
    /// Looks up an optional host extension by versioned id (e.g. "remotemedia.foo/1");
    /// returns NULL when the runtime does not offer it. `id` is borrowed for the call.
    /// This runtime offers none yet.
    pub get_extension: unsafe extern "C" fn(host: *const RmHostServices, id: *const c_char) -> *const c_void,
}

/// What a plugin is and which node types it offers, returned by its entry point. The
/// descriptor and everything it points to are owned by the plugin and must stay valid
/// and unchanged until its library is unloaded (static data is usual). The runtime
/// copies names and schemas when it loads the plugin.
///
/// The C definition is written by hand in `cbindgen.toml`: there the four pointers
/// after `unload` sit in an anonymous struct (`extensions`, `reserved_1` to
/// `reserved_3`), so that a source written against any earlier minor compiles with
/// positional or designated initialisers. The layout is the same as this one, and
/// frozen: a later minor renames a reserved slot, never grows the struct.
#[repr(C)]
pub struct RmPluginDescriptor {
    /// `RM_PLUGIN_ABI_MAJOR` and `RM_PLUGIN_ABI_MINOR` as the plugin was compiled with.
    /// These two fields keep their place in every version.
    pub abi_major: u32,
    pub abi_minor: u32,
    /// Plugin name (unique among installed plugins), version and SPDX license
    /// expression. Required, non-empty.
    pub name: *const c_char,
    pub version: *const c_char,
    pub license: *const c_char,
    /// One-line description, or NULL.
    pub description: *const c_char,
    /// `n_node_types` node types (at least one), with distinct names.
    pub node_types: *const RmPluginNodeType,
    pub n_node_types: usize,
    /// Called once just before the library is unloaded, after every instance was
    /// destroyed and every `release` called. Optional.
    pub unload: Option<unsafe extern "C" fn()>,
    /// ABI minor 1: `n_node_types` extensions, one per node type in the same order, or
    /// NULL for none. Read only when `abi_minor` is at least 1.
    pub extensions: *const RmNodeTypeExtension,
    /// ABI minor 3: looks up node type extensions by id, or NULL for none. Read only
    /// when `abi_minor` is at least 3.
    pub get_extension: Option<RmGetExtensionFn>,
    /// Must be NULL: room for later minor versions (`reserved_2` and `reserved_3` in C).
    pub reserved: [*const c_void; 2],
}

/// The type of the entry point every plugin exports under the name
/// `remotemedia_plugin_entry` (C linkage). Called once per load, before anything else,
/// on any thread. Returns the plugin's descriptor, or NULL to refuse to load (it may
/// log why through `host`). `host` stays valid until the library is unloaded.
pub type RmPluginEntryFn = unsafe extern "C" fn(host: *const RmHostServices) -> *const RmPluginDescriptor;
