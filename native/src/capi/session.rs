//! Streaming session handles.

use std::ffi::c_void;
use std::sync::Arc;
use std::time::Duration;

use crate::error::Error;
use crate::executor::{DEFAULT_CAPACITY, MAX_CAPACITY, Overflow, Session, SessionStats};
use crate::runtime::Runtime;

use super::outputs::{Names, OwnedOutputs, RmInput, RmOutputs, borrow_input, borrow_inputs, fitting, refused, write_audio};
use super::pipeline::RmPipeline;
use super::{RmStatus, free_boxed, guard};
use crate::ffi::{arg, arg_mut};

/// What a push does when the session's output queue is full.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RmOverflow {
    /// Wait for a consumer up to the push's timeout, then fail with `RM_STATUS_QUEUE_FULL`.
    Block = 0,
    /// Drop the oldest queued items to make room, counting them in `RmSessionStats.dropped`.
    DropOldest = 1,
}

/// Options of `rm_session_new`; pass NULL for the defaults (1024 items, block).
#[repr(C)]
pub struct RmSessionOptions {
    /// Most items the output queue holds: 0 means `RM_SESSION_DEFAULT_CAPACITY`; more than
    /// `RM_SESSION_MAX_CAPACITY` is refused.
    pub capacity: usize,
    /// An `RmOverflow` value.
    pub overflow: u32,
}

/// Counters of a session, written by `rm_session_stats`.
#[repr(C)]
#[derive(Default)]
pub struct RmSessionStats {
    /// Items waiting to be pulled.
    pub queue_depth: usize,
    /// Items dropped by `RM_OVERFLOW_DROP_OLDEST`.
    pub dropped: u64,
    /// Chunks pushed.
    pub chunks_in: u64,
    /// Items queued in all.
    pub items_out: u64,
}

/// A streaming session with its own node instances. Opaque.
pub struct RmSession {
    session: Session,
    /// Keeps the runtime whose timers the session uses alive.
    _runtime: Arc<Runtime>,
    names: Arc<Names>,
}

impl RmSession {
    /// The session's node metrics plus its queue counters.
    pub(crate) fn metrics_json(&self) -> crate::Result<serde_json::Value> {
        let mut metrics = self.session.with_pipeline(|p| p.metrics_json())?;
        let SessionStats { queue_depth, dropped, chunks_in, items_out } = self.session.stats();
        metrics["session"] =
            serde_json::json!({"queue_depth": queue_depth, "dropped": dropped, "chunks_in": chunks_in, "items_out": items_out});
        Ok(metrics)
    }
}

/// Starts a session running fresh instances of `pipeline`'s nodes (the pipeline
/// itself is not used by the session and may be freed or run meanwhile).
///
/// `options` may be NULL for the defaults and is read only during the call. On success
/// `*out` receives a session the caller owns and must release with `rm_session_free`.
/// Any thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rm_session_new(
    pipeline: *const RmPipeline,
    options: *const RmSessionOptions,
    out: *mut *mut RmSession,
) -> RmStatus {
    guard(|| {
        let pipeline = unsafe { arg(pipeline, "pipeline") }?;
        let out = unsafe { arg_mut(out, "out") }?;
        let (capacity, overflow) = match unsafe { options.as_ref() } {
            None => (DEFAULT_CAPACITY, Overflow::Block),
            Some(o) => (
                match o.capacity {
                    0 => DEFAULT_CAPACITY,
                    c if c > MAX_CAPACITY => {
                        return Err(Error::InvalidArgument(format!("capacity {c} is more than RM_SESSION_MAX_CAPACITY ({MAX_CAPACITY})")));
                    }
                    c => c,
                },
                match o.overflow {
                    x if x == RmOverflow::Block as u32 => Overflow::Block,
                    x if x == RmOverflow::DropOldest as u32 => Overflow::DropOldest,
                    other => return Err(Error::InvalidArgument(format!("unknown overflow policy {other}"))),
                },
            ),
        };
        let (runtime, fresh, names) = pipeline.fork()?;
        let session = Session::new(runtime.tokio(), fresh, capacity, overflow);
        *out = Box::into_raw(Box::new(RmSession { session, _runtime: runtime, names }));
        Ok(())
    })
}

/// Pushes one chunk through the session's nodes, on the calling thread. A pipeline
/// with several named inputs takes its chunks through `rm_session_push_inputs`; this
/// call then fails with `RM_STATUS_INVALID_ARGUMENT` naming them.
///
/// `data` points to `samples` interleaved samples (all channels) of `format` (an
/// `RmSampleFormat`), aligned for that type, NULL only when `samples` is 0. It is
/// borrowed and read only during the call; whatever the session keeps is copied.
/// With `RM_OVERFLOW_BLOCK`, the call first waits up to `timeout_ms` for room in the
/// output queue and fails with `RM_STATUS_QUEUE_FULL` if there is none.
///
/// Threading: pushes are serialized; one thread may push while others pull.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rm_session_push(
    session: *const RmSession,
    data: *const c_void,
    samples: usize,
    format: u32,
    channels: u32,
    sample_rate: u32,
    timeout_ms: u32,
) -> RmStatus {
    guard(|| {
        let session = unsafe { arg(session, "session") }?;
        // SAFETY: the caller keeps `data` valid for this call; the executor copies
        // whatever it keeps past it.
        let input = unsafe { borrow_input(data, samples, format, channels, sample_rate) }?;
        session.session.push(input, Duration::from_millis(u64::from(timeout_ms)))
    })
}

