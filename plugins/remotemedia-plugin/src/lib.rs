//! Write a remotemedia plugin in Rust: implement [`Node`] for each node type and list
//! them in [`export_plugin!`]. The crate builds the descriptor, converts data views to
//! slices, catches panics (the instance is then reported broken and never called
//! again) and forwards logs to the host.
//!
//! ```
//! use remotemedia_plugin::{Audio, Error, Input, Node, NodeInfo, Output, Params, Samples, param_f64};
//!
//! struct Gain(f32);
//!
//! impl Node for Gain {
//!     fn info() -> NodeInfo {
//!         NodeInfo::new("MyGain", "Multiplies f32 audio.")
//!             .params_schema(r#"{"type":"object","properties":{"gain":{"type":"number","default":1}}}"#)
//!     }
//!     fn create(params: &Params) -> Result<Self, Error> {
//!         Ok(Gain(param_f64(params, "gain", 1.0)? as f32))
//!     }
//!     fn process(&mut self, input: Input<'_>, out: &mut Output<'_>) -> Result<(), Error> {
//!         let Input::Audio(a) = input else { return Err(Error::new("audio only")) };
//!         let Samples::F32(x) = a.samples else { return Err(Error::new("f32 only")) };
//!         let y: Vec<f32> = x.iter().map(|v| v * self.0).collect();
//!         out.audio(0, Audio { samples: Samples::F32(&y), ..a })
//!     }
//! }
//!
//! remotemedia_plugin::export_plugin!(
//!     name: "my-gain", version: "1.0.0", license: "MIT", description: "a gain", nodes: [Gain],
//! );
//! ```
//!
//! A node with state: it keeps samples across calls, so it implements `reset` (the
//! runtime calls it before every one-shot run and after every `flush`), emits what it
//! holds in `flush`, and refuses params it does not know and values out of range.
//!
//! ```
//! use remotemedia_plugin::{Audio, Error, Input, Node, NodeInfo, Output, Params, Samples, deny_unknown, param_f64};
//!
//! /// Emits f32 audio in blocks of `block` frames (mono); the last, short block at flush.
//! struct Blocks {
//!     block: usize,
//!     held: Vec<f32>,
//!     rate: u32,
//! }
//!
//! impl Node for Blocks {
//!     fn info() -> NodeInfo {
//!         NodeInfo::new("Blocks", "Re-blocks mono f32 audio.").params_schema(
//!             r#"{"type":"object","properties":{"block":{"type":"integer","minimum":1,"maximum":65536,"default":160}},
//!                 "additionalProperties":false}"#,
//!         )
//!     }
//!     fn create(params: &Params) -> Result<Self, Error> {
//!         deny_unknown(params, &["block"])?; // "additionalProperties": false
//!         let block = param_f64(params, "block", 160.0)?;
//!         if block.fract() != 0.0 || !(1.0..=65536.0).contains(&block) {
//!             return Err(Error::new(format!("block: {block} is not an integer in 1..=65536")));
//!         }
//!         Ok(Blocks { block: block as usize, held: Vec::new(), rate: 0 })
//!     }
//!     fn process(&mut self, input: Input<'_>, out: &mut Output<'_>) -> Result<(), Error> {
//!         let Input::Audio(a) = input else { return Err(Error::invalid_input("Blocks takes audio")) };
//!         let Samples::F32(x) = a.samples else { return Err(Error::invalid_input("Blocks takes f32")) };
//!         if a.channels != 1 {
//!             return Err(Error::invalid_input("Blocks takes mono audio"));
//!         }
//!         self.rate = a.sample_rate;
//!         self.held.extend_from_slice(x);
//!         while self.held.len() >= self.block {
//!             let rest = self.held.split_off(self.block);
//!             let block = std::mem::replace(&mut self.held, rest);
//!             out.audio(0, Audio { samples: Samples::F32(&block), channels: 1, sample_rate: self.rate })?;
//!         }
//!         Ok(())
//!     }
//!     fn flush(&mut self, out: &mut Output<'_>) -> Result<(), Error> {
//!         if self.held.is_empty() {
//!             return Ok(());
//!         }
//!         let tail = std::mem::take(&mut self.held);
//!         out.audio(0, Audio { samples: Samples::F32(&tail), channels: 1, sample_rate: self.rate })
//!     }
//!     fn reset(&mut self) -> Result<(), Error> {
//!         self.held.clear(); // everything a stream left behind
//!         self.rate = 0;
//!         Ok(())
//!     }
//! }
//!
//! remotemedia_plugin::export_plugin!(
//!     name: "blocks", version: "1.0.0", license: "MIT", description: "re-blocking", nodes: [Blocks],
//! );
//! ```
//!
//! [`Params`] is the manifest's `params` object (`serde_json`); [`param_f64`] reads
//! a number with a default, [`deny_unknown`] refuses keys the node does not know, and
//! an [`Error`] is permanent ([`Error::new`]), retryable ([`Error::transient`]) or a
//! refusal of the input that left the state unchanged ([`Error::invalid_input`]).
//! [`NodeInfo`] sets the type's name, description, params schema, output ports
//! ([`NodeInfo::outputs`]) and the data kinds it takes and emits ([`NodeInfo::kinds`]).
//!
//! The crate type of a plugin is `cdylib`.

