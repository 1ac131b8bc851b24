//! Conversions between [`Data`] and the ABI's borrowed `RmDataView`.

use std::sync::Arc;

use remotemedia_plugin::abi::{RM_KIND_AUDIO, RM_KIND_JSON, RmDataKind, RmDataView};

use crate::budget::MAX_CHANNELS;
use crate::data::{AudioBuffer, Data, SampleFormat, Samples};
use crate::error::{Error, Result};

/// Views `data`; JSON is serialized into `json`, which must outlive the view.
pub(crate) fn view_of(data: &Data, json: &mut String) -> RmDataView {
    match data {
        Data::Audio(a) => RmDataView {
            kind: RmDataKind::Audio as u32,
            data: a.samples().as_ptr().cast(),
            len: a.samples().len(),
            format: a.samples().format() as u32,
            channels: u32::from(a.channels()),
            sample_rate: a.sample_rate(),
        },
        Data::Json(v) => {
            *json = json_text(v);
            json_view(json)
        }
    }
}

/// The JSON text of an event, written into one buffer sized ahead (most events are a
/// few hundred bytes) instead of one that grows as it is written.
pub(crate) fn json_text(v: &serde_json::Value) -> String {
    use std::fmt::Write;
    let mut text = String::with_capacity(256);
    let _ = write!(text, "{v}"); // a String takes every write
    text
}

/// Views JSON text, which must outlive the view.
pub(crate) fn json_view(text: &str) -> RmDataView {
    RmDataView { kind: RmDataKind::Json as u32, data: text.as_ptr().cast(), len: text.len(), format: 0, channels: 0, sample_rate: 0 }
}

/// The `RM_KIND_*` bit of an item.
pub(crate) fn kind_bit(data: &Data) -> u32 {
    match data {
        Data::Audio(_) => RM_KIND_AUDIO,
        Data::Json(_) => RM_KIND_JSON,
    }
}

/// Names of the kinds in `bits` (`RM_KIND_*`); 0 means any.
pub(crate) fn kind_names(bits: u32) -> Vec<&'static str> {
    match bits {
        0 => vec!["audio", "json"],
        _ => [(RM_KIND_AUDIO, "audio"), (RM_KIND_JSON, "json")].into_iter().filter(|(b, _)| bits & b != 0).map(|(_, n)| n).collect(),
    }
}

/// Views the audio a view describes without copying (see `Samples::borrow_raw`).
///
/// # Safety
/// The view must describe readable memory that outlives every use of the result.
pub(crate) unsafe fn borrow_audio(view: &RmDataView) -> Result<AudioBuffer> {
    if view.kind != RmDataKind::Audio as u32 {
        return Err(Error::InvalidArgument(format!("expected audio (kind 0), got kind {}", view.kind)));
    }
    let channels = u16::try_from(view.channels)
        .map_err(|_| Error::InvalidArgument(format!("{} channels is more than {MAX_CHANNELS}", view.channels)))?;
    let format =
        SampleFormat::from_raw(view.format).ok_or_else(|| Error::InvalidArgument(format!("unknown sample format {}", view.format)))?;
    let samples = unsafe { Samples::borrow_raw(view.data.cast(), view.len, format) }?;
    AudioBuffer::new(samples, channels, view.sample_rate)
}

/// Copies the viewed item into owned data.
///
/// # Safety
/// The view must describe readable memory for the duration of the call.
pub(crate) unsafe fn copy_data(view: &RmDataView) -> Result<Data> {
    match view.kind {
        k if k == RmDataKind::Audio as u32 => Ok(Data::Audio(unsafe { borrow_audio(view) }?.into_owned())),
        k if k == RmDataKind::Json as u32 => {
            let text = unsafe { crate::ffi::str_len_arg(view.data.cast(), view.len, "json data") }?;
            let value = serde_json::from_str(text).map_err(|e| Error::InvalidArgument(format!("invalid JSON data: {e}")))?;
            Ok(Data::Json(Arc::new(value)))
        }
        other => Err(Error::InvalidArgument(format!("unknown data kind {other}"))),
    }
}
