//! Session groups: many sessions of one pipeline, driven by one call per tick.
//!
//! Each session is as independent as a [`super::Session`]: its own node instances,
//! state, stream and output queue; its outputs are those of a lone session fed the
//! same chunks. A push hands every listed session its chunk and runs them all on the
//! calling thread, as futures polled together: when every session of the tick waits on
//! inference ([`crate::nodes::Batchable`] nodes), the [`Batch`] runs it for all of
//! them at once (one forward pass per model and step, weights read once), and the
//! sessions go on. Nothing runs between pushes: an idle group costs no CPU.

use std::collections::{BTreeMap, VecDeque};
use std::pin::Pin;
use std::sync::{Mutex, MutexGuard};
use std::task::Poll;

use super::{Output, Pipeline, block_on};
use crate::data::Data;
use crate::error::{Error, Result, catch, panic_message};
use crate::model::batch::{Inference, run_all};

/// A session of a group, numbered from 1 in the order opened; never reused.
pub type SessionId = u64;

/// The inference that the sessions of one tick handed over, waiting to run together.
#[derive(Default)]
pub(super) struct Batch {
    entries: Mutex<Vec<Entry>>,
    /// Forward passes run and the inputs they took, since the group began.
    ran: Mutex<(u64, u64)>,
}

struct Entry {
    /// The inference, until its session takes it back (`None` after a failed run).
    work: Option<Inference>,
    done: bool,
}

impl Batch {
    fn lock(&self) -> MutexGuard<'_, Vec<Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hands `work` over; resolves once the tick has run it: to the work with its
    /// results, or to `None` when the run failed (the state it carried is lost).
    pub(super) fn submit(&self, work: Inference) -> impl Future<Output = Option<Inference>> + '_ {
        let ticket = {
            let mut entries = self.lock();
            entries.push(Entry { work: Some(work), done: false });
            entries.len() - 1
        };
        // Woken by no one: the tick polls every session again after each run.
        std::future::poll_fn(move |_| {
            let mut entries = self.lock();
            let entry = &mut entries[ticket];
            if entry.done { Poll::Ready(entry.work.take()) } else { Poll::Pending }
        })
    }

    /// Runs every inference waiting, together; false when none was.
    fn run(&self) -> bool {
        let mut entries = self.lock();
        let mut waiting: Vec<&mut Entry> = entries.iter_mut().filter(|e| !e.done).collect();
        if waiting.is_empty() {
            return false;
        }
        let ran = catch(|| {
            let mut work: Vec<&mut Inference> = waiting.iter_mut().filter_map(|e| e.work.as_mut()).collect();
            run_all(&mut work)
        });
        if let Ok((passes, inputs)) = ran {
            let mut total = self.ran.lock().unwrap_or_else(|e| e.into_inner());
            *total = (total.0 + passes, total.1 + inputs);
        }
        for entry in waiting {
            entry.done = true;
            if let Err(payload) = &ran {
                tracing::error!(error = panic_message(&**payload), "batched inference failed");
                entry.work = None;
            }
        }
        true
    }

    fn clear(&self) {
        self.lock().clear();
    }
}

/// One session: its pipeline instance and its output queue.
struct Member {
    pipeline: Pipeline,
    queue: VecDeque<Output>,
    /// Items dropped because the queue was full.
    dropped: u64,
}

/// Sessions of one pipeline; see the module documentation.
pub struct Group {
    tokio: tokio::runtime::Handle,
    /// The pipeline whose fresh instances the sessions run; never run itself.
    template: Pipeline,
    members: BTreeMap<SessionId, Member>,
    last: SessionId,
    /// Most items a session's queue holds; beyond, its oldest are dropped and counted.
    capacity: usize,
    /// One batch per thread a tick runs on: the caller's, then `workers - 1` more.
    batches: Vec<Batch>,
    ticks: u64,
}

/// The most threads a group's tick runs on.
pub const MAX_WORKERS: usize = 256;

/// Counters of a group.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GroupStats {
    /// Open sessions.
    pub sessions: usize,
    /// Pushes (ticks) run.
    pub ticks: u64,
    /// Batched forward passes run, and the inputs (silero windows) they took: the
    /// inputs per pass say how much the sessions shared.
    pub inference_passes: u64,
    pub inference_inputs: u64,
}

/// A session's failure in a group call: which session, and its error.
pub type Failure = (SessionId, Error);