pub mod abi;
mod data;
mod export;
mod names;

pub use data::{Audio, Input, Output, Samples};
pub use export::{Plugin, PluginSlot, entry, get_extension, log, node_type, unload};

/// A node's params: the manifest's `params` object.
pub type Params = serde_json::Map<String, serde_json::Value>;

/// A failure reported to the runtime.
#[derive(Debug, Clone)]
pub struct Error {
    pub message: String,
    pub kind: ErrorKind,
}

/// What the runtime does with an [`Error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// This call failed (`RM_STATUS_NODE`).
    Permanent,
    /// Retrying the same call may succeed (`RM_STATUS_TRANSIENT`).
    Transient,
    /// `process` refused its input and left the node's state unchanged
    /// (`RM_STATUS_INVALID_ARGUMENT`).
    InvalidInput,
}

impl Error {
    /// A permanent failure.
    pub fn new(message: impl Into<String>) -> Self {
        Self { message: message.into(), kind: ErrorKind::Permanent }
    }
    /// A failure worth retrying.
    pub fn transient(message: impl Into<String>) -> Self {
        Self { message: message.into(), kind: ErrorKind::Transient }
    }
    /// Input the node refuses (state unchanged).
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self { message: message.into(), kind: ErrorKind::InvalidInput }
    }
}

/// Static description of a node type.
#[derive(Debug, Clone)]
pub struct NodeInfo {
    pub node_type: String,
    pub description: String,
    /// JSON Schema of the params.
    pub params_schema: String,
    /// Output port names; the first is the default port.
    pub outputs: Vec<String>,
    /// `abi::RM_KIND_*` bits; 0 means any.
    pub input_kinds: u32,
    pub output_kinds: u32,
    /// Declares that the node should run in a process of its own
    /// (`abi::RM_NODE_PREFERS_ISOLATION`); the manifest decides.
    pub prefers_isolation: bool,
    /// What the ports carry, as JSON (docs/PLUGINS.md, "Caps"); `None`: undeclared.
    pub caps: Option<String>,
}

impl NodeInfo {
    /// A node type with one output port "out", accepting and emitting audio, params
    /// described as any object.
    pub fn new(node_type: &str, description: &str) -> Self {
        Self {
            node_type: node_type.into(),
            description: description.into(),
            params_schema: r#"{"type":"object"}"#.into(),
            outputs: vec!["out".into()],
            input_kinds: abi::RM_KIND_AUDIO,
            output_kinds: abi::RM_KIND_AUDIO,
            prefers_isolation: false,
            caps: None,
        }
    }
    /// Sets the params JSON Schema.
    pub fn params_schema(mut self, schema: &str) -> Self {
        self.params_schema = schema.into();
        self
    }
    /// Sets the output port names.
    pub fn outputs(mut self, ports: &[&str]) -> Self {
        self.outputs = ports.iter().map(|p| p.to_string()).collect();
        self
    }
    /// Sets the kinds accepted and emitted (`abi::RM_KIND_*` bits).
    pub fn kinds(mut self, input_kinds: u32, output_kinds: u32) -> Self {
        self.input_kinds = input_kinds;
        self.output_kinds = output_kinds;
        self
    }
    /// Declares that the node should run in a process of its own; the manifest decides.
    pub fn prefers_isolation(mut self) -> Self {
        self.prefers_isolation = true;
        self
    }
    /// Declares what the ports carry (JSON, docs/PLUGINS.md "Caps"), so the runtime
    /// inserts converters where a pipeline's audio does not fit.
    pub fn caps(mut self, caps: &str) -> Self {
        self.caps = Some(caps.into());
        self
    }
}

