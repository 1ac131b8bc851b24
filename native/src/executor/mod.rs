//! Builds a runnable pipeline from a manifest and runs it on tokio.
//!
//! A run feeds the input to every source node, then visits the graph in waves: a wave
//! holds the nodes whose predecessors are all done, and its nodes run concurrently
//! (as futures joined on the calling thread). Edges carry [`Data`] by reference
//! count, so fan-out never copies samples.

mod build;
mod call;
pub mod graph;
mod group;
mod latency;
mod plan;
mod policy;
mod session;
mod visit;

use std::sync::Arc;
use std::time::Instant;

use crate::caps::Caps;
use crate::data::Data;
use crate::error::{Error, Operation, Result};
use crate::manifest::Manifest;
use crate::metrics::{self, NodeLabel, PipelineMetrics};
use crate::nodes::{Implementation, NodeSpec, Registry};
use remotemedia_plugin::abi::SampleFormat;

use call::{Slot, call};

pub use graph::{Edge, PipelineGraph};
pub use group::{Group, GroupStats, MAX_WORKERS, SessionId};
pub use plan::{Inserted, Plan};
pub use session::{DEFAULT_CAPACITY, MAX_CAPACITY, MAX_TIMEOUT_MS, Overflow, Session, SessionStats};

/// One output item of a run: which sink node and port emitted it.
#[derive(Debug)]
pub struct Output {
    pub node: usize,
    pub port: usize,
    pub data: Data,
}

/// A validated, instantiated pipeline, ready to run.
pub struct Pipeline {
    manifest: Manifest,
    /// The graph run: the manifest's nodes, then the converters the plan inserted.
    graph: PipelineGraph,
    /// The manifest's graph, which plans start from.
    user_graph: PipelineGraph,
    /// How many nodes the manifest declares (they come first, in its order).
    users: usize,
    /// Node types, for the converters a new plan inserts.
    registry: Registry,
    plan: Plan,
    /// The pipeline inputs' names and declared caps, in the manifest's order.
    inputs: Vec<(String, Caps)>,
    /// Per input, the caps the plan was made for, when all are known: a chunk with
    /// these needs no new plan.
    planned_for: Vec<Option<(SampleFormat, u16, u32)>>,
    /// Pushed since the stream began: a new plan may not change the converters of an
    /// input already pushed (`seen`).
    streaming: bool,
    seen: Vec<bool>,
    /// Each node's input port names (the plan's nodes).
    ports: Vec<Vec<String>>,
    /// The current step's inputs (kept for its capacity).
    delivery: Vec<(usize, Data)>,
    /// When each recent push's media time arrived, for sink latency.
    clock: metrics::InputClock,
    /// Push→output latency of each sink output, by result key (the plan's order).
    sinks: Vec<(String, metrics::SinkMetrics)>,
    /// `sink_of[node][port]`: the index in `sinks` of that output, if it is a sink.
    sink_of: Vec<Vec<Option<usize>>>,
    specs: Vec<Arc<NodeSpec>>,
    slots: Vec<Slot>,
    /// `routes[node][port]` lists the nodes (and their input ports) fed by that output port.
    routes: Vec<Vec<Vec<(usize, usize)>>>,
    waves: Vec<Vec<usize>>,
    metrics: PipelineMetrics,
    /// Whether calls are timed and counted (on by default).
    metrics_on: bool,
    /// Every node was reset (or just made) and has taken nothing since: a run need not
    /// reset them first.
    fresh: bool,
    /// Heap attributed to the executor's own work during runs and pushes.
    memory: Box<crate::alloc::Memory>,
}

