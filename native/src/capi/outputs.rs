//! The outputs of a run, and audio borrowed from a run's caller.

use std::ffi::{CString, c_char, c_void};
use std::sync::Arc;

use remotemedia_plugin::abi::{RmDataKind, RmDataView, SampleFormat};

use crate::data::Data;
use crate::error::{Error, Result};
use crate::executor::Output;
use crate::view::{borrow_audio, json_text, json_view, view_of};

use super::free_boxed;

/// Audio given to a run or push as raw arguments, borrowed for the call.
///
/// # Safety
/// `data` must point to `samples` readable samples of `format` that stay valid and
/// unmodified for the call (see `Samples::borrow_raw`).
pub(crate) unsafe fn borrow_input(data: *const c_void, samples: usize, format: u32, channels: u32, sample_rate: u32) -> Result<Data> {
    let view = RmDataView { kind: RmDataKind::Audio as u32, data, len: samples, format, channels, sample_rate };
    Ok(Data::Audio(unsafe { borrow_audio(&view) }?))
}

/// A chunk for one of a pipeline's inputs, in a call that gives several at once
/// (`rm_pipeline_run_inputs`, `rm_session_push_inputs`).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct RmInput {
    /// Which input: its index in the manifest's `inputs` (see
    /// `rm_pipeline_input_index`; 0 for a pipeline without named inputs).
    pub input: usize,
    /// Its audio (`kind` `RM_DATA_KIND_AUDIO`): `len` interleaved samples of `format`,
    /// aligned for that type; borrowed and read only during the call.
    pub data: RmDataView,
}

/// The chunks of an `RmInput` array, borrowed for the call.
///
/// # Safety
/// `inputs` must point to `n` readable `RmInput`s whose audio stays valid and unmodified
/// for the call; it may be NULL only when `n` is 0.
pub(crate) unsafe fn borrow_inputs(inputs: *const RmInput, n: usize) -> Result<Vec<(usize, Data)>> {
    if n > crate::manifest::MAX_INPUTS {
        return Err(Error::InvalidArgument(format!(
            "{n} inputs given, more than a pipeline has (at most {})",
            crate::manifest::MAX_INPUTS
        )));
    }
    // SAFETY: the caller provides `n` readable elements at `inputs`.
    let inputs = unsafe { crate::ffi::slice_arg(inputs, n, "inputs") }?;
    inputs.iter().map(|i| Ok((i.input, Data::Audio(unsafe { borrow_audio(&i.data) }?)))).collect()
}

/// One output item of a run.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct RmOutput {
    /// Id of the sink node that emitted the item (NUL-terminated).
    pub node_id: *const c_char,
    /// Name of the output port it was emitted on (NUL-terminated).
    pub port: *const c_char,
    /// Index of the node in the manifest's `nodes`.
    pub node_index: u32,
    /// Index of the port in the node type's outputs (0 is the default port).
    pub port_index: u32,
    /// The item. Its memory belongs to the `RmOutputs` it came from.
    pub view: RmDataView,
}

/// Node ids and port names of a pipeline as C strings, shared by its outputs.
pub(crate) struct Names {
    pub ids: Vec<CString>,
    pub ports: Vec<Vec<CString>>,
}

/// The outputs of one run: a read-only array of `len` items in emission order.
/// The array and everything it points to live until `rm_outputs_free`.
#[repr(C)]
pub struct RmOutputs {
    pub items: *const RmOutput,
    pub len: usize,
}

/// The public `RmOutputs` followed by what it points into, in one allocation.
#[repr(C)]
pub(crate) struct OwnedOutputs {
    public: RmOutputs,
    items: Vec<RmOutput>,
    _outputs: Vec<Output>,
    _json: Vec<String>,
    _names: Arc<Names>,
}

impl OwnedOutputs {
    /// Boxes the outputs of a run; the pointer is handed to C as `RmOutputs *`.
    pub(crate) fn boxed(outputs: Vec<Output>, names: Arc<Names>) -> *mut RmOutputs {
        // `public` is the first field of a repr(C) struct, so the pointers coincide.
        Box::into_raw(Self::new(outputs, names)).cast()
    }

    /// The items as C sees them (valid while `self` lives).
    pub(crate) fn items(&self) -> *const RmOutput {
        self.public.items
    }

    /// The outputs of a run with their C views.
    pub(crate) fn new(outputs: Vec<Output>, names: Arc<Names>) -> Box<Self> {
        let n_json = outputs.iter().filter(|o| matches!(o.data, Data::Json(_))).count();
        let mut json = Vec::with_capacity(n_json);
        let items: Vec<RmOutput> = outputs
            .iter()
            .map(|o| {
                let view = match &o.data {
                    Data::Json(v) => {
                        json.push(json_text(v));
                        json_view(json.last().expect("just pushed"))
                    }
                    audio => view_of(audio, &mut String::new()),
                };
                RmOutput {
                    node_id: names.ids[o.node].as_ptr(),
                    port: names.ports[o.node][o.port].as_ptr(),
                    node_index: o.node as u32,
                    port_index: o.port as u32,
                    view,
                }
            })
            .collect();
        let public = RmOutputs { items: items.as_ptr(), len: items.len() };
        Box::new(OwnedOutputs { public, items, _outputs: outputs, _json: json, _names: names })
    }
}

