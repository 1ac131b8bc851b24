//! Calling one node: its slot, the breaker and retry policies around a call, the
//! timeout thread, and the single attempt with panics caught.
//!
//! A call past its `timeout_ms` is abandoned on its thread and the slot gets a fresh
//! instance of the node (so retries and later chunks run, with the node's state lost).
//! A hung call costs only its own node: at most [`MAX_HUNG_CALLS`] abandoned calls of
//! one node (of one pipeline) may be running at once, after which that node's timed
//! calls fail at once until one returns; other pipelines, of the same node type or not,
//! are not touched. Threads held by hung calls are thus bounded by the nodes the process
//! holds, and the blocking pool is sized ([`crate::budget::MAX_BLOCKING_THREADS`]) so
//! that many hung nodes still leave threads for healthy calls.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::{Map, Value};

use crate::budget::MAX_HUNG_CALLS;

use crate::data::Data;
use crate::error::{Error, FailureKind, NodeFailure, Operation, Result, catch};
use crate::manifest::{Isolation, NodeDecl, OnOpen};
use crate::metrics::NodeMetrics;
use crate::nodes::{CreateFn, Emitter, Node};

use super::policy::{self, Breaker, BreakerState};

/// A node instance with the bookkeeping the executor needs.
pub(super) struct Slot {
    pub(super) node: Box<dyn Node>,
    /// Set after a panic: the instance may be inconsistent and is never called again.
    poisoned: bool,
    /// The caps its instance was configured with in this stream (`None`: not yet).
    pub(super) configured: Option<Arc<[crate::caps::Caps]>>,
    /// Items waiting to be processed, each with the input port it arrived at.
    pub(super) inbox: Vec<(usize, Data)>,
    pub(super) emitter: Emitter,
    pub(super) metrics: NodeMetrics,
    /// Heap attributed to this node's calls (boxed: the allocator holds its address).
    pub(super) memory: Box<crate::alloc::Memory>,
    retry: crate::manifest::RetryPolicy,
    pub(super) breaker: Breaker,
    /// Deadline of one call run on a blocking thread (in-process nodes with `timeout_ms`).
    timeout: Option<std::time::Duration>,
    /// The node's `timeout_ms`, for the error of a call an isolated node stopped.
    timeout_ms: u64,
    /// Makes a fresh instance after a timeout.
    create: Arc<CreateFn>,
    params: Map<String, Value>,
    /// Its abandoned calls still running (shared with their threads, which count out).
    hung: Arc<AtomicUsize>,
    /// Jitter state for retry backoff.
    rng: u64,
}

impl Slot {
    /// The slot of `node`, declared as node `index` by `decl` and made by `create`.
    pub(super) fn new(node: Box<dyn Node>, decl: &NodeDecl, index: usize, create: Arc<CreateFn>) -> Self {
        Self {
            node,
            poisoned: false,
            configured: None,
            inbox: Vec::new(),
            emitter: Emitter::default(),
            metrics: NodeMetrics::default(),
            memory: Box::default(),
            retry: decl.retry.unwrap_or_default(),
            breaker: Breaker::new(decl.circuit_breaker.unwrap_or_default()),
            // an isolated node enforces its deadline itself, by killing its process
            timeout: decl.timeout_ms.filter(|_| decl.isolation == Isolation::InProcess).map(std::time::Duration::from_millis),
            timeout_ms: decl.timeout_ms.unwrap_or(0),
            create,
            params: decl.params.clone(),
            hung: Arc::default(),
            rng: 0x9e37_79b9_7f4a_7c15 ^ (index as u64 + 1),
        }
    }

    /// Whether its items may go through a group's batch: a batchable node called on
    /// this thread (no `timeout_ms`) with a closed breaker (see `visit::staged`).
    pub(super) fn batchable(&mut self) -> bool {
        !self.poisoned && self.timeout.is_none() && self.breaker.state() == BreakerState::Closed && self.node.as_batchable().is_some()
    }