/// A node type implemented in Rust. One instance is called by one thread at a time.
pub trait Node: Send + Sized + 'static {
    /// The node type's name, description, params schema, ports and kinds.
    fn info() -> NodeInfo;
    /// Creates an instance; a bad param should be named in the error.
    fn create(params: &Params) -> Result<Self, Error>;
    /// Handles one item, emitting any number of items.
    fn process(&mut self, input: Input<'_>, out: &mut Output<'_>) -> Result<(), Error>;
    /// Handles one item that arrived at input port `port` (in the order the caps'
    /// `"inputs"` list the ports). A node type with one input port need not implement
    /// it: the item goes to [`Node::process`].
    fn process_port(&mut self, port: usize, input: Input<'_>, out: &mut Output<'_>) -> Result<(), Error> {
        let _ = port;
        self.process(input, out)
    }
    /// Called once per stream, after a reset and before the first item, with the caps
    /// negotiated for each input port as JSON text (an array, `null` for fields not
    /// known before data flows): size state here, or refuse with
    /// [`Error::invalid_input`].
    fn configure(&mut self, _caps_json: &str) -> Result<(), Error> {
        Ok(())
    }
    /// End of stream: emit what is held. The runtime calls [`Node::reset`] right after.
    fn flush(&mut self, _out: &mut Output<'_>) -> Result<(), Error> {
        Ok(())
    }
    /// Forget all stream state, as if newly created: called before every one-shot run
    /// and after every flush (not after an error, nor between retries). A node that
    /// keeps state across calls must implement it.
    fn reset(&mut self) -> Result<(), Error> {
        Ok(())
    }
}

/// Reads an optional number param, naming it in the error when it is not a number.
pub fn param_f64(params: &Params, name: &str, default: f64) -> Result<f64, Error> {
    match params.get(name) {
        None => Ok(default),
        Some(v) => v.as_f64().ok_or_else(|| Error::new(format!("params.{name}: expected a number, got {v}"))),
    }
}

/// Fails naming the first param not in `known`.
pub fn deny_unknown(params: &Params, known: &[&str]) -> Result<(), Error> {
    match params.keys().find(|k| !known.contains(&k.as_str())) {
        Some(k) => Err(Error::new(format!("params.{k}: unknown param (known: {})", known.join(", ")))),
        None => Ok(()),
    }
}

/// Exports a plugin: its entry point `remotemedia_plugin_entry`, built from the name,
/// version, license, description and the [`Node`] types listed.
#[macro_export]
macro_rules! export_plugin {
    (name: $name:expr, version: $version:expr, license: $license:expr, description: $description:expr, nodes: [$($node:ty),+ $(,)?] $(,)?) => {
        /// The plugin's entry point (see `RmPluginEntryFn`).
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn remotemedia_plugin_entry(
            host: *const $crate::abi::RmHostServices,
        ) -> *const $crate::abi::RmPluginDescriptor {
            static PLUGIN: $crate::PluginSlot = $crate::PluginSlot::new(None);
            unsafe extern "C" fn unload() {
                $crate::unload(&PLUGIN)
            }
            unsafe extern "C" fn get_extension(
                node_type: *const ::std::ffi::c_char,
                id: *const ::std::ffi::c_char,
            ) -> *const ::std::ffi::c_void {
                unsafe { $crate::get_extension(&PLUGIN, node_type, id) }
            }
            $crate::entry(host, &PLUGIN, unload, get_extension, || {
                $crate::Plugin::new($name, $version, $license, $description, vec![$($crate::node_type::<$node>()),+])
            })
        }
    };
}

/// `text` as a C string. The one rule for an interior NUL byte, used by the runtime and
/// this kit alike: it is written as the two characters `\0`, so no text is lost and no
/// string is cut short.
pub fn c_string(text: &str) -> std::ffi::CString {
    // Cannot fail: no NUL is left.
    std::ffi::CString::new(text.replace('\0', "\\0")).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_interior_nul_is_escaped_not_lost() {
        assert_eq!(super::c_string("a\0b").to_str().unwrap(), "a\\0b");
        assert_eq!(super::c_string("plain").to_str().unwrap(), "plain");
    }
}
