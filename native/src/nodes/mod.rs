//! The node interface, node specs and the registry keyed by `node_type`.

mod audio;
mod basic;
mod fault;
pub(crate) mod foreign;
mod params;
mod registry;
mod schema;
mod spec;

use crate::budget;
use crate::caps::Caps;
use crate::data::Data;
use crate::error::NodeFailure;
use crate::model::batch::Inference;

pub(crate) use audio::{NATIVE_ONLY, vad_frames};
pub use fault::allow_process_faults;
pub use params::{ParamError, parse_params};
pub use registry::Registry;
pub use schema::ParamsSchema;
pub(crate) use schema::declared_types;
pub use spec::{CreateFn, Implementation, LatencyFn, NodeSpec, PluginMeta, no_latency};

/// A processing node. One instance belongs to one pipeline and is called from one
/// thread at a time.
pub trait Node: Send {
    /// Handles one input item, emitting any number of output items.
    fn process(&mut self, input: &Data, out: &mut Emitter) -> Result<(), NodeFailure>;
    /// Handles one input item that arrived at input port `port` (an index into the
    /// node's input ports, in declaration order). A node with one input port need not
    /// implement it: the item goes to [`Node::process`].
    fn process_port(&mut self, port: usize, input: &Data, out: &mut Emitter) -> Result<(), NodeFailure> {
        debug_assert_eq!(port, 0, "a node with several input ports implements process_port");
        self.process(input, out)
    }
    /// Called once per stream (a run, or a session's pushes up to a flush), after a
    /// reset and before the first item, with the caps negotiated for each input port
    /// (fields not known before data flows are `None`). A node sizes its state here
    /// (gst-plugins-rs's `set_caps`) and refuses caps it cannot take
    /// (`NodeFailure::invalid_input`).
    fn configure(&mut self, _inputs: &[Caps]) -> Result<(), NodeFailure> {
        Ok(())
    }
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
    /// The node as one whose model inference can run batched with other sessions'
    /// instances of it (in a session group), when it is one now.
    fn as_batchable(&mut self) -> Option<&mut dyn Batchable> {
        None
    }
}

/// A node whose `process` splits in two around its model inference, so a session
/// group can run the inference of many sessions' instances in one batch:
/// `process(input)` is `stage(input)`, then the inference run (alone or batched), then
/// `complete` with it. Neither should fail transiently: a batched item is not retried.
pub trait Batchable {
    /// Takes `input` (from input port `port`) and returns the inference it needs, with
    /// the node's model state moved into it (`None`: it needs none).
    fn stage(&mut self, port: usize, input: &Data) -> Result<Option<Inference>, NodeFailure>;
    /// Finishes the staged input with its inference run (the state moves back),
    /// emitting what `process` would have.
    fn complete(&mut self, inference: Option<Inference>, out: &mut Emitter) -> Result<(), NodeFailure>;
}

/// Collects a node's outputs, each tagged with its output port index. It holds at
/// most [`budget::MAX_ITEMS_PER_STEP`] items; later ones are dropped and the call that
/// emitted them fails (see [`Emitter::check_budget`]).
#[derive(Default)]
pub struct Emitter {
    items: Vec<(usize, Data)>,
    /// Set when an item was dropped for the budget.
    over_budget: bool,
}

impl Emitter {
    /// Emits on the default (first) output port.
    pub fn emit(&mut self, data: Data) {
        self.emit_to(0, data);
    }
    /// Emits on output port `port` (index into the spec's `outputs`).
    pub fn emit_to(&mut self, port: usize, data: Data) {
        if self.items.len() < budget::MAX_ITEMS_PER_STEP {
            self.items.push((port, data));
        } else {
            self.over_budget = true;
        }
    }
    /// Fails (once) if items were dropped for the budget since the last check.
    pub(crate) fn check_budget(&mut self) -> Result<(), NodeFailure> {
        if std::mem::take(&mut self.over_budget) {
            return Err(NodeFailure::invalid_input(format!(
                "emitted more than {} items in one step (the item budget)",
                budget::MAX_ITEMS_PER_STEP
            )));
        }
        Ok(())
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
        self.over_budget = false;
    }
    /// Takes the emitted items, leaving the emitter empty.
    pub fn take(&mut self) -> Vec<(usize, Data)> {
        self.over_budget = false;
        std::mem::take(&mut self.items)
    }
    /// Returns an emptied item vector so its capacity is reused.
    pub(crate) fn give_back(&mut self, mut items: Vec<(usize, Data)>) {
        items.clear();
        self.items = items;
    }
}
