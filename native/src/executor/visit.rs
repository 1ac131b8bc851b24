//! Running the graph: the input goes to the sources, then each wave of nodes drains its
//! inbox (nodes of one wave run concurrently as futures joined on the calling thread).

use std::time::Instant;

use futures::future::join_all;

use crate::budget;
use crate::data::Data;
use crate::error::{Error, NodeFailure, Operation, Result};

use super::call::{Slot, call, guarded};
use super::group::Batch;
use super::{Output, Pipeline};

impl Pipeline {
    /// Feeds `inputs` (pipeline input index and item; empty for none) where the plan
    /// sends each input, then visits the waves; with `flush`, each node is flushed
    /// after its queued items. Queues are left empty even on error.
    ///
    /// `clock` is the time now when metrics are on (None when off); each node call is
    /// timed from it and advances it, so one clock read per call suffices. The input
    /// clock of sink latency follows the first input given.
    ///
    /// With `batch` (a session group's tick), batchable nodes hand their inference to it.
    pub(super) async fn step(
        &mut self,
        inputs: &[(usize, Data)],
        flush: bool,
        clock: &mut Option<Instant>,
        batch: Option<&Batch>,
    ) -> Result<Vec<Output>> {
        self.fresh = false;
        for (k, (_, data)) in inputs.iter().enumerate() {
            if let Data::Audio(a) = data {
                let seconds = a.frames() as f64 / f64::from(a.sample_rate());
                self.metrics.audio_seconds += seconds;
                if let (Some(now), 0) = (*clock, k) {
                    self.clock.push(seconds, now);
                }
            }
        }
        let memory: *const crate::alloc::Memory = &*self.memory;
        // SAFETY: the boxed counters outlive this call; node calls nest their own scopes.
        let result = Attributed { memory: unsafe { &*memory }, inner: self.visit(inputs, flush, clock, batch) }.await;
        match &result {
            Err(_) => {
                for slot in &mut self.slots {
                    slot.inbox.clear();
                    slot.emitter.take();
                }
            }
            Ok(outputs) if !outputs.is_empty() && clock.is_some() => {
                // the outputs left with the last call, which set the clock
                let now = clock.unwrap_or_else(Instant::now);
                for o in outputs {
                    if let Some(k) = self.sink_of[o.node][o.port] {
                        self.sinks[k].1.record(&o.data, &self.clock, now);
                    }
                }
            }
            Ok(_) => {}
        }
        result
    }

    async fn visit(
        &mut self,
        inputs: &[(usize, Data)],
        flush: bool,
        clock: &mut Option<Instant>,
        batch: Option<&Batch>,
    ) -> Result<Vec<Output>> {
        let ids = self.graph.ids();
        let metrics_on = clock.is_some();
        // Items queued in this step, against the item budget.
        let mut queued = 0;
        for (input, data) in inputs {
            for feed in self.plan.feeds.iter().filter(|f| f.input == *input) {
                self.slots[feed.node].inbox.push((feed.port, data.clone()));
                queued += 1;
            }
        }
        let mut outputs = Vec::new();
        for wave in &self.waves {
            if let [only] = wave.as_slice() {
                drain(&mut self.slots[*only], &ids[*only], flush, clock, batch).await?;
                route(&mut self.slots, &self.routes, &ids[*only], *only, flush, &mut queued, &mut outputs)?;
                continue;
            }
            let work = self.slots.iter_mut().enumerate().filter(|(i, _)| wave.binary_search(i).is_ok()).map(|(i, slot)| async move {
                // polled one after another: each starts its own clock
                let mut clock = metrics_on.then(Instant::now);
                drain(slot, &ids[i], flush, &mut clock, batch).await.map(|()| i)
            });
            let done = join_all(work).await;
            *clock = metrics_on.then(Instant::now);
            for result in done {
                let from = result?;
                route(&mut self.slots, &self.routes, &ids[from], from, flush, &mut queued, &mut outputs)?;
            }
        }
        Ok(outputs)
    }
}