/// One session's part of a tick: its id, its member, and its chunks (input, item).
type Work<'a> = (SessionId, &'a mut Member, Vec<(usize, Data)>);

impl Group {
    /// An empty group of `template`'s sessions, each queueing at most `capacity` items
    /// (at least 1), whose ticks run on `workers` threads (1: the caller's alone, at
    /// most [`MAX_WORKERS`]); `tokio` drives the executor's timers.
    pub fn new(tokio: tokio::runtime::Handle, template: Pipeline, capacity: usize, workers: usize) -> Self {
        let batches = (0..workers.clamp(1, MAX_WORKERS)).map(|_| Batch::default()).collect();
        Self { tokio, template, members: BTreeMap::new(), last: 0, capacity: capacity.max(1), batches, ticks: 0 }
    }

    /// The pipeline the sessions run (for names and specs).
    pub fn pipeline(&self) -> &Pipeline {
        &self.template
    }

    /// Opens a session with fresh node instances. Its node calls are not timed or
    /// counted (a group has no per-session metrics to read them, and timing every call
    /// of thousands of sessions costs more than some of the calls).
    pub fn open(&mut self) -> Result<SessionId> {
        let mut pipeline = self.template.instance()?;
        pipeline.set_metrics(false);
        self.last += 1;
        self.members.insert(self.last, Member { pipeline, queue: VecDeque::new(), dropped: 0 });
        Ok(self.last)
    }

    /// Closes session `id`: its node instances and queued outputs are dropped.
    pub fn close(&mut self, id: SessionId) -> Result<()> {
        self.members.remove(&id).map(drop).ok_or_else(|| self.unknown(id))
    }

    /// Open sessions, in id order.
    pub fn sessions(&self) -> impl Iterator<Item = SessionId> + '_ {
        self.members.keys().copied()
    }

    /// The group's counters.
    pub fn stats(&self) -> GroupStats {
        let (inference_passes, inference_inputs) = self.batches.iter().fold((0, 0), |(p, i), b| {
            let ran = *b.ran.lock().unwrap_or_else(|e| e.into_inner());
            (p + ran.0, i + ran.1)
        });
        GroupStats { sessions: self.members.len(), ticks: self.ticks, inference_passes, inference_inputs }
    }

    /// Items queued for session `id`, and items it dropped.
    pub fn queued(&self, id: SessionId) -> Result<(usize, u64)> {
        self.members.get(&id).map(|m| (m.queue.len(), m.dropped)).ok_or_else(|| self.unknown(id))
    }

    fn unknown(&self, id: SessionId) -> Error {
        unknown(id, self.last)
    }

    /// One tick: each session of `chunks` (session, pipeline input index, item) takes
    /// its chunks in one step, as [`super::Session::push_inputs`] would; sessions
    /// waiting on inference run it batched. A session's failure (unknown or closed id,
    /// a chunk its pipeline refuses, a node that fails) is returned with its id and
    /// costs that session's outputs of this tick only; the other sessions' outputs are
    /// queued. A failed session stays open, as a stream does after a failed push.
    pub fn push(&mut self, chunks: Vec<(SessionId, usize, Data)>) -> Vec<Failure> {
        self.ticks += 1;
        let Self { tokio, members, last, capacity, batches, .. } = self;
        let mut failures: Vec<Failure> = Vec::new();
        let mut chunks = chunks;
        chunks.sort_by_key(|(id, _, _)| *id); // stable: a session's chunks keep their order
        let mut work: Vec<Work<'_>> = Vec::new();
        let mut open = members.range_mut(..).peekable();
        for (id, input, data) in chunks {
            if let Some((at, _, inputs)) = work.last_mut()
                && *at == id
            {
                inputs.push((input, data));
                continue;
            }
            while open.next_if(|(m, _)| **m < id).is_some() {}
            match open.next_if(|(m, _)| **m == id) {
                Some((_, member)) => work.push((id, member, vec![(input, data)])),
                None if failures.last().is_some_and(|(f, _)| *f == id) => {}
                None => failures.push((id, unknown(id, *last))),
            }
        }
        let results = ticks(tokio, batches, &mut work);
        for ((id, member, _), result) in work.into_iter().zip(results) {
            match result {
                Ok(outputs) => enqueue(member, outputs, *capacity),
                Err(e) => failures.push((id, e)),
            }
        }
        failures.sort_by_key(|(id, _)| *id);
        failures
    }

    /// Ends the streams of sessions `ids`: their nodes' tails are queued, and a later
    /// push starts a new stream. Failures as in [`Group::push`].
    pub fn flush(&mut self, ids: &[SessionId]) -> Vec<Failure> {
        let mut failures = Vec::new();
        for &id in ids {
            let Some(member) = self.members.get_mut(&id) else {
                failures.push((id, self.unknown(id)));
                continue;
            };
            match block_on(&self.tokio, member.pipeline.finish()) {
                Ok(outputs) => enqueue(member, outputs, self.capacity),
                Err(e) => failures.push((id, e)),
            }
        }
        failures
    }

    /// Takes up to `max` queued items of each session, session by session in id order,
    /// each session's in its output order.
    pub fn pull(&mut self, max: usize) -> Vec<(SessionId, Output)> {
        let mut items = Vec::new();
        for (&id, member) in &mut self.members {
            let n = max.min(member.queue.len());
            items.extend(member.queue.drain(..n).map(|o| (id, o)));
        }
        items
    }
}

