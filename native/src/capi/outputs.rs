//! Data views shared with C, and the outputs of a run.

use std::ffi::{CString, c_char, c_void};
use std::sync::Arc;

use crate::data::{AudioBuffer, Data, SampleFormat, Samples};
use crate::error::{Error, Result};

use super::{RmStatus, arg, arg_mut, guard, guard_void};

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
                Self { kind: RmDataKind::Json as u32, data: json.as_ptr().cast(), len: json.len(), format: 0, channels: 0, sample_rate: 0 }
            }
        }
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
    pub(crate) unsafe fn to_owned_data(&self) -> Result<Data> {
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

/// One output item of a run.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct RmOutput {
    /// Id of the sink node that emitted the item (NUL-terminated).
    pub node_id: *const c_char,
    /// Name of the output port it was emitted on (NUL-terminated).
    pub port: *const c_char,
    /// The item. Its memory belongs to the `RmOutputs` it came from.
    pub view: RmDataView,
}

/// Node ids and port names of a pipeline as C strings, shared by its outputs.
pub(crate) struct Names {
    pub ids: Vec<CString>,
    pub ports: Vec<Vec<CString>>,
}

/// The outputs of one run. Opaque.
pub struct RmOutputs {
    items: Vec<RmOutput>,
    _data: Vec<Data>,
    _json: Vec<String>,
    _names: Arc<Names>,
}

impl RmOutputs {
    pub(crate) fn new(outputs: Vec<crate::executor::Output>, names: Arc<Names>) -> Self {
        let mut json = vec![String::new(); outputs.len()];
        let items = outputs
            .iter()
            .zip(json.iter_mut())
            .map(|(o, j)| RmOutput {
                node_id: names.ids[o.node].as_ptr(),
                port: names.ports[o.node][o.port].as_ptr(),
                view: RmDataView::of(&o.data, j),
            })
            .collect();
        Self { items, _data: outputs.into_iter().map(|o| o.data).collect(), _json: json, _names: names }
    }
}

// SAFETY: the raw pointers in `items` point into `_data`, `_json` and `_names`, which
// the struct owns and never mutates.
unsafe impl Send for RmOutputs {}
unsafe impl Sync for RmOutputs {}

/// The items of `outputs` in emission order.
///
/// Writes the count to `*len` and returns a pointer to the first item (NULL when
/// either argument is NULL, with the last error set). The array and everything it
/// points to are owned by `outputs` and live until `rm_outputs_free`. Any thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rm_outputs_items(outputs: *const RmOutputs, len: *mut usize) -> *const RmOutput {
    let mut items = std::ptr::null();
    let status = guard(|| {
        let outputs = unsafe { arg(outputs, "outputs") }?;
        *unsafe { arg_mut(len, "len") }? = outputs.items.len();
        items = outputs.items.as_ptr();
        Ok(())
    });
    debug_assert!(status == RmStatus::Ok || items.is_null());
    items
}

/// Releases the outputs of a run and every buffer they hold. NULL is ignored. After
/// this call no pointer obtained from `outputs` may be used. Any thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rm_outputs_free(outputs: *mut RmOutputs) {
    guard_void(|| {
        if !outputs.is_null() {
            drop(unsafe { Box::from_raw(outputs) });
        }
    })
}
