//! The node interface, node specs and the registry keyed by `node_type`.

mod audio;
mod basic;
mod fault;
pub(crate) mod foreign;
mod params;
mod registry;
mod spec;

use crate::data::Data;
use crate::error::NodeFailure;

pub use params::{ParamError, parse_params};
pub use registry::Registry;
pub use spec::{CreateFn, Implementation, NodeSpec, PluginMeta};

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
