//! Rechunk: re-frames a stream of arbitrary chunk sizes into fixed-size frames.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::budget;
use crate::caps::Caps;
use crate::data::{AudioBuffer, Data, Sample, SampleFormat, Samples};
use crate::error::NodeFailure;
use crate::nodes::{Emitter, Implementation, Node, NodeSpec, ParamError, parse_params};

pub fn spec() -> NodeSpec {
    NodeSpec {
        node_type: "Rechunk".into(),
        description: "Re-frames audio into frames of frame_ms milliseconds or frame_samples frames; at the end the partial frame is zero-padded (tail \"pad\"), emitted short (\"emit\") or dropped (\"drop\").".into(),
        params_schema: json!({
            "type": "object",
            "properties": {
                "frame_ms": {"type": ["number", "null"], "exclusiveMinimum": 0, "maximum": MAX_FRAME_MS},
                "frame_samples": {"type": ["integer", "null"], "minimum": 1, "maximum": MAX_FRAME_SAMPLES},
                "tail": {"enum": [Tail::Pad, Tail::Emit, Tail::Drop], "default": Tail::default()}
            },
            "additionalProperties": false
        }),
        outputs: vec!["out".into()],
        implementation: Implementation::Native,
        prefers_isolation: false,
        caps: Some(json!({"input": {"kind": "audio"}, "outputs": {"out": {}}})),
        // a sample waits for the rest of its frame
        latency: Some(Arc::new(|params, caps| {
            let size = frame_size(&parse_params(params).ok()?).ok()?;
            Some(size.frames(caps.rate()?).ok()? - 1)
        })),
        create: Arc::new(|params| {
            let p: Params = parse_params(params)?;
            Ok(Box::new(Rechunk { size: frame_size(&p)?, tail: p.tail, state: None }))
        }),
    }
}

/// The frame size `p` asks for, or which param is wrong.
fn frame_size(p: &Params) -> Result<FrameSize, ParamError> {
    match (p.frame_ms, p.frame_samples) {
        (Some(ms), None) if ms > 0.0 && ms <= MAX_FRAME_MS => Ok(FrameSize::Millis(ms)),
        (Some(ms), None) => Err(ParamError::new("frame_ms", format!("{ms} is outside (0, {MAX_FRAME_MS}]"))),
        (None, Some(n)) if (1..=MAX_FRAME_SAMPLES).contains(&n) => Ok(FrameSize::Frames(n)),
        (None, Some(n)) => Err(ParamError::new("frame_samples", format!("{n} is outside 1..={MAX_FRAME_SAMPLES}"))),
        _ => Err(ParamError::new("", "give exactly one of frame_ms and frame_samples")),
    }
}

/// Longest frame, in ms and in frames.
const MAX_FRAME_MS: f64 = 10_000.0;
const MAX_FRAME_SAMPLES: usize = 10_000_000;

#[derive(Serialize, Deserialize, Clone, Copy, Default, PartialEq)]
#[serde(rename_all = "lowercase")]
enum Tail {
    #[default]
    Pad,
    Emit,
    Drop,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    frame_ms: Option<f64>,
    frame_samples: Option<usize>,
    #[serde(default)]
    tail: Tail,
}

#[derive(Clone, Copy)]
enum FrameSize {
    Millis(f64),
    Frames(usize),
}

impl FrameSize {
    /// Frames per output frame at `rate`, or why `frame_ms` gives no whole number.
    fn frames(self, rate: u32) -> Result<usize, NodeFailure> {
        match self {
            FrameSize::Frames(n) => Ok(n),
            FrameSize::Millis(ms) => {
                let exact = ms * f64::from(rate) / 1000.0;
                if exact.fract() != 0.0 || exact < 1.0 {
                    return Err(NodeFailure::new(format!("frame_ms {ms} is not a whole number of frames at {rate} Hz")));
                }
                Ok(exact as usize)
            }
        }
    }
}

/// The stream's layout, fixed by its first chunk, and the samples not yet emitted.
struct State {
    format: SampleFormat,
    channels: u16,
    sample_rate: u32,
    /// Samples (all channels) per output frame.
    frame_len: usize,
    pending: Box<dyn Reframe>,
}

/// A buffer of pending samples of one format.
trait Reframe: Send {
    /// Appends `samples` (of the buffer's format) and takes every whole frame out.
    fn push(&mut self, samples: &Samples, frame_len: usize) -> Result<Vec<Samples>, NodeFailure>;
    /// Takes the partial frame left, zero-padded to a whole frame if `pad`.
    fn finish(&mut self, frame_len: usize, pad: bool) -> Result<Option<Samples>, NodeFailure>;
}