/// Sends what node `from` (named `id`) emitted to the inboxes of the nodes it feeds,
/// or to `outputs` from a sink; fails past the step's item budget (`queued` so far).
fn route(
    slots: &mut [Slot],
    routes: &[Vec<Vec<(usize, usize)>>],
    id: &str,
    from: usize,
    flush: bool,
    queued: &mut usize,
    outputs: &mut Vec<Output>,
) -> Result<()> {
    let mut items = slots[from].emitter.take();
    *queued += items.iter().map(|(port, _)| routes[from][*port].len().max(1)).sum::<usize>();
    if *queued > budget::MAX_ITEMS_PER_STEP {
        let operation = if flush { Operation::Flush } else { Operation::Process };
        let failure = NodeFailure::invalid_input(format!(
            "its outputs would queue more than {} items in this step (the item budget)",
            budget::MAX_ITEMS_PER_STEP
        ));
        return Err(Error::Node { node_id: id.to_string(), operation, failure });
    }
    for (port, data) in items.drain(..) {
        let targets = &routes[from][port];
        if targets.is_empty() {
            outputs.push(Output { node: from, port, data });
            continue;
        }
        for &(t, port) in targets {
            slots[t].inbox.push((port, data.clone()));
        }
    }
    slots[from].emitter.give_back(items);
    Ok(())
}

/// Processes every queued item of one node, then flushes it if the stream ends; each
/// call goes through the node's breaker and retry policy and is counted in its metrics
/// (timed from `clock`, which each call advances; None when metrics are off). With
/// `batch`, a batchable node's items go through [`staged`].
async fn drain(slot: &mut Slot, id: &str, flush: bool, clock: &mut Option<Instant>, batch: Option<&Batch>) -> Result<()> {
    if slot.inbox.is_empty() && !flush {
        return Ok(());
    }
    let mut inbox = std::mem::take(&mut slot.inbox);
    for (port, item) in &inbox {
        if clock.is_some() {
            slot.metrics.input(item);
        }
        match batch.filter(|_| slot.batchable()) {
            Some(batch) => staged(slot, id, *port, item, clock, batch).await?,
            None => guarded(slot, id, Operation::Process, Some((*port, item)), clock, |n, e| n.process_port(*port, item, e)).await?,
        }
    }
    // Nothing is queued for this node while it drains: its emptied inbox goes back, to keep its capacity.
    inbox.clear();
    slot.inbox = inbox;
    if flush {
        guarded(slot, id, Operation::Flush, None, clock, |n, e| n.flush(e)).await?;
    }
    Ok(())
}

/// One item through a batchable node: staged, its inference handed to `batch` (the
/// call waits for the tick to run it), then completed. Only nodes without a timeout
/// and with a closed breaker come here ([`Slot::batchable`]); the completion is the
/// call the breaker and metrics count. A batched item is not retried: staging is one
/// attempt, and a retried completion finds its inference gone (batchable nodes fail
/// only on input they refuse, which is never retried, or broken).
async fn staged(slot: &mut Slot, id: &str, port: usize, item: &Data, clock: &mut Option<Instant>, batch: &Batch) -> Result<()> {
    let mut inference = None;
    call(slot, id, Operation::Process, |n, _| {
        inference = n.as_batchable().ok_or_else(|| NodeFailure::broken("the node stopped being batchable"))?.stage(port, item)?;
        Ok(())
    })?;
    // a failed batched run returns nothing: the node, without its state, fails
    let mut done = Some(match inference {
        Some(inference) => batch.submit(inference).await,
        None => None,
    });
    guarded(slot, id, Operation::Process, Some((port, item)), clock, |n, e| {
        let inference = done.take().ok_or_else(|| NodeFailure::broken("a batched completion ran twice"))?;
        n.as_batchable().ok_or_else(|| NodeFailure::broken("the node stopped being batchable"))?.complete(inference, e)
    })
    .await
}

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