impl Pipeline {
    /// The manifest this pipeline was built from.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }
    /// The negotiated plan as JSON (see [`Plan::to_json`]).
    pub fn plan_json(&self) -> serde_json::Value {
        self.plan.to_json(self.graph.ids(), &self.specs, &self.input_names(), &self.ports)
    }
    /// The pipeline inputs' names, in order (`["input"]` without named inputs).
    pub fn input_names(&self) -> Vec<String> {
        self.inputs.iter().map(|(name, _)| name.clone()).collect()
    }
    /// Index of the pipeline input called `name`.
    pub fn input_index(&self, name: &str) -> Option<usize> {
        self.inputs.iter().position(|(n, _)| n == name)
    }
    /// How many nodes the manifest declares; inserted converters follow them.
    pub fn declared_nodes(&self) -> usize {
        self.users
    }
    /// The graph run (the manifest's nodes, then inserted converters).
    pub fn graph(&self) -> &PipelineGraph {
        &self.graph
    }
    /// The resolved spec of node `index`.
    pub fn spec(&self, index: usize) -> &NodeSpec {
        &self.specs[index]
    }
    /// Node `index`'s output port names (default first).
    pub fn output_ports(&self, index: usize) -> &[String] {
        &self.plan.out_ports[index]
    }
    /// Node `index`'s current latency (see [`Node::latency`]).
    pub fn latency(&self, index: usize) -> usize {
        self.slots[index].node.latency()
    }
    /// `"native"` when every node is native, else `"mixed"`.
    pub fn runtime(&self) -> &'static str {
        if self.specs.iter().all(|s| !matches!(s.implementation, Implementation::Host)) { "native" } else { "mixed" }
    }

    /// One-shot run: every node starts fresh, takes `input` through the graph, and is
    /// flushed; returns the items emitted by sink nodes in emission order. For a
    /// pipeline with one input; see [`Pipeline::run_inputs`].
    ///
    /// Borrowed input samples are never kept past this call: every node has finished
    /// when it returns, and outputs that still view the input are copied.
    pub async fn run(&mut self, input: Data) -> Result<Vec<Output>> {
        self.run_viewing(input).await.map(owned)
    }

    /// [`Pipeline::run`], whose outputs may still view borrowed input samples (within
    /// the promise of [`crate::data::SampleBuf::borrowed`]): for a caller that reads
    /// them before that memory goes, it saves their copy.
    pub async fn run_viewing(&mut self, input: Data) -> Result<Vec<Output>> {
        let only = self.only_input()?;
        self.run_inputs_viewing(std::iter::once((only, input))).await
    }

    /// One-shot run of several pipeline inputs at once (index and item each; any
    /// subset of the inputs, each at most once), as [`Pipeline::run`].
    pub async fn run_inputs(&mut self, inputs: impl IntoIterator<Item = (usize, Data)>) -> Result<Vec<Output>> {
        self.run_inputs_viewing(inputs).await.map(owned)
    }

    /// [`Pipeline::run_inputs`] as [`Pipeline::run_viewing`] is to `run`.
    pub async fn run_inputs_viewing(&mut self, inputs: impl IntoIterator<Item = (usize, Data)>) -> Result<Vec<Output>> {
        let started = Instant::now();
        self.metrics.runs += 1;
        let result = match self.take_inputs(inputs) {
            Ok(inputs) => {
                let result = self.run_fresh(&inputs, &mut self.metrics_on.then_some(started)).await;
                self.give_back(inputs);
                result
            }
            Err(e) => Err(e),
        };
        self.metrics.wall += started.elapsed();
        result
    }

    async fn run_fresh(&mut self, inputs: &[(usize, Data)], clock: &mut Option<Instant>) -> Result<Vec<Output>> {
        self.streaming = false;
        self.plan_inputs(inputs)?;
        if !self.fresh {
            self.reset()?;
            *clock = clock.map(|_| Instant::now());
        }
        self.configure()?;
        let mut outputs = self.step(inputs, false, clock, None).await?;
        outputs.extend(self.end_stream(clock).await?);
        Ok(outputs)
    }

    /// The index of the one pipeline input, for calls that name none.
    fn only_input(&self) -> Result<usize> {
        match self.inputs.len() {
            1 => Ok(0),
            _ => Err(Error::InvalidArgument(format!(
                "this pipeline has the inputs {}: give each chunk the name of its input",
                self.input_names().join(", ")
            ))),
        }
    }

    /// `inputs` checked (known indices, each once, at least one) into the reused buffer.
    fn take_inputs(&mut self, inputs: impl IntoIterator<Item = (usize, Data)>) -> Result<Vec<(usize, Data)>> {
        let mut taken = std::mem::take(&mut self.delivery);
        taken.extend(inputs);
        let problem = if taken.is_empty() {
            Some("no input was given".to_string())
        } else if let Some((i, _)) = taken.iter().find(|(i, _)| *i >= self.inputs.len()) {
            Some(format!("there is no input {i} (the pipeline has {}: {})", self.inputs.len(), self.input_names().join(", ")))
        } else {
            (1..taken.len())
                .find(|&k| taken[..k].iter().any(|(i, _)| *i == taken[k].0))
                .map(|k| format!("input '{}' is given twice", self.inputs[taken[k].0].0))
        };
        match problem {
            None => Ok(taken),
            Some(why) => {
                self.give_back(taken);
                Err(Error::InvalidArgument(why))
            }
        }
    }

    /// Returns the step's input buffer, emptied, for the next call.
    fn give_back(&mut self, mut inputs: Vec<(usize, Data)>) {
        inputs.clear();
        self.delivery = inputs;
    }

    /// Flushes every node in order, then resets every node (whether the flush worked or
    /// not), so the next stream starts fresh: nodes need not clear state in `flush`.
    /// `clock` as in `step`.
    async fn end_stream(&mut self, clock: &mut Option<Instant>) -> Result<Vec<Output>> {
        self.streaming = false;
        self.seen.iter_mut().for_each(|s| *s = false);
        let tails = self.step(&[], true, clock, None).await;
        let reset = self.reset();
        let tails = tails?;
        reset?;
        Ok(tails)
    }

    /// Turns timing and counting of node calls on or off (on by default; the criterion
    /// benchmark measures both). Heap attribution stays on: it is the allocator's.
    pub fn set_metrics(&mut self, on: bool) {
        self.metrics_on = on;
    }

    /// Metrics of this pipeline as JSON (`docs/metrics.schema.json`).
    pub fn metrics_json(&self) -> serde_json::Value {
        let name = self.manifest.metadata.get("name").and_then(|v| v.as_str()).unwrap_or_default();
        let nodes: Vec<_> = (0..self.slots.len())
            .map(|i| {
                let label = NodeLabel {
                    id: &self.graph.ids()[i],
                    node_type: &self.specs[i].node_type,
                    runtime: self.specs[i].implementation.as_str(),
                    breaker: self.slots[i].breaker.state().as_str(),
                };
                (label, &self.slots[i].metrics, &*self.slots[i].memory)
            })
            .collect();
        let sinks: Vec<(&str, &metrics::SinkMetrics)> = self.sinks.iter().map(|(k, m)| (k.as_str(), m)).collect();
        metrics::to_json(name, &self.metrics, &self.memory, &nodes, &sinks)
    }

    /// Every node forgets its stream state.
    pub fn reset(&mut self) -> Result<()> {
        self.fresh = false;
        self.clock.restart();
        self.sinks.iter_mut().for_each(|(_, m)| m.restart());
        let ids = self.graph.ids();
        for (slot, id) in self.slots.iter_mut().zip(ids) {
            slot.inbox.clear();
            slot.configured = None;
            call(slot, id, Operation::Reset, |n, _| n.reset())?;
        }
        self.fresh = true;
        Ok(())
    }

    /// Hands every node not yet configured in this stream the caps the plan gives its
    /// input ports ([`Node::configure`]): once per stream, before its first item.
    fn configure(&mut self) -> Result<()> {
        let ids = self.graph.ids();
        for ((slot, id), caps) in self.slots.iter_mut().zip(ids).zip(&self.plan.node_in) {
            if slot.configured.is_none() {
                call(slot, id, Operation::Configure, |n, _| n.configure(caps))?;
                slot.configured = Some(caps.clone()); // a reference count, not a copy
            }
        }
        Ok(())
    }

    /// Re-plans when an input's caps are not those planned for.
    fn plan_inputs(&mut self, inputs: &[(usize, Data)]) -> Result<()> {
        let stale = inputs.iter().any(|(i, input)| match input {
            Data::Audio(a) => Some((a.samples().format(), a.channels(), a.sample_rate())) != self.planned_for[*i],
            Data::Json(_) => true,
        });
        if stale { self.replan(inputs) } else { Ok(()) }
    }

    /// Streams one chunk through the graph without ending the stream. For a pipeline
    /// with one input; see [`Pipeline::push_inputs`].
    pub async fn push(&mut self, input: Data) -> Result<Vec<Output>> {
        match self.only_input() {
            Ok(only) => self.push_inputs(std::iter::once((only, input))).await,
            Err(e) => {
                self.metrics.pushes += 1;
                Err(e)
            }
        }
    }

    /// Streams chunks of several pipeline inputs (index and item each) through the
    /// graph in one step, without ending the stream.
    pub async fn push_inputs(&mut self, inputs: impl IntoIterator<Item = (usize, Data)>) -> Result<Vec<Output>> {
        self.push_batched(inputs, None).await
    }

    /// [`Pipeline::push_inputs`], batchable nodes handing their inference to `batch`.
    async fn push_batched(&mut self, inputs: impl IntoIterator<Item = (usize, Data)>, batch: Option<&group::Batch>) -> Result<Vec<Output>> {
        let started = Instant::now();
        self.metrics.pushes += 1;
        let inputs = match self.take_inputs(inputs) {
            Ok(inputs) => inputs,
            Err(e) => {
                self.metrics.wall += started.elapsed();
                return Err(e);
            }
        };
        let result = match self.plan_inputs(&inputs) {
            Err(e) => Err(e),
            Ok(()) => {
                self.streaming = true;
                inputs.iter().for_each(|(i, _)| self.seen[*i] = true);
                match self.configure() {
                    Ok(()) => self.step(&inputs, false, &mut self.metrics_on.then_some(started), batch).await.map(owned),
                    Err(e) => Err(e),
                }
            }
        };
        self.give_back(inputs);
        self.metrics.wall += started.elapsed();
        result
    }

    /// Ends the stream: flushes every node in order, returning the tails, then resets
    /// every node.
    pub async fn finish(&mut self) -> Result<Vec<Output>> {
        let started = Instant::now();
        let result = self.end_stream(&mut self.metrics_on.then_some(started)).await.map(owned);
        self.metrics.wall += started.elapsed();
        result
    }
}

/// `outputs` with none viewing borrowed samples (those are copied).
pub fn owned(outputs: Vec<Output>) -> Vec<Output> {
    outputs.into_iter().map(|o| Output { data: o.data.into_owned(), ..o }).collect()
}

/// Drives `work` to completion on the calling thread, with `tokio`'s timers available
/// (they are driven by the runtime's worker thread). Fails when called from inside an
/// async runtime, where blocking would stall it.
pub fn block_on<T>(tokio: &tokio::runtime::Handle, work: impl Future<Output = Result<T>>) -> Result<T> {
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(Error::InvalidArgument("a blocking run cannot be called from inside an async runtime".into()));
    }
    let _context = tokio.enter();
    futures::executor::block_on(work)
}

#[cfg(test)]
mod tests;
