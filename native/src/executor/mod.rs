//! Builds a runnable pipeline from a manifest and runs it on tokio.
//!
//! A run feeds the input to every source node, then visits the graph in waves: a wave
//! holds the nodes whose predecessors are all done, and its nodes run concurrently
//! (as futures joined on the calling thread). Edges carry [`Data`] by reference
//! count, so fan-out never copies samples.

pub mod graph;
mod policy;
mod session;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Instant;

use futures::future::join_all;

use crate::data::Data;
use crate::error::{Error, NodeFailure, Operation, Result, panic_message};
use crate::manifest::{Manifest, OnOpen};
use crate::metrics::{self, NodeLabel, NodeMetrics, PipelineMetrics};
use crate::nodes::{Emitter, Implementation, Node, NodeSpec, Registry};

pub use graph::{Edge, PipelineGraph};
pub use session::{Overflow, Session, SessionStats};

/// One output item of a run: which sink node and port emitted it.
#[derive(Debug)]
pub struct Output {
    pub node: usize,
    pub port: usize,
    pub data: Data,
}

/// A node instance with the bookkeeping the executor needs.
struct Slot {
    node: Box<dyn Node>,
    /// Set after a panic: the instance may be inconsistent and is never called again.
    poisoned: bool,
    /// Items waiting to be processed.
    inbox: Vec<Data>,
    emitter: Emitter,
    metrics: NodeMetrics,
    /// Heap attributed to this node's calls (boxed: the allocator holds its address).
    memory: Box<crate::alloc::Memory>,
    retry: crate::manifest::RetryPolicy,
    breaker: policy::Breaker,
    /// Deadline of one call; such calls run on a blocking thread.
    timeout: Option<std::time::Duration>,
    /// Jitter state for retry backoff.
    rng: u64,
}

/// A validated, instantiated pipeline, ready to run.
pub struct Pipeline {
    manifest: Manifest,
    graph: PipelineGraph,
    specs: Vec<Arc<NodeSpec>>,
    slots: Vec<Slot>,
    /// `routes[node][port]` lists the nodes fed by that output port.
    routes: Vec<Vec<Vec<usize>>>,
    waves: Vec<Vec<usize>>,
    metrics: PipelineMetrics,
    /// Whether calls are timed and counted (on by default).
    metrics_on: bool,
    /// Heap attributed to the executor's own work during runs and pushes.
    memory: Box<crate::alloc::Memory>,
}

impl Pipeline {
    /// Validates `manifest` against `registry` and creates every node.
    pub fn build(manifest: Manifest, registry: &Registry) -> Result<Self> {
        let graph = PipelineGraph::from_manifest(&manifest)?;
        let mut specs = Vec::with_capacity(manifest.nodes.len());
        for (i, decl) in manifest.nodes.iter().enumerate() {
            let spec = registry
                .resolve(&decl.node_type, decl.runtime_hint)
                .map_err(|m| Error::manifest(format!("nodes[{i}].node_type"), format!("{m} (node '{}')", decl.id)))?;
            specs.push(spec);
        }
        let mut routes: Vec<Vec<Vec<usize>>> = specs.iter().map(|s| vec![Vec::new(); s.outputs.len()]).collect();
        // Edges are in connection order, so edge k is connections[k].
        for (k, e) in graph.edges().iter().enumerate() {
            let spec = &specs[e.from];
            let port = match &e.port {
                None => 0,
                Some(name) => spec.port_index(name).ok_or_else(|| {
                    Error::manifest(
                        format!("connections[{k}].from"),
                        format!(
                            "node '{}' ({}) has no output port '{name}'; ports: {}",
                            graph.ids()[e.from],
                            spec.node_type,
                            spec.outputs.join(", ")
                        ),
                    )
                })?,
            };
            routes[e.from][port].push(e.to);
        }
        let mut slots = Vec::with_capacity(specs.len());
        for (i, decl) in manifest.nodes.iter().enumerate() {
            let node = (specs[i].create)(&decl.params).map_err(|p| {
                let path = if p.param.is_empty() { format!("nodes[{i}].params") } else { format!("nodes[{i}].params.{}", p.param) };
                let message = format!("{} (node '{}', {})", p.message, decl.id, decl.node_type);
                match specs[i].implementation.plugin() {
                    Some(plugin) => crate::plugin::error(&plugin.file, format!("create failed at {path}: {message}")),
                    None => Error::manifest(path, message),
                }
            })?;
            slots.push(Slot {
                node,
                poisoned: false,
                inbox: Vec::new(),
                emitter: Emitter::default(),
                metrics: NodeMetrics::default(),
                memory: Box::default(),
                retry: decl.retry.unwrap_or_default(),
                breaker: policy::Breaker::new(decl.circuit_breaker.unwrap_or_default()),
                timeout: decl.timeout_ms.map(std::time::Duration::from_millis),
                rng: 0x9e37_79b9_7f4a_7c15 ^ (i as u64 + 1),
            });
        }
        let waves = waves(&graph);
        Ok(Self {
            manifest,
            graph,
            specs,
            slots,
            routes,
            waves,
            metrics: PipelineMetrics::default(),
            metrics_on: true,
            memory: Box::default(),
        })
    }