impl<T: Sample> Reframe for Vec<T> {
    fn push(&mut self, samples: &Samples, frame_len: usize) -> Result<Vec<Samples>, NodeFailure> {
        let new = T::buf(samples).expect("formats are compared before push");
        budget::reserve(self, new.len(), "Rechunk pending samples")?;
        self.extend_from_slice(new);
        let whole = self.len() / frame_len * frame_len;
        let mut frames = Vec::with_capacity(whole / frame_len);
        for f in self[..whole].chunks_exact(frame_len) {
            let mut frame = Vec::new();
            budget::reserve(&mut frame, frame_len, "Rechunk frame")?;
            frame.extend_from_slice(f);
            frames.push(T::wrap(frame));
        }
        self.drain(..whole);
        Ok(frames)
    }

    fn finish(&mut self, frame_len: usize, pad: bool) -> Result<Option<Samples>, NodeFailure> {
        if self.is_empty() {
            return Ok(None);
        }
        let mut last = std::mem::take(self);
        if pad {
            let missing = frame_len - last.len();
            budget::reserve(&mut last, missing, "Rechunk last frame")?;
            last.resize(frame_len, T::default());
        }
        Ok(Some(T::wrap(last)))
    }
}

struct Rechunk {
    size: FrameSize,
    tail: Tail,
    state: Option<State>,
}

impl Rechunk {
    fn start(&self, format: SampleFormat, channels: u16, sample_rate: u32) -> Result<State, NodeFailure> {
        let frames = self.size.frames(sample_rate)?;
        let frame_len = budget::samples("Rechunk frame", frames, usize::from(channels))?;
        // grown fallibly as samples come (`budget::reserve`), never allocated up front
        let pending: Box<dyn Reframe> = match format {
            SampleFormat::F32 => Box::new(Vec::<f32>::new()),
            SampleFormat::I16 => Box::new(Vec::<i16>::new()),
            SampleFormat::I32 => Box::new(Vec::<i32>::new()),
            SampleFormat::F64 => Box::new(Vec::<f64>::new()),
        };
        Ok(State { format, channels, sample_rate, frame_len, pending })
    }
}

fn emit(state: &State, samples: Samples, out: &mut Emitter) -> Result<(), NodeFailure> {
    let audio = AudioBuffer::new(samples, state.channels, state.sample_rate).map_err(|e| NodeFailure::new(e.to_string()))?;
    out.emit(Data::Audio(audio));
    Ok(())
}

impl Node for Rechunk {
    fn process(&mut self, input: &Data, out: &mut Emitter) -> Result<(), NodeFailure> {
        let audio = super::audio(input, "Rechunk")?;
        let layout = (audio.samples().format(), audio.channels(), audio.sample_rate());
        if self.state.is_none() {
            self.state = Some(self.start(layout.0, layout.1, layout.2)?);
        }
        let state = self.state.as_mut().expect("set above");
        if layout != (state.format, state.channels, state.sample_rate) {
            return Err(NodeFailure::invalid_input(format!(
                "its input port in got a chunk of {}, {} ch, {} Hz; the stream is {}, {} ch, {} Hz (configured, or its first chunk)",
                layout.0.name(),
                layout.1,
                layout.2,
                state.format.name(),
                state.channels,
                state.sample_rate
            )));
        }
        for frame in state.pending.push(audio.samples(), state.frame_len)? {
            emit(state, frame, out)?;
        }
        Ok(())
    }

    /// Sizes the frame and its buffer for the negotiated format, when all of it is known.
    fn configure(&mut self, inputs: &[Caps]) -> Result<(), NodeFailure> {
        if let Some((format, channels, rate)) = inputs[0].sample_caps() {
            self.state = Some(self.start(format, channels, rate)?);
        }
        Ok(())
    }

    fn flush(&mut self, out: &mut Emitter) -> Result<(), NodeFailure> {
        let Some(state) = self.state.as_mut() else { return Ok(()) };
        // The partial frame leaves the node whatever the tail rule: the next push starts
        // a new stream.
        match state.pending.finish(state.frame_len, self.tail == Tail::Pad)? {
            Some(last) if self.tail != Tail::Drop => emit(state, last, out),
            _ => Ok(()),
        }
    }

    fn reset(&mut self) -> Result<(), NodeFailure> {
        self.state = None;
        Ok(())
    }

    fn latency(&self) -> usize {
        self.state.as_ref().map_or(0, |s| s.frame_len / usize::from(s.channels) - 1)
    }
}
