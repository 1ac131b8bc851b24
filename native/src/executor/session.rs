//! Streaming sessions: push chunks, pull outputs, flush tails.
//!
//! Nodes run synchronously inside `push`, on the pushing thread, so items never wait
//! on an edge. Backpressure applies at the session's bounded output queue: with
//! `Overflow::Block` a push waits (up to its timeout) until the queue has room, with
//! `Overflow::DropOldest` the oldest queued items make room and are counted. One thread
//! may push while another pulls.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard};

use crate::serial::Serial;
use std::time::{Duration, Instant};

use super::{Output, Pipeline, block_on};
use crate::data::Data;
use crate::error::{Error, Result};

/// What a push does when the output queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Overflow {
    /// Wait for the consumer, up to the push's timeout, then fail with `QueueFull`.
    #[default]
    Block,
    /// Drop the oldest queued items to make room; they are counted in `dropped`.
    DropOldest,
}

/// Counters of a session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionStats {
    /// Items waiting to be pulled.
    pub queue_depth: usize,
    /// Items dropped by `Overflow::DropOldest`.
    pub dropped: u64,
    /// Chunks pushed.
    pub chunks_in: u64,
    /// Items put in the queue.
    pub items_out: u64,
}

struct Queue {
    items: VecDeque<Output>,
    stats: SessionStats,
    closed: bool,
    /// Threads waiting on `ready` and on `room`: notifying only when someone waits
    /// saves a futex syscall per push and per pull.
    waiting_ready: usize,
    waiting_room: usize,
}

/// A stream through its own instances of a pipeline's nodes.
pub struct Session {
    /// Drives the executor's timers (retry backoff, timeouts); its runtime must outlive the session.
    tokio: tokio::runtime::Handle,
    pipeline: Serial<Pipeline>,
    queue: Mutex<Queue>,
    /// Signalled when items arrive or the session closes.
    ready: Condvar,
    /// Signalled when items leave the queue or the session closes.
    room: Condvar,
    capacity: usize,
    overflow: Overflow,
}

/// A session's output queue capacity when the caller gives none.
pub const DEFAULT_CAPACITY: usize = 1024;
/// The largest output queue capacity a session accepts.
pub const MAX_CAPACITY: usize = 1 << 30;
/// The longest push or pull timeout, in ms (what a C `uint32_t` holds).
pub const MAX_TIMEOUT_MS: u64 = 4_294_967_295;

impl Session {
    /// A session over `pipeline` (whose node instances it takes) with a queue of
    /// `capacity` items (at least 1); `tokio` drives its timers.
    pub fn new(tokio: tokio::runtime::Handle, pipeline: Pipeline, capacity: usize, overflow: Overflow) -> Self {
        Self {
            tokio,
            pipeline: Serial::new(pipeline),
            queue: Mutex::new(Queue {
                items: VecDeque::new(),
                stats: SessionStats::default(),
                closed: false,
                waiting_ready: 0,
                waiting_room: 0,
            }),
            ready: Condvar::new(),
            room: Condvar::new(),
            capacity: capacity.max(1),
            overflow,
        }
    }

    fn lock_queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Pushes one chunk through the graph. Borrowed input is read only during the call.
    ///
    /// With `Overflow::Block` the push first waits up to `timeout` for the queue to
    /// have room; the outputs of one push are then all queued, so the queue may exceed
    /// its capacity by what a single chunk produces.
    pub fn push(&self, input: Data, timeout: Duration) -> Result<()> {
        self.wait_for_room(timeout)?;
        // Queued under the pipeline's turn, so outputs queue in the order of the pushes.
        let mut pipeline = self.pipeline.lock("session")?;
        let outputs = block_on(&self.tokio, pipeline.push(input))?;
        self.enqueue(outputs, true);
        Ok(())
    }

    /// Pushes chunks of several pipeline inputs (index and item each) through the graph
    /// in one step, as [`Session::push`] does one.
    pub fn push_inputs(&self, inputs: impl IntoIterator<Item = (usize, Data)>, timeout: Duration) -> Result<()> {
        self.wait_for_room(timeout)?;
        let mut pipeline = self.pipeline.lock("session")?;
        let outputs = block_on(&self.tokio, pipeline.push_inputs(inputs))?;
        self.enqueue(outputs, true);
        Ok(())
    }

