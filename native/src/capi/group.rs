//! Session group handles: many sessions of one pipeline, one call per tick.

use std::sync::Arc;

use std::ffi::c_void;

use remotemedia_plugin::abi::{RmDataKind, RmDataView, SampleFormat};

use crate::data::Data;
use crate::error::{Error, Result};
use crate::executor::{DEFAULT_CAPACITY, Group, MAX_CAPACITY, MAX_WORKERS, Output, SessionId};
use crate::ffi::{arg, arg_mut, slice_arg};
use crate::nodes::vad_frames;
use crate::runtime::Runtime;
use crate::serial::Serial;
use crate::view::borrow_audio;

use super::outputs::{Names, OwnedOutputs, RmOutput};
use super::pipeline::RmPipeline;
use super::{RmStatus, free_boxed, guard};

/// A group of sessions of one pipeline. Opaque.
pub struct RmGroup {
    group: Serial<Group>,
    /// Keeps the runtime whose timers the sessions use alive.
    _runtime: Arc<Runtime>,
    names: Arc<Names>,
}

/// One session's chunk in `rm_group_push`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct RmGroupChunk {
    /// The session (from `rm_group_open`).
    pub session: u64,
    /// Which pipeline input, as in `RmInput` (0 for a pipeline without named inputs).
    pub input: usize,
    /// Its audio (`kind` `RM_DATA_KIND_AUDIO`), borrowed and read only during the call.
    pub data: RmDataView,
}

/// Frame decisions of the pipeline's VAD nodes, one row per frame: column arrays of
/// `len` entries (NULL when `len` is 0), in session order, each session's frames in
/// stream order. They hold what the VAD's `frames` port would have sent as JSON events
/// (`start` is `frame` · `frame_ms` / 1000 s, `frame_ms` the node's).
#[repr(C)]
pub struct RmVadFrames {
    /// The session of each row.
    pub session: *const u64,
    /// The VAD node's index in the manifest's `nodes`.
    pub node_index: *const u32,
    /// The frame's index in the session's stream (from 0 at each stream's start).
    pub frame: *const u64,
    /// The frame's score (silero: speech probability).
    pub score: *const f32,
    /// The frame's decision: 1 speech, 0 not.
    pub speech: *const u8,
    pub len: usize,
}

/// What `rm_group_pull` took: `len` items with the session of each (`sessions[i]` is
/// `items[i]`'s), and the VAD frame decisions when asked for as a table. Everything it
/// points to lives until `rm_group_outputs_free`.
#[repr(C)]
pub struct RmGroupOutputs {
    pub items: *const RmOutput,
    pub sessions: *const u64,
    pub len: usize,
    pub vad_frames: RmVadFrames,
}

/// `rm_group_pull` flag: the VAD nodes' `frames` events come as rows of
/// `RmGroupOutputs.vad_frames` instead of JSON items.
pub const RM_GROUP_PULL_VAD_TABLE: u32 = 1;

/// The public struct followed by what it points into, in one allocation.
#[repr(C)]
struct OwnedGroupOutputs {
    public: RmGroupOutputs,
    outputs: Box<OwnedOutputs>,
    sessions: Vec<u64>,
    table: VadTable,
}

/// The columns of `RmVadFrames`.
#[derive(Default)]
struct VadTable {
    session: Vec<u64>,
    node_index: Vec<u32>,
    frame: Vec<u64>,
    score: Vec<f32>,
    speech: Vec<u8>,
}

impl VadTable {
    fn view(&self) -> RmVadFrames {
        let ptr = |empty: bool, p: *const u8| if empty { std::ptr::null() } else { p };
        let empty = self.session.is_empty();
        RmVadFrames {
            session: ptr(empty, self.session.as_ptr().cast()).cast(),
            node_index: ptr(empty, self.node_index.as_ptr().cast()).cast(),
            frame: ptr(empty, self.frame.as_ptr().cast()).cast(),
            score: ptr(empty, self.score.as_ptr().cast()).cast(),
            speech: ptr(empty, self.speech.as_ptr()),
            len: self.session.len(),
        }
    }
}