    /// The manifest this pipeline was built from.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }
    /// The graph.
    pub fn graph(&self) -> &PipelineGraph {
        &self.graph
    }
    /// The resolved spec of node `index`.
    pub fn spec(&self, index: usize) -> &NodeSpec {
        &self.specs[index]
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
    /// flushed; returns the items emitted by sink nodes in emission order.
    ///
    /// Borrowed input samples are never kept past this call: every node has finished
    /// when it returns, and outputs that still view the input are copied.
    pub async fn run(&mut self, input: Data) -> Result<Vec<Output>> {
        let started = Instant::now();
        self.metrics.runs += 1;
        let result = self.run_fresh(input).await;
        self.metrics.wall += started.elapsed();
        result
    }

    async fn run_fresh(&mut self, input: Data) -> Result<Vec<Output>> {
        self.reset()?;
        let mut outputs = self.step(Some(input), false).await?;
        outputs.extend(self.step(None, true).await?);
        Ok(outputs)
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
                    breaker: self.slots[i].breaker.name(),
                };
                (label, &self.slots[i].metrics, &*self.slots[i].memory)
            })
            .collect();
        metrics::to_json(name, &self.metrics, &self.memory, &nodes)
    }

    /// Every node forgets its stream state.
    pub fn reset(&mut self) -> Result<()> {
        let ids = self.graph.ids();
        for (slot, id) in self.slots.iter_mut().zip(ids) {
            slot.inbox.clear();
            call(slot, id, Operation::Reset, |n, _| n.reset())?;
        }
        Ok(())
    }

    /// Streams one chunk through the graph without ending the stream.
    pub async fn push(&mut self, input: Data) -> Result<Vec<Output>> {
        let started = Instant::now();
        self.metrics.pushes += 1;
        let result = self.step(Some(input), false).await;
        self.metrics.wall += started.elapsed();
        result
    }

    /// Ends the stream: flushes every node in order, returning the tails.
    pub async fn finish(&mut self) -> Result<Vec<Output>> {
        let started = Instant::now();
        let result = self.step(None, true).await;
        self.metrics.wall += started.elapsed();
        result
    }

    /// Feeds `input` (if any) to the sources, then visits the waves; with `flush`,
    /// each node is flushed after its queued items. Queues are left empty even on error.
    async fn step(&mut self, input: Option<Data>, flush: bool) -> Result<Vec<Output>> {
        if let Some(Data::Audio(a)) = &input {
            self.metrics.audio_seconds += a.frames() as f64 / f64::from(a.sample_rate());
        }
        let memory: *const crate::alloc::Memory = &*self.memory;
        // SAFETY: the boxed counters outlive this call; node calls nest their own scopes.
        let result = Attributed { memory: unsafe { &*memory }, inner: self.visit(input, flush) }.await;
        if result.is_err() {
            for slot in &mut self.slots {
                slot.inbox.clear();
                slot.emitter.take();
            }
        }
        result
    }

    async fn visit(&mut self, input: Option<Data>, flush: bool) -> Result<Vec<Output>> {
        let ids = self.graph.ids();
        let metrics_on = self.metrics_on;
        if let Some(input) = input {
            for source in self.graph.sources() {
                self.slots[source].inbox.push(input.clone());
            }
        }
        let mut outputs = Vec::new();
        for wave in &self.waves {
            let done = if let [only] = wave.as_slice() {
                vec![drain(&mut self.slots[*only], &ids[*only], flush, self.metrics_on).await.map(|()| *only)]
            } else {
                let work = self
                    .slots
                    .iter_mut()
                    .enumerate()
                    .filter(|(i, _)| wave.binary_search(i).is_ok())
                    .map(|(i, slot)| async move { drain(slot, &ids[i], flush, metrics_on).await.map(|()| i) });
                join_all(work).await
            };
            for result in done {
                let from = result?;
                let mut items = self.slots[from].emitter.take();
                for (port, data) in items.drain(..) {
                    let targets = &self.routes[from][port];
                    if targets.is_empty() {
                        outputs.push(Output { node: from, port, data: data.into_owned() });
                        continue;
                    }
                    for &t in targets {
                        self.slots[t].inbox.push(data.clone());
                    }
                }
                self.slots[from].emitter.give_back(items);
            }
        }
        Ok(outputs)
    }
}