/// [`tick`] on as many threads as there are `batches` (the calling one and scoped
/// others, each with a contiguous share of the sessions), when there are sessions
/// enough to give each thread a full batch; else on the calling thread.
fn ticks(tokio: &tokio::runtime::Handle, batches: &[Batch], work: &mut [Work<'_>]) -> Vec<Result<Vec<Output>>> {
    let threads = batches.len().min(work.len() / crate::model::batch::LANES).max(1);
    if threads == 1 {
        return tick(tokio, &batches[0], work);
    }
    let share = work.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let mut parts = work.chunks_mut(share).zip(batches);
        let (first, first_batch) = parts.next().expect("threads >= 2, so work is not empty");
        let others: Vec<_> = parts.map(|(part, batch)| scope.spawn(move || tick(tokio, batch, part))).collect();
        let mut results = tick(tokio, first_batch, first);
        for other in others {
            match other.join() {
                Ok(r) => results.extend(r),
                // a tick catches node and inference panics; this is the executor's own
                Err(payload) => std::panic::resume_unwind(payload),
            }
        }
        results
    })
}

/// Runs each session's step as a future on this thread; whenever all that are not
/// done wait, the batch runs what they handed over. One result per session.
fn tick(tokio: &tokio::runtime::Handle, batch: &Batch, work: &mut [Work<'_>]) -> Vec<Result<Vec<Output>>> {
    type Step<'a> = Pin<Box<dyn Future<Output = Result<Vec<Output>>> + 'a>>;
    let mut steps: Vec<Step<'_>> = work
        .iter_mut()
        .map(|(_, member, inputs)| Box::pin(member.pipeline.push_batched(inputs.drain(..), Some(batch))) as Step<'_>)
        .collect();
    let mut results: Vec<Option<Result<Vec<Output>>>> = steps.iter().map(|_| None).collect();
    let ran = block_on(tokio, async {
        std::future::poll_fn(|cx| {
            loop {
                let mut waiting = false;
                for (step, result) in steps.iter_mut().zip(results.iter_mut()) {
                    if result.is_none() {
                        match step.as_mut().poll(cx) {
                            Poll::Ready(r) => *result = Some(r),
                            Poll::Pending => waiting = true,
                        }
                    }
                }
                if !waiting {
                    return Poll::Ready(());
                }
                // nothing to run: the sessions wait on timers (retry backoff) or
                // threads (timed calls), which wake this task
                if !batch.run() {
                    return Poll::Pending;
                }
            }
        })
        .await;
        Ok(())
    });
    drop(steps);
    batch.clear();
    let failed = ran.err().map(|e| e.to_string());
    results
        .into_iter()
        .map(|r| match (r, &failed) {
            (Some(r), _) => r,
            (None, why) => Err(Error::Internal(why.clone().unwrap_or_else(|| "the tick did not finish".into()))),
        })
        .collect()
}

/// The error for session `id`, not open in a group whose last session is `last`.
fn unknown(id: SessionId, last: SessionId) -> Error {
    let why = if id == 0 || id > last { "was never opened" } else { "is closed" };
    Error::InvalidArgument(format!("session {id} {why} in this group"))
}

/// Queues `outputs` for `member`, dropping its oldest beyond `capacity`.
fn enqueue(member: &mut Member, outputs: Vec<Output>, capacity: usize) {
    for output in outputs {
        if member.queue.len() >= capacity {
            member.queue.pop_front();
            member.dropped += 1;
        }
        member.queue.push_back(output);
    }
}