// SAFETY: the raw pointers point into the owning struct, which never mutates them.
unsafe impl Send for OwnedOutputs {}

/// Releases the outputs of a run and every buffer they hold. NULL is ignored. After
/// this call no pointer obtained from `outputs` may be used. Any thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rm_outputs_free(outputs: *mut RmOutputs) {
    // SAFETY: every `RmOutputs *` handed out is the head of a boxed `OwnedOutputs`.
    unsafe { free_boxed(outputs.cast::<OwnedOutputs>()) }
}

/// How many of `items`, from the first, can be written one after another into caller
/// memory at `dst` for `capacity` frames of `channels` channels of `format`: audio of
/// one sink output, in that format and channel count, at one rate, that fits. Returns
/// that count, their frames, and why the next item cannot follow (None when all can);
/// fails when frames are to be written and `dst` is NULL.
pub(crate) fn fitting<'a>(
    items: impl Iterator<Item = &'a Output>,
    names: &Names,
    dst: *mut c_void,
    capacity: usize,
    format: u32,
    channels: u32,
) -> Result<(usize, usize, Option<String>)> {
    let key = |o: &Output| {
        let id = names.ids[o.node].to_string_lossy();
        if o.port == 0 { format!("'{id}'") } else { format!("'{id}.{}'", names.ports[o.node][o.port].to_string_lossy()) }
    };
    let (mut taken, mut frames) = (0, 0);
    let mut first: Option<(&Output, u32)> = None;
    for o in items {
        let Data::Audio(a) = &o.data else {
            return checked(dst, taken, frames, Some(format!("{} emitted JSON", key(o))));
        };
        let other = first.filter(|(f, _)| (f.node, f.port) != (o.node, o.port));
        let why = if let Some((f, _)) = other {
            Some(format!("both {} and {} emitted audio", key(f), key(o)))
        } else if a.samples().format() as u32 != format {
            let wanted = SampleFormat::from_raw(format).map_or_else(|| format!("format {format}"), |f| f.name().to_string());
            Some(format!("{} emitted {} audio, out is {wanted}", key(o), a.samples().format().name()))
        } else if u32::from(a.channels()) != channels {
            Some(format!("{} emitted {}-channel audio, out has {channels} channel(s)", key(o), a.channels()))
        } else if let Some((_, rate)) = first.filter(|(_, rate)| *rate != a.sample_rate()) {
            Some(format!("{} changed sample rate from {rate} to {} Hz", key(o), a.sample_rate()))
        } else if frames + a.frames() > capacity {
            Some(format!("{} emitted {} frames, out holds {capacity}", key(o), frames + a.frames()))
        } else {
            None
        };
        if why.is_some() {
            return checked(dst, taken, frames, why);
        }
        first.get_or_insert((o, a.sample_rate()));
        taken += 1;
        frames += a.frames();
    }
    checked(dst, taken, frames, None)
}

/// The result of [`fitting`], or its error when frames are to be written to a NULL `dst`.
fn checked(dst: *mut c_void, taken: usize, frames: usize, why: Option<String>) -> Result<(usize, usize, Option<String>)> {
    if frames > 0 && dst.is_null() {
        return Err(Error::InvalidArgument("out is NULL".into()));
    }
    Ok((taken, frames, why))
}

/// Writes the samples of the audio `items` one after another at `dst`.
///
/// # Safety
/// `dst` must be valid for writing all their samples (as [`fitting`] counted them).
pub(crate) unsafe fn write_audio<'a>(items: impl Iterator<Item = &'a Output>, dst: *mut c_void) {
    let mut at = dst.cast::<u8>();
    for o in items {
        if let Data::Audio(a) = &o.data {
            let bytes = a.samples().as_bytes();
            if bytes.is_empty() {
                continue; // `dst` may be NULL when nothing is written
            }
            // SAFETY: the caller's memory holds every item's samples.
            unsafe {
                std::ptr::copy_nonoverlapping(bytes.as_ptr(), at, bytes.len());
                at = at.add(bytes.len());
            }
        }
    }
}

/// The error of a `*_into` call that could not take an item: `call` names the call,
/// `then` says what happened to the items.
pub(crate) fn refused(call: &str, why: &str, then: &str) -> Error {
    Error::InvalidArgument(format!("{call}: {why}; {then}"))
}