/// Makes an empty group whose sessions run fresh instances of `pipeline`'s nodes
/// (the pipeline itself is not used by the group and may be freed or run meanwhile).
/// Each session's output queue holds at most `capacity` items (0 means
/// `RM_SESSION_DEFAULT_CAPACITY`); beyond, its oldest items are dropped and counted.
/// A push runs the sessions on the calling thread, or with `workers` > 1 on that many
/// threads (the caller's and `workers - 1` started for that push; 0 means 1, at most
/// `RM_GROUP_MAX_WORKERS`), each running a share of at least one full inference batch.
///
/// On success `*out` receives a group the caller owns and must release with
/// `rm_group_free`. Any thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rm_group_new(pipeline: *const RmPipeline, capacity: usize, workers: u32, out: *mut *mut RmGroup) -> RmStatus {
    guard(|| {
        let pipeline = unsafe { arg(pipeline, "pipeline") }?;
        let out = unsafe { arg_mut(out, "out") }?;
        let capacity = match capacity {
            0 => DEFAULT_CAPACITY,
            c if c > MAX_CAPACITY => {
                return Err(Error::InvalidArgument(format!("capacity {c} is more than RM_SESSION_MAX_CAPACITY ({MAX_CAPACITY})")));
            }
            c => c,
        };
        if workers as usize > MAX_WORKERS {
            return Err(Error::InvalidArgument(format!("{workers} workers is more than RM_GROUP_MAX_WORKERS ({MAX_WORKERS})")));
        }
        let (runtime, template, names) = pipeline.fork()?;
        let group = Group::new(runtime.tokio(), template, capacity, workers as usize);
        *out = Box::into_raw(Box::new(RmGroup { group: Serial::new(group), _runtime: runtime, names }));
        Ok(())
    })
}

/// Opens a session with fresh node instances; `*session` receives its id (from 1,
/// never reused in the group). Calls on one group are serialized; any thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rm_group_open(group: *const RmGroup, session: *mut u64) -> RmStatus {
    guard(|| {
        let group = unsafe { arg(group, "group") }?;
        let session = unsafe { arg_mut(session, "session") }?;
        *session = group.group.lock("group")?.open()?;
        Ok(())
    })
}

/// Closes a session: its node instances and queued outputs are dropped; the other
/// sessions go on. An unknown or closed id fails with `RM_STATUS_INVALID_ARGUMENT`.
/// Serialized; any thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rm_group_close(group: *const RmGroup, session: u64) -> RmStatus {
    guard(|| unsafe { arg(group, "group") }?.group.lock("group")?.close(session))
}

/// One tick: `chunks` points to `n` chunks (a session may have one per pipeline input),
/// borrowed and read only during the call. Every listed session takes its chunks, on
/// the calling thread; sessions whose nodes need model inference get it batched
/// (weights read once per tick for all of them).
///
/// A session that fails (an unknown or closed id, a chunk its pipeline refuses, a node
/// that fails) loses its outputs of this tick; every other session's are queued. Then
/// the call returns the first failed session's status, and the last error's message
/// has one line per failed session, `session <id>: <why>`. `statuses`, when not NULL,
/// points to `n` entries that receive each chunk's session's status (`RM_STATUS_OK` for
/// sessions that did not fail). Serialized; any thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rm_group_push(group: *const RmGroup, chunks: *const RmGroupChunk, n: usize, statuses: *mut RmStatus) -> RmStatus {
    guard(|| {
        let group = unsafe { arg(group, "group") }?;
        let chunks = unsafe { slice_arg(chunks, n, "chunks") }?;
        // SAFETY: the caller keeps the chunks valid for this call.
        unsafe { push_views(group, chunks.iter().map(|c| (c.session, c.input, c.data)), statuses) }
    })
}