    /// The error for a failed call; a broken instance is poisoned.
    fn failed(&mut self, id: &str, operation: Operation, failure: NodeFailure) -> Error {
        self.poisoned |= failure.kind == FailureKind::Broken;
        if failure.kind == FailureKind::TimedOut {
            return Error::Timeout { node_id: id.to_string(), operation, after_ms: self.timeout_ms };
        }
        Error::Node { node_id: id.to_string(), operation, failure }
    }
}

/// One node call under its circuit breaker, retried with backoff while it fails
/// with a retryable error; `input` is a process call's item and its input port.
pub(super) async fn guarded(
    slot: &mut Slot,
    id: &str,
    operation: Operation,
    input: Option<(usize, &Data)>,
    clock: &mut Option<Instant>,
    mut f: impl FnMut(&mut dyn Node, &mut Emitter) -> std::result::Result<(), NodeFailure>,
) -> Result<()> {
    if !slot.breaker.admit() {
        return match (slot.breaker.policy.on_open, input) {
            (OnOpen::Skip, Some((_, item))) => {
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
                record(slot, id, operation, before, clock, result)
            }
        };
        match result {
            Ok(()) => {
                if slot.breaker.state() == BreakerState::HalfOpen {
                    tracing::info!(node = id, "circuit breaker closed after a successful trial call");
                }
                slot.breaker.success();
                return Ok(());
            }
            // A poisoned instance (after a panic) is not retried.
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
            // Refused input says nothing about the node's health: the breaker ignores it.
            Err(e @ Error::Node { failure: NodeFailure { kind: FailureKind::InvalidInput, .. }, .. }) => {
                tracing::info!(node = id, error = %e, "node refused its input");
                return Err(e);
            }
            Err(e) => {
                let was = slot.breaker.state();
                slot.breaker.failure();
                tracing::warn!(node = id, error = %e, "node call failed");
                if slot.breaker.state() == BreakerState::Open && was != BreakerState::Open {
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
    record(slot, id, operation, before, clock, result)
}

/// Counts a finished call in the node's metrics (time from `clock`, which it
/// advances; no counting when `clock` is None, i.e. metrics are off); a call that
/// emitted past the item budget fails, and a failed call's outputs after `before` are
/// discarded either way.
fn record(slot: &mut Slot, id: &str, operation: Operation, before: usize, clock: &mut Option<Instant>, result: Result<()>) -> Result<()> {
    let result = result.and_then(|()| slot.emitter.check_budget().map_err(|f| slot.failed(id, operation, f)));
    if let Some(clock) = clock {
        let now = Instant::now();
        slot.metrics.time.record(now - *clock);
        *clock = now;
        slot.metrics.calls += 1;
        match &result {
            Ok(()) => slot.metrics.outputs(slot.emitter.since(before)),
            Err(_) => slot.metrics.errors += 1,
        }
    }
    if result.is_err() {
        slot.emitter.truncate(before);
    }
    result
}

/// Stands in for an instance that is running on a blocking thread, or was abandoned
/// there after a timeout (its slot is then poisoned, so this is never called).
struct Detached;

impl Node for Detached {
    fn process(&mut self, _: &Data, _: &mut Emitter) -> std::result::Result<(), NodeFailure> {
        Err(NodeFailure::new("node instance is not available"))
    }
}

/// Whether a call on a thread finished, and whether its caller gave up on it; one lock,
/// so exactly one of the two sides counts an abandoned call out again.
#[derive(Default)]
struct Fate {
    finished: bool,
    abandoned: bool,
}

/// A process (with `input`) or flush call on a blocking thread, abandoned after
/// `limit`: the caller gets `Error::Timeout` and the slot a fresh instance. The input is
/// made owned first, so no borrowed caller memory reaches a thread that may outlive
/// the call.
async fn on_thread(
    slot: &mut Slot,
    id: &str,
    operation: Operation,
    input: Option<(usize, &Data)>,
    limit: std::time::Duration,
) -> Result<()> {
    if slot.poisoned {
        return call(slot, id, operation, |_, _| Ok(())); // refuses with the poisoned error
    }
    let running = slot.hung.load(Ordering::Acquire);
    if running >= MAX_HUNG_CALLS {
        let failure = NodeFailure::new(format!(
            "{running} of its calls timed out and are still running (at most {MAX_HUNG_CALLS} may be); its timed calls fail at once until one returns"
        ));
        return Err(Error::Node { node_id: id.to_string(), operation, failure });
    }
    let mut node = std::mem::replace(&mut slot.node, Box::new(Detached));
    let input = input.map(|(port, d)| (port, d.clone().into_owned()));
    let fate = Arc::new(Mutex::new(Fate::default()));
    let (thread_fate, hung) = (fate.clone(), slot.hung.clone());
    // The thread may outlive the slot (after a timeout), so it counts into its own
    // counters, which are added to the node's when it returns in time.
    let task = tokio::task::spawn_blocking(move || {
        let mut emitter = Emitter::default();
        let memory = crate::alloc::Memory::default();
        let result = attempt(&mut *node, &mut emitter, &memory, |n, e| match &input {
            Some((port, item)) => n.process_port(*port, item, e),
            None => n.flush(e),
        });
        let mut fate = thread_fate.lock().unwrap_or_else(|p| p.into_inner());
        fate.finished = true;
        if fate.abandoned {
            hung.fetch_sub(1, Ordering::AcqRel);
        }
        (node, emitter, result, memory)
    });
    match tokio::time::timeout(limit, task).await {
        Ok(Ok((node, mut emitter, result, memory))) => {
            slot.memory.add(&memory);
            slot.node = node;
            for (port, data) in emitter.take() {
                slot.emitter.emit_to(port, data);
            }
            result.map_err(|failure| slot.failed(id, operation, failure))
        }
        Ok(Err(join)) => {
            slot.poisoned = true;
            Err(Error::Internal(format!("node thread failed: {join}")))
        }
        Err(_) => {
            let mut fate = fate.lock().unwrap_or_else(|p| p.into_inner());
            if !fate.finished {
                fate.abandoned = true;
                slot.hung.fetch_add(1, Ordering::AcqRel);
            }
            drop(fate);
            // a fresh instance for what follows, configured as the old one was; if none
            // can be made, the node is done
            let fresh = catch(|| {
                let mut node = (slot.create)(&slot.params).ok()?;
                slot.configured.as_ref().map_or(Ok(()), |caps| node.configure(caps)).ok()?;
                Some(node)
            });
            match fresh {
                Ok(Some(node)) => slot.node = node,
                _ => slot.poisoned = true,
            }
            Err(Error::Timeout { node_id: id.to_string(), operation, after_ms: limit.as_millis() as u64 })
        }
    }
}

/// Calls into a node once, on this thread, with panics caught; a broken instance
/// (after a panic, say) is poisoned and never called again.
pub(super) fn call(
    slot: &mut Slot,
    id: &str,
    operation: Operation,
    f: impl FnOnce(&mut dyn Node, &mut Emitter) -> std::result::Result<(), NodeFailure>,
) -> Result<()> {
    if slot.poisoned {
        let failure = NodeFailure::new("node is poisoned (an earlier call panicked or left the instance broken) and is not called again");
        return Err(Error::Node { node_id: id.to_string(), operation, failure });
    }
    attempt(&mut *slot.node, &mut slot.emitter, &slot.memory, f).map_err(|failure| slot.failed(id, operation, failure))
}

/// One call with its allocations attributed to `memory`; a panic becomes
/// [`NodeFailure::panicked`].
fn attempt(
    node: &mut dyn Node,
    emitter: &mut Emitter,
    memory: &crate::alloc::Memory,
    f: impl FnOnce(&mut dyn Node, &mut Emitter) -> std::result::Result<(), NodeFailure>,
) -> std::result::Result<(), NodeFailure> {
    catch(|| crate::alloc::attribute(memory, || f(node, emitter))).unwrap_or_else(|payload| Err(NodeFailure::panicked(&*payload)))
}