/// Pushes chunks of several of the pipeline's inputs through the session's nodes in one
/// step, on the calling thread: `inputs` points to `n` `RmInput`s (as
/// `rm_pipeline_run_inputs` takes them), borrowed and read only during the call. A
/// transport that delivers inputs separately pushes each alone, in any chunk sizes;
/// nodes that wait for all their inputs (`Mix`) hold what came first. Waiting for room
/// and threading: as `rm_session_push`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rm_session_push_inputs(session: *const RmSession, inputs: *const RmInput, n: usize, timeout_ms: u32) -> RmStatus {
    guard(|| {
        let session = unsafe { arg(session, "session") }?;
        // SAFETY: the caller keeps the chunks valid for this call; the executor copies
        // whatever it keeps past it.
        let inputs = unsafe { borrow_inputs(inputs, n) }?;
        session.session.push_inputs(inputs, Duration::from_millis(u64::from(timeout_ms)))
    })
}

/// Takes up to `max_items` queued outputs (0 means all), waiting up to `timeout_ms`
/// for the first one. On success `*out` receives outputs (possibly none, on timeout or
/// after close) that the caller owns and must release with `rm_outputs_free`.
/// Any thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rm_session_pull(
    session: *const RmSession,
    timeout_ms: u32,
    max_items: usize,
    out: *mut *mut RmOutputs,
) -> RmStatus {
    guard(|| {
        let session = unsafe { arg(session, "session") }?;
        let out = unsafe { arg_mut(out, "out") }?;
        let max = if max_items == 0 { usize::MAX } else { max_items };
        let items = session.session.pull(max, Duration::from_millis(u64::from(timeout_ms)));
        *out = OwnedOutputs::boxed(items, session.names.clone());
        Ok(())
    })
}

/// Takes queued audio into caller memory: from the front of the queue, the items of
/// one sink output in `out_format` with `out_channels` channels, one after another
/// while they fit in `capacity` frames, waiting up to `timeout_ms` for the first. The
/// fast path for audio-to-audio streams (no outputs to free).
///
/// `out` is as in `rm_pipeline_run_into`. On success `*frames` receives the frames
/// written (0 on timeout, or after close once drained). Items that cannot follow stay
/// queued for the next call or for `rm_session_pull`. When the first queued item
/// cannot be taken (JSON, another format or channel count, or more frames than
/// `capacity`), fails with `RM_STATUS_INVALID_ARGUMENT` and takes nothing.
/// Any thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rm_session_pull_into(
    session: *const RmSession,
    timeout_ms: u32,
    out: *mut c_void,
    capacity: usize,
    out_format: u32,
    out_channels: u32,
    frames: *mut usize,
) -> RmStatus {
    guard(|| {
        let session = unsafe { arg(session, "session") }?;
        let frames = unsafe { arg_mut(frames, "frames") }?;
        let mut fit = 0;
        let items = session.session.take(Duration::from_millis(u64::from(timeout_ms)), |queued| {
            let (n, f, why) = fitting(queued.iter(), &session.names, out, capacity, out_format, out_channels)?;
            match why {
                Some(why) if n == 0 => Err(refused("pull_into", &why, "it stays queued (pull returns items of any kind)")),
                _ => {
                    fit = f;
                    Ok(n)
                }
            }
        })?;
        // SAFETY: the caller provides `capacity` frames at `out`, and `fit` of them are written.
        unsafe { write_audio(items.iter(), out) };
        *frames = fit;
        Ok(())
    })
}

/// Ends the stream: every node's tail (resampler delay, held VAD frames) is queued.
/// A later push starts a new stream. Threading as `rm_session_push`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rm_session_flush(session: *const RmSession) -> RmStatus {
    guard(|| unsafe { arg(session, "session") }?.session.flush())
}

/// Closes the session: later pushes fail with `RM_STATUS_CLOSED`, blocked calls
/// return, and queued outputs can still be pulled. Any thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rm_session_close(session: *const RmSession) -> RmStatus {
    guard(|| {
        unsafe { arg(session, "session") }?.session.close();
        Ok(())
    })
}

/// Writes the session's counters to `*out`. Any thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rm_session_stats(session: *const RmSession, out: *mut RmSessionStats) -> RmStatus {
    guard(|| {
        let session = unsafe { arg(session, "session") }?;
        let out = unsafe { arg_mut(out, "out") }?;
        let SessionStats { queue_depth, dropped, chunks_in, items_out } = session.session.stats();
        *out = RmSessionStats { queue_depth, dropped, chunks_in, items_out };
        Ok(())
    })
}

/// Closes and releases a session and its node instances. NULL is ignored. Outputs
/// already pulled stay valid. Call it only when no other thread is inside a call on
/// this session (close it first to wake blocked calls).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rm_session_free(session: *mut RmSession) {
    unsafe { free_boxed(session) }
}
