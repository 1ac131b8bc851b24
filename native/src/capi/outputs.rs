//! Data views shared with C, and the outputs of a run.

use std::ffi::{CString, c_char, c_void};
use std::sync::Arc;

use crate::data::{AudioBuffer, Data, SampleFormat, Samples};
use crate::error::{Error, Result};
use crate::executor::Output;

use super::free_boxed;

/// What an `RmDataView` holds.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RmDataKind {
    /// Interleaved samples: `data` points to `len` samples of `format`.
    Audio = 0,
    /// A structured event: `data` points to `len` bytes of UTF-8 JSON (no NUL).
    Json = 1,
}

/// A borrowed view of one data item. Enum-valued fields are plain integers so a bad
/// value from C is an error, not undefined behaviour: `kind` is an `RmDataKind`,
/// `format` an `RmSampleFormat`. `format`, `channels` and `sample_rate` are 0 for JSON.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct RmDataView {
    pub kind: u32,
    pub data: *const c_void,
    pub len: usize,
    pub format: u32,
    pub channels: u32,
    pub sample_rate: u32,
}

impl RmDataView {
    /// Views `data`; JSON is serialized into `json`, which must outlive the view.
    pub(crate) fn of(data: &Data, json: &mut String) -> Self {
        match data {
            Data::Audio(a) => Self {
                kind: RmDataKind::Audio as u32,
                data: a.samples().as_ptr().cast(),
                len: a.samples().len(),
                format: a.samples().format() as u32,
                channels: u32::from(a.channels()),
                sample_rate: a.sample_rate(),
            },
            Data::Json(v) => {
                *json = v.to_string();
                Self::json(json)
            }
        }
    }

    /// Views JSON text, which must outlive the view.
    pub(crate) fn json(text: &str) -> Self {
        Self { kind: RmDataKind::Json as u32, data: text.as_ptr().cast(), len: text.len(), format: 0, channels: 0, sample_rate: 0 }
    }

    /// Views audio described by this view without copying (see `Samples::borrow_raw`).
    ///
    /// # Safety
    /// The view must describe readable memory that outlives every use of the result.
    pub(crate) unsafe fn borrow_audio(&self) -> Result<AudioBuffer> {
        if self.kind != RmDataKind::Audio as u32 {
            return Err(Error::InvalidArgument(format!("expected audio (kind 0), got kind {}", self.kind)));
        }
        let channels = u16::try_from(self.channels)
            .map_err(|_| Error::InvalidArgument(format!("{} channels is more than 65535", self.channels)))?;
        let samples = unsafe { Samples::borrow_raw(self.data.cast(), self.len, SampleFormat::from_raw(self.format)?) }?;
        AudioBuffer::new(samples, channels, self.sample_rate)
    }

    /// Copies the viewed item into owned data.
    ///
    /// # Safety
    /// The view must describe readable memory for the duration of the call.
    pub(crate) unsafe fn copy_data(&self) -> Result<Data> {
        match self.kind {
            k if k == RmDataKind::Audio as u32 => Ok(Data::Audio(unsafe { self.borrow_audio() }?.into_owned())),
            k if k == RmDataKind::Json as u32 => {
                let text = unsafe { super::str_len_arg(self.data.cast(), self.len, "json data") }?;
                let value = serde_json::from_str(text).map_err(|e| Error::InvalidArgument(format!("invalid JSON data: {e}")))?;
                Ok(Data::Json(Arc::new(value)))
            }
            other => Err(Error::InvalidArgument(format!("unknown data kind {other}"))),
        }
    }
}

/// Audio given to a run or push as raw arguments, borrowed for the call.
///
/// # Safety
/// `data` must point to `samples` readable samples of `format` that stay valid and
/// unmodified for the call (see `Samples::borrow_raw`).
pub(crate) unsafe fn borrow_input(data: *const c_void, samples: usize, format: u32, channels: u32, sample_rate: u32) -> Result<Data> {
    let view = RmDataView { kind: RmDataKind::Audio as u32, data, len: samples, format, channels, sample_rate };
    Ok(Data::Audio(unsafe { view.borrow_audio() }?))
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
        let n_json = outputs.iter().filter(|o| matches!(o.data, Data::Json(_))).count();
        let mut json = Vec::with_capacity(n_json);
        let items: Vec<RmOutput> = outputs
            .iter()
            .map(|o| {
                let view = match &o.data {
                    Data::Json(v) => {
                        json.push(v.to_string());
                        RmDataView::json(json.last().expect("just pushed"))
                    }
                    audio => RmDataView::of(audio, &mut String::new()),
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
        let owned = Box::new(OwnedOutputs { public, items, _outputs: outputs, _json: json, _names: names });
        // `public` is the first field of a repr(C) struct, so the pointers coincide.
        Box::into_raw(owned).cast()
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