/// Processes every queued item of one node, then flushes it if the stream ends; each
/// call goes through the node's breaker and retry policy and is counted in its metrics.
async fn drain(slot: &mut Slot, id: &str, flush: bool, metrics_on: bool) -> Result<()> {
    let inbox = std::mem::take(&mut slot.inbox);
    if inbox.is_empty() && !flush {
        return Ok(());
    }
    // One clock read per call: each call's end is the next one's start (None: metrics off).
    let mut clock = metrics_on.then(Instant::now);
    for item in &inbox {
        if metrics_on {
            slot.metrics.input(item);
        }
        guarded(slot, id, Operation::Process, Some(item), &mut clock, |n, e| n.process(item, e)).await?;
    }
    if flush {
        guarded(slot, id, Operation::Flush, None, &mut clock, |n, e| n.flush(e)).await?;
    }
    Ok(())
}

/// One node call under its circuit breaker, retried with backoff while it fails
/// with a retryable error.
async fn guarded(
    slot: &mut Slot,
    id: &str,
    operation: Operation,
    input: Option<&Data>,
    clock: &mut Option<Instant>,
    mut f: impl FnMut(&mut dyn Node, &mut Emitter) -> std::result::Result<(), NodeFailure>,
) -> Result<()> {
    if !slot.breaker.admit() {
        return match (slot.breaker.policy.on_open, input) {
            (OnOpen::Skip, Some(item)) => {
                slot.emitter.emit(item.clone());
                slot.metrics.outputs(std::iter::once(item));
                Ok(())
            }
            (OnOpen::Skip, None) => Ok(()),
            (OnOpen::Fail, _) => Err(Error::CircuitOpen { node_id: id.to_string() }),
        };
    }
    let mut attempt = 0;
    loop {
        let result = match slot.timeout {
            None => measured(slot, id, operation, clock, &mut f),
            Some(limit) => {
                let before = slot.emitter.len();
                let result = on_thread(slot, id, operation, input, limit).await;
                record(slot, before, clock, &result);
                result
            }
        };
        match result {
            Ok(()) => {
                if slot.breaker.name() == "half_open" {
                    tracing::info!(node = id, "circuit breaker closed after a successful trial call");
                }
                slot.breaker.success();
                return Ok(());
            }
            // A poisoned instance (after a panic or a timeout) is not retried.
            Err(e) if e.is_retryable() && !slot.poisoned && attempt < slot.retry.max_retries => {
                attempt += 1;
                slot.metrics.retries += 1;
                let delay = policy::backoff(&slot.retry, attempt, &mut slot.rng);
                tracing::info!(node = id, attempt, delay_ms = delay.as_millis() as u64, error = %e, "retrying node call");
                tokio::time::sleep(delay).await;
                if let Some(c) = clock {
                    *c = Instant::now();
                }
            }
            Err(e) => {
                let was = slot.breaker.name();
                slot.breaker.failure();
                tracing::warn!(node = id, error = %e, "node call failed");
                if slot.breaker.name() == "open" && was != "open" {
                    tracing::warn!(node = id, cooldown_ms = slot.breaker.policy.cooldown_ms, "circuit breaker opened");
                }
                return Err(e);
            }
        }
    }
}

/// [`call`], recording its time (from `clock`, which it advances), failure and outputs
/// in the node's metrics; a failed call's partial outputs are discarded.
fn measured(
    slot: &mut Slot,
    id: &str,
    operation: Operation,
    clock: &mut Option<Instant>,
    f: &mut impl FnMut(&mut dyn Node, &mut Emitter) -> std::result::Result<(), NodeFailure>,
) -> Result<()> {
    let before = slot.emitter.len();
    let result = call(slot, id, operation, |n, e| f(n, e));
    record(slot, before, clock, &result);
    result
}

/// Counts a finished call in the node's metrics (time from `clock`, which it
/// advances; no counting when `clock` is None, i.e. metrics are off); a failed
/// call's outputs after `before` are discarded either way.
fn record(slot: &mut Slot, before: usize, clock: &mut Option<Instant>, result: &Result<()>) {
    if let Some(clock) = clock {
        let now = Instant::now();
        slot.metrics.time.record(now - *clock);
        *clock = now;
        slot.metrics.calls += 1;
        match result {
            Ok(()) => slot.metrics.outputs(slot.emitter.since(before)),
            Err(_) => slot.metrics.errors += 1,
        }
    }
    if result.is_err() {
        slot.emitter.truncate(before);
    }
}

/// Stands in for an instance that is running on a blocking thread, or was abandoned
/// there after a timeout (its slot is then poisoned, so this is never called).
struct Detached;