    /// With `Overflow::Block`, waits up to `timeout` for the queue to have room; fails
    /// on a closed session.
    fn wait_for_room(&self, timeout: Duration) -> Result<()> {
        if self.overflow == Overflow::Block {
            let deadline = Instant::now() + timeout;
            let mut q = self.lock_queue();
            if q.closed {
                return Err(Error::Closed);
            }
            while !q.closed && q.items.len() >= self.capacity {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(Error::QueueFull(q.items.len()));
                }
                q.waiting_room += 1;
                q = self.room.wait_timeout(q, left).unwrap_or_else(|e| e.into_inner()).0;
                q.waiting_room -= 1;
            }
            if q.closed {
                return Err(Error::Cancelled("the session was closed while the push waited for room".into()));
            }
        } else if self.lock_queue().closed {
            return Err(Error::Closed);
        }
        Ok(())
    }

    /// Ends the stream: every node's tail (resampler delay, held VAD frames) is queued.
    /// Pushing again starts a new stream.
    pub fn flush(&self) -> Result<()> {
        if self.lock_queue().closed {
            return Err(Error::Closed);
        }
        let mut pipeline = self.pipeline.lock("session")?;
        let outputs = block_on(&self.tokio, pipeline.finish())?;
        self.enqueue(outputs, false);
        Ok(())
    }

    fn enqueue(&self, outputs: Vec<Output>, counts_chunk: bool) {
        let mut q = self.lock_queue();
        q.stats.chunks_in += u64::from(counts_chunk);
        for output in outputs {
            if self.overflow == Overflow::DropOldest && q.items.len() >= self.capacity {
                q.items.pop_front();
                q.stats.dropped += 1;
            }
            q.items.push_back(output);
            q.stats.items_out += 1;
        }
        q.stats.queue_depth = q.items.len();
        let wake = q.waiting_ready > 0;
        drop(q);
        if wake {
            self.ready.notify_all();
        }
    }

    /// Takes up to `max` queued items, waiting up to `timeout` for the first one.
    /// Returns an empty vector on timeout or when the session is closed and drained.
    pub fn pull(&self, max: usize, timeout: Duration) -> Vec<Output> {
        self.take(timeout, |queued| Ok::<_, std::convert::Infallible>(max.min(queued.len()))).unwrap_or_else(|e| match e {})
    }

    /// Takes the first `count(queued)` queued items, waiting up to `timeout` for the
    /// first one to arrive (`count` sees an empty queue on timeout, or when the session
    /// is closed and drained); an error of `count` takes nothing.
    pub fn take<E>(
        &self,
        timeout: Duration,
        count: impl FnOnce(&VecDeque<Output>) -> std::result::Result<usize, E>,
    ) -> std::result::Result<Vec<Output>, E> {
        let deadline = Instant::now() + timeout;
        let mut q = self.lock_queue();
        while q.items.is_empty() && !q.closed {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            q.waiting_ready += 1;
            q = self.ready.wait_timeout(q, left).unwrap_or_else(|e| e.into_inner()).0;
            q.waiting_ready -= 1;
        }
        let n = count(&q.items)?.min(q.items.len());
        let items: Vec<Output> = q.items.drain(..n).collect();
        q.stats.queue_depth = q.items.len();
        let wake = q.waiting_room > 0 && n > 0;
        drop(q);
        if wake {
            self.room.notify_all();
        }
        Ok(items)
    }

    /// Current counters.
    pub fn stats(&self) -> SessionStats {
        self.lock_queue().stats
    }

    /// Closes the session: pushes fail with `Closed`, waiters wake, queued items can
    /// still be pulled.
    pub fn close(&self) {
        self.lock_queue().closed = true;
        self.ready.notify_all();
        self.room.notify_all();
    }

    /// The pipeline whose nodes this session runs.
    pub fn with_pipeline<T>(&self, f: impl FnOnce(&Pipeline) -> T) -> Result<T> {
        Ok(f(&*self.pipeline.lock("session")?))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::data::{AudioBuffer, SampleBuf, Samples};

    fn chunk(n: usize) -> Data {
        Data::Audio(AudioBuffer::new(Samples::F32(SampleBuf::owned(vec![0.25; n])), 1, 16000).unwrap())
    }

    /// A session and the runtime that must outlive it.
    fn session(capacity: usize, overflow: Overflow) -> (Arc<crate::Runtime>, Session) {
        let rt = crate::Runtime::new().unwrap();
        let p = rt.pipeline(r#"{"version":"1","nodes":[{"id":"p","node_type":"PassThrough"}]}"#).unwrap();
        let session = Session::new(rt.tokio(), p, capacity, overflow);
        (rt, session)
    }

    #[test]
    fn drop_oldest_counts_what_it_drops() {
        let (_rt, s) = session(3, Overflow::DropOldest);
        for _ in 0..5 {
            s.push(chunk(10), Duration::ZERO).unwrap();
        }
        let st = s.stats();
        assert_eq!((st.queue_depth, st.dropped, st.chunks_in, st.items_out), (3, 2, 5, 5));
        assert_eq!(s.pull(10, Duration::ZERO).len(), 3);
        assert_eq!(s.stats().queue_depth, 0);
    }

    #[test]
    fn block_times_out_then_resumes_when_a_consumer_pulls() {
        let (_rt, s) = session(2, Overflow::Block);
        let s = Arc::new(s);
        s.push(chunk(1), Duration::ZERO).unwrap();
        s.push(chunk(1), Duration::ZERO).unwrap();
        assert!(matches!(s.push(chunk(1), Duration::from_millis(5)), Err(Error::QueueFull(2))));
        let consumer = {
            let s = s.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(20));
                s.pull(1, Duration::ZERO).len()
            })
        };
        s.push(chunk(1), Duration::from_secs(5)).unwrap();
        assert_eq!(consumer.join().unwrap(), 1);
        assert_eq!(s.stats().dropped, 0);
    }

    #[test]
    fn close_cancels_a_blocked_push() {
        let (_rt, s) = session(1, Overflow::Block);
        let s = Arc::new(s);
        s.push(chunk(1), Duration::ZERO).unwrap();
        let pusher = {
            let s = s.clone();
            std::thread::spawn(move || s.push(chunk(1), Duration::from_secs(10)))
        };
        std::thread::sleep(Duration::from_millis(20));
        s.close();
        assert!(matches!(pusher.join().unwrap(), Err(Error::Cancelled(_))));
        assert_eq!(s.stats().chunks_in, 1, "the cancelled chunk was not processed");
    }

    #[test]
    fn pull_waits_for_items_and_close_wakes_it() {
        let (_rt, s) = session(8, Overflow::Block);
        let s = Arc::new(s);
        assert!(s.pull(8, Duration::from_millis(5)).is_empty());
        let waiter = {
            let s = s.clone();
            std::thread::spawn(move || s.pull(8, Duration::from_secs(10)).len())
        };
        std::thread::sleep(Duration::from_millis(20));
        s.close();
        assert_eq!(waiter.join().unwrap(), 0);
        assert!(matches!(s.push(chunk(1), Duration::ZERO), Err(Error::Closed)));
    }
}