/// One tick in which each of the `n` sessions at `sessions` takes a chunk of the same
/// shape from one block: session `sessions[i]` takes the `samples` interleaved samples
/// (all channels) at `data + i · samples` (in samples of `format`, an `RmSampleFormat`),
/// for the pipeline's first input. The fast path of a server that gathers every
/// session's frame of a tick into one array: no per-chunk struct to fill. `data` is
/// borrowed and read only during the call (NULL only when `n` or `samples` is 0).
/// Failures and `statuses` (`n` entries) as in `rm_group_push`. Serialized; any thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rm_group_push_block(
    group: *const RmGroup,
    sessions: *const u64,
    n: usize,
    data: *const c_void,
    samples: usize,
    format: u32,
    channels: u32,
    sample_rate: u32,
    statuses: *mut RmStatus,
) -> RmStatus {
    guard(|| {
        let group = unsafe { arg(group, "group") }?;
        let ids = unsafe { slice_arg(sessions, n, "sessions") }?;
        let format = SampleFormat::from_raw(format).ok_or_else(|| Error::InvalidArgument(format!("unknown sample format {format}")))?;
        let width = format.size();
        let total = n.checked_mul(samples).and_then(|t| t.checked_mul(width)).filter(|&t| t <= isize::MAX as usize);
        if total.is_none() {
            return Err(Error::InvalidArgument(format!("{n} chunks of {samples} samples do not fit in memory")));
        }
        if data.is_null() && n > 0 && samples > 0 {
            return Err(Error::InvalidArgument("data is NULL".into()));
        }
        let views = ids.iter().enumerate().map(|(i, &id)| {
            let view = RmDataView {
                kind: RmDataKind::Audio as u32,
                // SAFETY: within the block of n · samples samples (checked to fit above).
                data: if samples == 0 { data } else { unsafe { data.cast::<u8>().add(i * samples * width) }.cast() },
                len: samples,
                format: format as u32,
                channels,
                sample_rate,
            };
            (id, 0, view)
        });
        // SAFETY: the caller keeps the block valid for this call.
        unsafe { push_views(group, views, statuses) }
    })
}

/// Ends the streams of the `n` sessions at `sessions`: their nodes' tails are queued,
/// and a later push starts a new stream. Failures and `statuses` (`n` entries) as in
/// `rm_group_push`. Serialized; any thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rm_group_flush(group: *const RmGroup, sessions: *const u64, n: usize, statuses: *mut RmStatus) -> RmStatus {
    guard(|| {
        let group = unsafe { arg(group, "group") }?;
        let ids = unsafe { slice_arg(sessions, n, "sessions") }?;
        let failures = group.group.lock("group")?.flush(ids);
        // SAFETY: a non-null `statuses` has room for `n` entries.
        unsafe { report(failures, ids.iter().copied(), statuses) }
    })
}

/// Takes up to `max_per_session` queued items of every session (0 means all), session
/// by session in id order, each session's in its output order; never waits. With
/// `RM_GROUP_PULL_VAD_TABLE` in `flags`, VAD frame decisions come as table rows.
/// On success `*out` receives outputs the caller owns and must release with
/// `rm_group_outputs_free`. Serialized; any thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rm_group_pull(
    group: *const RmGroup,
    max_per_session: usize,
    flags: u32,
    out: *mut *mut RmGroupOutputs,
) -> RmStatus {
    guard(|| {
        let group = unsafe { arg(group, "group") }?;
        let out = unsafe { arg_mut(out, "out") }?;
        if flags & !RM_GROUP_PULL_VAD_TABLE != 0 {
            return Err(Error::InvalidArgument(format!("unknown pull flags {flags:#x}")));
        }
        let mut g = group.group.lock("group")?;
        let max = if max_per_session == 0 { usize::MAX } else { max_per_session };
        let pulled = g.pull(max);
        let mut table = VadTable::default();
        let mut sessions = Vec::with_capacity(pulled.len());
        let mut items = Vec::with_capacity(pulled.len());
        for (id, output) in pulled {
            if flags & RM_GROUP_PULL_VAD_TABLE != 0 && tabled(&g, id, &output, &mut table) {
                continue;
            }
            sessions.push(id);
            items.push(output);
        }
        drop(g);
        let outputs = OwnedOutputs::new(items, group.names.clone());
        let public = RmGroupOutputs { items: outputs.items(), sessions: sessions.as_ptr(), len: sessions.len(), vad_frames: table.view() };
        let owned = Box::new(OwnedGroupOutputs { public, outputs, sessions, table });
        *out = Box::into_raw(owned).cast();
        Ok(())
    })
}

/// Writes session `session`'s queued item count and the items it dropped (queue full).
/// Serialized; any thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rm_group_queued(group: *const RmGroup, session: u64, queued: *mut usize, dropped: *mut u64) -> RmStatus {
    guard(|| {
        let group = unsafe { arg(group, "group") }?;
        let queued = unsafe { arg_mut(queued, "queued") }?;
        let dropped = unsafe { arg_mut(dropped, "dropped") }?;
        (*queued, *dropped) = group.group.lock("group")?.queued(session)?;
        Ok(())
    })
}

/// Counters of a group, written by `rm_group_stats`.
#[repr(C)]
#[derive(Default)]
pub struct RmGroupStats {
    /// Open sessions.
    pub sessions: usize,
    /// Pushes run (`rm_group_push` and `rm_group_push_block` calls).
    pub ticks: u64,
    /// Batched forward passes of model inference run, and the inputs (silero windows)
    /// they took: inputs per pass is how many sessions shared a pass on average.
    pub inference_passes: u64,
    pub inference_inputs: u64,
}

