//! Safe views of the items a node receives, and the sink for what it emits.

use std::ffi::c_void;

use crate::Error;
use crate::abi::{RmDataKind, RmDataView, RmNodeContext, RmStatus, SampleFormat};

/// Interleaved samples of one of the ABI's formats.
#[derive(Debug, Clone, Copy)]
pub enum Samples<'a> {
    F32(&'a [f32]),
    I16(&'a [i16]),
    I32(&'a [i32]),
    F64(&'a [f64]),
}

impl Samples<'_> {
    /// Number of samples (frames × channels).
    pub fn len(&self) -> usize {
        match self {
            Samples::F32(s) => s.len(),
            Samples::I16(s) => s.len(),
            Samples::I32(s) => s.len(),
            Samples::F64(s) => s.len(),
        }
    }
    /// True when there are no samples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    fn format(&self) -> SampleFormat {
        match self {
            Samples::F32(_) => SampleFormat::F32,
            Samples::I16(_) => SampleFormat::I16,
            Samples::I32(_) => SampleFormat::I32,
            Samples::F64(_) => SampleFormat::F64,
        }
    }
    fn ptr(&self) -> *const c_void {
        match self {
            Samples::F32(s) => s.as_ptr().cast(),
            Samples::I16(s) => s.as_ptr().cast(),
            Samples::I32(s) => s.as_ptr().cast(),
            Samples::F64(s) => s.as_ptr().cast(),
        }
    }
}

/// A borrowed chunk of audio.
#[derive(Debug, Clone, Copy)]
pub struct Audio<'a> {
    pub samples: Samples<'a>,
    pub channels: u32,
    pub sample_rate: u32,
}

impl Audio<'_> {
    /// Frames in the chunk.
    pub fn frames(&self) -> usize {
        if self.channels == 0 { 0 } else { self.samples.len() / self.channels as usize }
    }
}

/// One item handed to `process`, borrowed for the call.
#[derive(Debug, Clone, Copy)]
pub enum Input<'a> {
    Audio(Audio<'a>),
    /// JSON text (an event).
    Json(&'a str),
}

impl<'a> Input<'a> {
    /// Decodes a view from the runtime.
    ///
    /// # Safety
    /// `view` must describe memory that is valid for `'a`, as the runtime guarantees
    /// for the duration of a callback.
    pub(crate) unsafe fn from_view(view: &RmDataView) -> Result<Self, Error> {
        if view.kind == RmDataKind::Json as u32 {
            let bytes = unsafe { slice(view.data.cast::<u8>(), view.len) };
            return std::str::from_utf8(bytes).map(Input::Json).map_err(|e| Error::new(format!("JSON input is not UTF-8: {e}")));
        }
        if view.kind != RmDataKind::Audio as u32 {
            return Err(Error::new(format!("unknown data kind {}", view.kind)));
        }
        let format = SampleFormat::from_raw(view.format).ok_or_else(|| Error::new(format!("unknown sample format {}", view.format)))?;
        let (data, len) = (view.data, view.len);
        let samples = match format {
            SampleFormat::F32 => Samples::F32(unsafe { slice(data.cast(), len) }),
            SampleFormat::I16 => Samples::I16(unsafe { slice(data.cast(), len) }),
            SampleFormat::I32 => Samples::I32(unsafe { slice(data.cast(), len) }),
            SampleFormat::F64 => Samples::F64(unsafe { slice(data.cast(), len) }),
        };
        Ok(Input::Audio(Audio { samples, channels: view.channels, sample_rate: view.sample_rate }))
    }
}

/// A slice from a pointer that may be NULL when `len` is 0.
unsafe fn slice<'a, T>(ptr: *const T, len: usize) -> &'a [T] {
    if len == 0 { &[] } else { unsafe { std::slice::from_raw_parts(ptr, len) } }
}

/// Emits items to the runtime, which copies each before `audio` or `json` returns.
pub struct Output<'a> {
    pub(crate) ctx: *mut RmNodeContext,
    pub(crate) _call: std::marker::PhantomData<&'a mut RmNodeContext>,
}

impl Output<'_> {
    /// Emits audio on output port `port`.
    pub fn audio(&mut self, port: u32, audio: Audio<'_>) -> Result<(), Error> {
        let view = RmDataView {
            kind: RmDataKind::Audio as u32,
            data: audio.samples.ptr(),
            len: audio.samples.len(),
            format: audio.samples.format() as u32,
            channels: audio.channels,
            sample_rate: audio.sample_rate,
        };
        self.send(port, &view)
    }

    /// Emits a JSON event on output port `port`.
    pub fn json(&mut self, port: u32, value: &serde_json::Value) -> Result<(), Error> {
        let text = value.to_string();
        let view = RmDataView {
            kind: RmDataKind::Json as u32,
            data: text.as_ptr().cast(),
            len: text.len(),
            format: 0,
            channels: 0,
            sample_rate: 0,
        };
        self.send(port, &view)
    }

    fn send(&mut self, port: u32, view: &RmDataView) -> Result<(), Error> {
        // SAFETY: `ctx` is the live context of the current callback.
        let status = unsafe { ((*self.ctx).emit)(self.ctx, port, view) };
        if status == RmStatus::Ok as i32 { Ok(()) } else { Err(Error::new(format!("emit on port {port} was refused (status {status})"))) }
    }

    /// Reports `message` with the failing status of the current callback.
    pub(crate) fn set_error(&mut self, message: &str) {
        let text = crate::c_string(message);
        // SAFETY: as in `send`; the runtime copies the message.
        unsafe { ((*self.ctx).set_error)(self.ctx, text.as_ptr()) };
    }
}
