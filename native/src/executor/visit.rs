//! Running the graph: the input goes to the sources, then each wave of nodes drains its
//! inbox (nodes of one wave run concurrently as futures joined on the calling thread).

use std::time::Instant;

use futures::future::join_all;

use crate::budget;
use crate::data::Data;
use crate::error::{Error, NodeFailure, Operation, Result};

use super::call::{Slot, guarded};
use super::{Output, Pipeline};

impl Pipeline {
    /// Feeds `input` (if any) to the sources, then visits the waves; with `flush`,
    /// each node is flushed after its queued items. Queues are left empty even on error.
    pub(super) async fn step(&mut self, input: Option<Data>, flush: bool) -> Result<Vec<Output>> {
        if let Some(Data::Audio(a)) = &input {
            let seconds = a.frames() as f64 / f64::from(a.sample_rate());
            self.metrics.audio_seconds += seconds;
            if self.metrics_on {
                self.clock.push(seconds, Instant::now());
            }
        }
        let memory: *const crate::alloc::Memory = &*self.memory;
        // SAFETY: the boxed counters outlive this call; node calls nest their own scopes.
        let result = Attributed { memory: unsafe { &*memory }, inner: self.visit(input, flush) }.await;
        match &result {
            Err(_) => {
                for slot in &mut self.slots {
                    slot.inbox.clear();
                    slot.emitter.take();
                }
            }
            Ok(outputs) if self.metrics_on && !outputs.is_empty() => {
                let now = Instant::now();
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

    async fn visit(&mut self, input: Option<Data>, flush: bool) -> Result<Vec<Output>> {
        let ids = self.graph.ids();
        let metrics_on = self.metrics_on;
        // Items queued in this step, against the item budget.
        let mut queued = 0;
        if let Some(input) = input {
            for source in self.graph.sources() {
                self.slots[source].inbox.push(input.clone());
                queued += 1;
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
                queued += items.iter().map(|(port, _)| self.routes[from][*port].len().max(1)).sum::<usize>();
                if queued > budget::MAX_ITEMS_PER_STEP {
                    let operation = if flush { Operation::Flush } else { Operation::Process };
                    let failure = NodeFailure::invalid_input(format!(
                        "its outputs would queue more than {} items in this step (the item budget)",
                        budget::MAX_ITEMS_PER_STEP
                    ));
                    return Err(Error::Node { node_id: ids[from].clone(), operation, failure });
                }
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
