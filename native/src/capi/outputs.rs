//! The outputs of a run, and audio borrowed from a run's caller.

use std::ffi::{CString, c_char, c_void};
use std::sync::Arc;

use remotemedia_plugin::abi::{RmDataKind, RmDataView};

use crate::data::Data;
use crate::error::Result;
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
