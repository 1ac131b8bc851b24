//! The node interface, node specs and the registry keyed by `node_type`.

pub mod audio;
pub mod basic;
mod fault;
pub(crate) mod foreign;
mod params;
mod registry;

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::data::Data;
use crate::error::NodeFailure;
use crate::plugin::PluginMeta;

pub use params::{ParamError, parse_params};
pub use registry::Registry;

/// A processing node. One instance belongs to one pipeline and is called from one
/// thread at a time.
pub trait Node: Send {
    /// Handles one input item, emitting any number of output items.
    fn process(&mut self, input: &Data, out: &mut Emitter) -> Result<(), NodeFailure>;
    /// End of stream: emit whatever is still held (filter tails, partial frames).
    fn flush(&mut self, _out: &mut Emitter) -> Result<(), NodeFailure> {
        Ok(())
    }
    /// Forget all stream state, as if newly created.
    fn reset(&mut self) -> Result<(), NodeFailure> {
        Ok(())
    }
    /// Worst-case lag of output behind input, in frames at the output rate (0 when the
    /// node emits as soon as it receives, or before it has seen its first chunk).
    fn latency(&self) -> usize {
        0
    }
}

/// Collects a node's outputs, each tagged with its output port index.
#[derive(Default)]
pub struct Emitter {
    items: Vec<(usize, Data)>,
}

impl Emitter {
    /// Emits on the default (first) output port.
    pub fn emit(&mut self, data: Data) {
        self.items.push((0, data));
    }
    /// Emits on output port `port` (index into the spec's `outputs`).
    pub fn emit_to(&mut self, port: usize, data: Data) {
        self.items.push((port, data));
    }
    /// Number of items emitted so far.
    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }
    /// The items emitted after the first `from`.
    pub(crate) fn since(&self, from: usize) -> impl Iterator<Item = &Data> {
        self.items[from..].iter().map(|(_, d)| d)
    }
    /// Forgets the items emitted after the first `len` (a failed call's partial output).
    pub(crate) fn truncate(&mut self, len: usize) {
        self.items.truncate(len);
    }
    /// Takes the emitted items, leaving the emitter empty.
    pub fn take(&mut self) -> Vec<(usize, Data)> {
        std::mem::take(&mut self.items)
    }
    /// Returns an emptied item vector so its capacity is reused.
    pub(crate) fn give_back(&mut self, mut items: Vec<(usize, Data)>) {
        items.clear();
        self.items = items;
    }
}

/// Which side implements a node type.
#[derive(Debug, Clone)]
pub enum Implementation {
    /// Compiled into this library.
    Native,
    /// Supplied by the embedding host at run time (Python nodes through the C ABI).
    Host,
    /// Loaded from a plugin library; runs natively like a built-in node.
    Plugin(Arc<PluginMeta>),
}

impl Implementation {
    /// `"native"` or `"python"`: the vocabulary of `runtime_hint` (plugins are native).
    pub fn as_str(&self) -> &'static str {
        match self {
            Implementation::Native | Implementation::Plugin(_) => "native",
            Implementation::Host => "python",
        }
    }

    /// The plugin providing the node type, if any.
    pub fn plugin(&self) -> Option<&Arc<PluginMeta>> {
        match self {
            Implementation::Plugin(p) => Some(p),
            _ => None,
        }
    }
}

/// Creates a node instance from its params, or says which param is wrong.
pub type CreateFn = dyn Fn(&Map<String, Value>) -> Result<Box<dyn Node>, ParamError> + Send + Sync;

/// Everything the runtime knows about a node type.
pub struct NodeSpec {
    pub node_type: String,
    pub description: String,
    /// JSON Schema of `params`.
    pub params_schema: Value,
    /// Output port names; the first is the default port.
    pub outputs: Vec<String>,
    pub implementation: Implementation,
    pub create: Arc<CreateFn>,
}

impl NodeSpec {
    /// Index of the output port called `name`.
    pub fn port_index(&self, name: &str) -> Option<usize> {
        self.outputs.iter().position(|p| p == name)
    }

    /// A JSON description for listings (`remotemedia nodes`).
    pub fn describe(&self) -> Value {
        let mut d = serde_json::json!({
            "node_type": self.node_type,
            "description": self.description,
            "runtime": self.implementation.as_str(),
            "outputs": self.outputs,
            "params": self.params_schema,
        });
        if let Some(p) = self.implementation.plugin() {
            d["plugin"] = p.name.clone().into();
        }
        d
    }
}