/// Writes the group's counters to `*out`. Serialized; any thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rm_group_stats(group: *const RmGroup, out: *mut RmGroupStats) -> RmStatus {
    guard(|| {
        let group = unsafe { arg(group, "group") }?;
        let out = unsafe { arg_mut(out, "out") }?;
        let s = group.group.lock("group")?.stats();
        *out = RmGroupStats {
            sessions: s.sessions,
            ticks: s.ticks,
            inference_passes: s.inference_passes,
            inference_inputs: s.inference_inputs,
        };
        Ok(())
    })
}

/// Releases what `rm_group_pull` returned. NULL is ignored. Any thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rm_group_outputs_free(outputs: *mut RmGroupOutputs) {
    // SAFETY: every `RmGroupOutputs *` handed out is the head of a boxed `OwnedGroupOutputs`.
    unsafe { free_boxed(outputs.cast::<OwnedGroupOutputs>()) }
}

/// Releases a group, its sessions and their node instances. NULL is ignored. Call it
/// only when no other thread is inside a call on this group.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rm_group_free(group: *mut RmGroup) {
    unsafe { free_boxed(group) }
}

// SAFETY: the raw pointers point into the owning struct, which never mutates them.
unsafe impl Send for OwnedGroupOutputs {}

/// Whether `output` of session `id` is a VAD's frames event, then added to `table`.
fn tabled(group: &Group, id: SessionId, output: &Output, table: &mut VadTable) -> bool {
    let Data::Json(event) = &output.data else { return false };
    if output.port != 0 || group.pipeline().spec(output.node).node_type != "VAD" {
        return false;
    }
    vad_frames(event, |frame, score, speech| {
        table.session.push(id);
        table.node_index.push(output.node as u32);
        table.frame.push(frame);
        table.score.push(score);
        table.speech.push(u8::from(speech));
    })
}

/// One tick of `views` (session, input index, audio view each): a view the runtime
/// refuses fails its session as a failing node would; then [`report`].
///
/// # Safety
/// Every view must describe audio valid for the call; a non-null `statuses` has room
/// for an entry per view.
unsafe fn push_views(
    group: &RmGroup,
    views: impl ExactSizeIterator<Item = (u64, usize, RmDataView)> + Clone,
    statuses: *mut RmStatus,
) -> Result<()> {
    let mut taken = Vec::with_capacity(views.len());
    let mut refused = Vec::new();
    for (id, input, view) in views.clone() {
        // SAFETY: the caller keeps the audio valid for this call; the executor copies
        // whatever it keeps past it.
        match unsafe { borrow_audio(&view) } {
            Ok(audio) => taken.push((id, input, Data::Audio(audio))),
            Err(e) => refused.push((id, e)),
        }
    }
    let mut failures = group.group.lock("group")?.push(taken);
    failures.extend(refused);
    // SAFETY: as this function's.
    unsafe { report(failures, views.map(|(id, _, _)| id), statuses) }
}

/// The status of a group call whose sessions `failures` failed: each chunk's session's
/// status into `statuses` (when not NULL); the first failed session's status, with a
/// message naming each, in id order.
///
/// # Safety
/// A non-null `statuses` must have room for an entry per item of `chunk_sessions`.
unsafe fn report(
    mut failures: Vec<(SessionId, Error)>,
    chunk_sessions: impl ExactSizeIterator<Item = u64>,
    statuses: *mut RmStatus,
) -> Result<()> {
    failures.sort_by_key(|(id, _)| *id);
    if !statuses.is_null() {
        // SAFETY: the caller gives room for an entry per chunk.
        let statuses = unsafe { std::slice::from_raw_parts_mut(statuses, chunk_sessions.len()) };
        for (status, id) in statuses.iter_mut().zip(chunk_sessions) {
            *status = failures.binary_search_by_key(&id, |(f, _)| *f).map_or(RmStatus::Ok, |at| failures[at].1.status());
        }
    }
    let message = failures.iter().map(|(id, e)| format!("session {id}: {e}")).collect::<Vec<_>>().join("\n");
    match failures.into_iter().next() {
        None => Ok(()),
        Some((_, first)) => Err(Error::Sessions { message, first: Box::new(first) }),
    }
}