impl Node for Detached {
    fn process(&mut self, _: &Data, _: &mut Emitter) -> std::result::Result<(), NodeFailure> {
        Err(NodeFailure::new("node instance is not available"))
    }
}

/// A process (with `input`) or flush call on a blocking thread, abandoned after
/// `limit`: the caller gets `Error::Timeout` and the instance is poisoned. The input is
/// made owned first, so no borrowed caller memory reaches a thread that may outlive
/// the call.
async fn on_thread(slot: &mut Slot, id: &str, operation: Operation, input: Option<&Data>, limit: std::time::Duration) -> Result<()> {
    if slot.poisoned {
        return call(slot, id, operation, |_, _| Ok(())); // refuses with the poisoned error
    }
    let mut node = std::mem::replace(&mut slot.node, Box::new(Detached));
    let input = input.map(|d| d.clone().into_owned());
    // The thread may outlive the slot (after a timeout), so it counts into its own
    // counters, which are added to the node's when it returns in time.
    let task = tokio::task::spawn_blocking(move || {
        let mut emitter = Emitter::default();
        let memory = crate::alloc::Memory::default();
        let result = catch_unwind(AssertUnwindSafe(|| {
            crate::alloc::attribute(&memory, || match &input {
                Some(item) => node.process(item, &mut emitter),
                None => node.flush(&mut emitter),
            })
        }));
        (node, emitter, result, memory)
    });
    let node_error = |failure| Error::Node { node_id: id.to_string(), operation, failure };
    match tokio::time::timeout(limit, task).await {
        Ok(Ok((node, mut emitter, result, memory))) => {
            slot.memory.add(&memory);
            slot.node = node;
            for (port, data) in emitter.take() {
                slot.emitter.emit_to(port, data);
            }
            match result {
                Ok(r) => r.map_err(|failure| {
                    slot.poisoned |= failure.broken;
                    node_error(failure)
                }),
                Err(payload) => {
                    slot.poisoned = true;
                    Err(node_error(NodeFailure::new(format!("panicked: {}", panic_message(&*payload)))))
                }
            }
        }
        Ok(Err(join)) => {
            slot.poisoned = true;
            Err(Error::Internal(format!("node thread failed: {join}")))
        }
        Err(_) => {
            slot.poisoned = true;
            Err(Error::Timeout { node_id: id.to_string(), operation, after_ms: limit.as_millis() as u64 })
        }
    }
}

/// Calls into a node with panics caught; a panic poisons the instance.
fn call(
    slot: &mut Slot,
    id: &str,
    operation: Operation,
    f: impl FnOnce(&mut dyn Node, &mut Emitter) -> std::result::Result<(), NodeFailure>,
) -> Result<()> {
    let node_error = |failure| Error::Node { node_id: id.to_string(), operation, failure };
    if slot.poisoned {
        return Err(node_error(NodeFailure::new(
            "node is poisoned (an earlier call panicked or left the instance broken) and is not called again",
        )));
    }
    let node = &mut *slot.node;
    let emitter = &mut slot.emitter;
    let memory = &*slot.memory;
    match catch_unwind(AssertUnwindSafe(|| crate::alloc::attribute(memory, || f(node, emitter)))) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(failure)) => {
            slot.poisoned |= failure.broken;
            Err(node_error(failure))
        }
        Err(payload) => {
            slot.poisoned = true;
            Err(node_error(NodeFailure::new(format!("panicked: {}", panic_message(&*payload)))))
        }
    }
}

/// Groups nodes by depth (one more than the deepest predecessor's), each wave sorted.
fn waves(graph: &PipelineGraph) -> Vec<Vec<usize>> {
    let mut depth = vec![0usize; graph.ids().len()];
    let mut waves: Vec<Vec<usize>> = Vec::new();
    for &n in graph.order() {
        depth[n] = graph.predecessors(n).iter().map(|&p| depth[p] + 1).max().unwrap_or(0);
        if waves.len() <= depth[n] {
            waves.resize(depth[n] + 1, Vec::new());
        }
        waves[depth[n]].push(n);
    }
    for wave in &mut waves {
        wave.sort_unstable();
    }
    waves
}

#[cfg(test)]
mod tests;

/// Polls `inner` with allocations attributed to `memory` (a future may be polled on
/// any thread, so the scope is set per poll).
struct Attributed<'a, F> {
    memory: &'a crate::alloc::Memory,
    inner: F,
}

impl<F: Future> Future for Attributed<'_, F> {
    type Output = F::Output;
    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<F::Output> {
        // SAFETY: `inner` is structurally pinned: it is never moved out of `self`.
        let this = unsafe { self.get_unchecked_mut() };
        let inner = unsafe { std::pin::Pin::new_unchecked(&mut this.inner) };
        crate::alloc::attribute(this.memory, || inner.poll(cx))
    }
}
