//! VAD: frame-based voice activity detection with two engines and one decision rule.
//!
//! Engines (param `engine`) score each frame of mono f32 audio:
//! - `"spectral"` (default): band SNRs and whitened spectral flatness (`spectral.rs`);
//!   8, 16, 32 or 48 kHz, frames of 10, 20 or 30 ms;
//! - `"silero"`: the silero VAD network run natively (`crate::model`) from the ONNX
//!   file `model_path`; 16 kHz, 32 ms windows (512 samples); the model is loaded once
//!   per process and shared, each stream keeps its own recurrent state and context.
//!
//! Decision, the same for both: a frame is raw speech when its score is above
//! `threshold` and its level is at least `min_level_dbfs`; speech is held for
//! `hangover_ms` after the last raw frame (silences shorter than that are bridged);
//! a run becomes speech once it has lasted `min_speech_ms` up to a raw frame (hangover
//! frames do not count), so shorter runs are dropped and decisions are delayed by that
//! much. `flush` decides what is held, closes the open segment and, for silero, scores
//! the last partial window padded with zeros; `reset` forgets the stream.

mod segments;
mod spectral;

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::caps::Caps;
use crate::data::{AudioBuffer, Data, Samples};
use crate::error::NodeFailure;
use crate::model::batch::Inference;
use crate::model::{SILERO_WINDOW, Silero, SileroState};
use crate::nodes::{Batchable, Emitter, Implementation, Node, NodeSpec, ParamError, parse_params};

use segments::{Segment, Segmenter};
use spectral::{FRAME_MS, RATES, Spectral};

/// Ports: per-chunk frame decisions, closed speech segments, and gated speech audio.
const PORT_SEGMENTS: usize = 1;
const PORT_AUDIO: usize = 2;

const ENGINES: [&str; 2] = ["spectral", "silero"];
/// The silero engine's rate and window length in ms.
const SILERO_RATE: u32 = 16000;
const SILERO_FRAME_MS: u32 = 32;

/// Frames a decision waits for at `rate`, at worst: a run not yet `min_speech_ms` long
/// is held until it is confirmed or ends, which its hangover may put off; `None` for a
/// rate the engine does not take.
fn decision_latency(p: &Params, rate: u32) -> Option<usize> {
    let silero = p.engine == "silero";
    let defaults = if silero { &SILERO } else { &SPECTRAL };
    let frame_ms = p.frame_ms.unwrap_or(defaults.frame_ms);
    let frame_len = match silero {
        true if rate == SILERO_RATE => SILERO_WINDOW,
        false if RATES.contains(&rate) && FRAME_MS.contains(&frame_ms) => (rate * frame_ms / 1000) as usize,
        _ => return None,
    };
    let run = min_run(p.min_speech_ms.unwrap_or(defaults.min_speech_ms), frame_ms);
    let hangover = u64::from(p.hangover_ms.unwrap_or(defaults.hangover_ms)).div_ceil(u64::from(frame_ms));
    Some(held_frames(run, hangover) as usize * frame_len - 1)
}

/// Most frames whose decision waits at once: one, or for runs that need confirming, the
/// first `min_run - 1` raw frames, the hangover after them, and the frame that ends it.
fn held_frames(min_run: u64, hangover: u64) -> u64 {
    if min_run > 1 { min_run + hangover } else { 1 }
}

/// Frames in a row that make a speech run.
fn min_run(min_speech_ms: u32, frame_ms: u32) -> u64 {
    u64::from(min_speech_ms).div_ceil(u64::from(frame_ms)).max(1)
}

/// The spectral engine's rates, the silero rate (the usual speech rate) first.
fn spectral_rates() -> Vec<u32> {
    std::iter::once(SILERO_RATE).chain(RATES.into_iter().filter(|&r| r != SILERO_RATE)).collect()
}

pub fn spec() -> NodeSpec {
    NodeSpec {
        node_type: "VAD".into(),
        description: "Voice activity detection (f32 mono): frame decisions and scores, speech segments, and optionally the speech audio. Engines: \"spectral\" (8/16/32/48 kHz, 10/20/30 ms frames) and \"silero\" (the silero VAD network run natively from model_path; 16 kHz, 32 ms windows).".into(),
        params_schema: json!({
            "type": "object",
            "properties": {
                "engine": {"enum": ENGINES, "default": ENGINES[0], "description": "what scores each frame"},
                "model_path": {"type": ["string", "null"], "description": "the silero engine's ONNX model (Python finds the silero-vad package's by itself)"},
                "frame_ms": {"enum": [10, 20, 30, SILERO_FRAME_MS, null], "description": "frame length: 10, 20 or 30 (spectral, default 30); 32 (silero, its only one)"},
                "threshold": {"type": ["number", "null"], "minimum": 0, "maximum": 1, "description": format!("score above which a frame is speech (default {} spectral, {} silero)", SPECTRAL.threshold, SILERO.threshold)},
                "hangover_ms": {"type": ["integer", "null"], "minimum": 0, "maximum": MAX_MS, "description": format!("speech is held this long after the last speech frame, so shorter silences are bridged (default {} spectral, {} silero)", SPECTRAL.hangover_ms, SILERO.hangover_ms)},
                "min_speech_ms": {"type": ["integer", "null"], "minimum": 0, "maximum": MAX_MS, "description": format!("shorter runs are not speech (default {} spectral, {} silero)", SPECTRAL.min_speech_ms, SILERO.min_speech_ms)},
                "min_silence_ms": {"type": ["integer", "null"], "minimum": 0, "maximum": MAX_MS, "description": format!("silences shorter than this inside a segment are bridged; frame decisions keep them (default {} spectral, {} silero)", SPECTRAL.min_silence_ms, SILERO.min_silence_ms)},
                "speech_pad_ms": {"type": ["integer", "null"], "minimum": 0, "maximum": MAX_MS, "description": format!("segments grow by this much on both sides; a gap they would overlap is split in its middle (default {} spectral, {} silero)", SPECTRAL.speech_pad_ms, SILERO.speech_pad_ms)},
                "max_speech_s": {"type": ["number", "null"], "exclusiveMinimum": 0, "maximum": MAX_SPEECH_S, "description": "segments longer than this are split at their quietest frame (default: no limit)"},
                "min_level_dbfs": {"type": ["number", "null"], "minimum": MIN_LEVEL_DBFS, "maximum": 0, "description": format!("frames quieter than this (RMS, dB full scale) are never speech (default {} spectral, none silero; {MIN_LEVEL_DBFS}: none)", SPECTRAL.min_level_dbfs)},
                "gate": {"type": "boolean", "default": DEFAULT_GATE}
            },
            "additionalProperties": false
        }),
        outputs: vec!["frames".into(), "segments".into(), "audio".into()],
        implementation: Implementation::Native,
        prefers_isolation: false,
        // a rate the engine does not take is converted to the first listed
        caps: Some(json!({
            "input": {"kind": "audio", "format": ["f32"], "channels": [1],
                      "sample_rate": {"param": "engine", "cases": {"silero": [SILERO_RATE]}, "default": spectral_rates()}},
            "outputs": {"frames": {"kind": "json"}, "segments": {"kind": "json"}, "audio": {}}
        })),
        latency: Some(Arc::new(|params, caps| decision_latency(&parse_params(params).ok()?, caps.rate()?))),
        create: Arc::new(|params| Ok(Box::new(Vad::new(parse_params(params)?)?))),
    }
}

/// Decision defaults of one engine, used for params left out (or null).
struct Defaults {
    frame_ms: u32,
    threshold: f64,
    /// Frames quieter than this are never speech (dBFS; [`MIN_LEVEL_DBFS`]: no floor).
    min_level_dbfs: f64,
    hangover_ms: u32,
    min_speech_ms: u32,
    min_silence_ms: u32,
    speech_pad_ms: u32,
}

/// The spectral engine's, fitted with its weights.
const SPECTRAL: Defaults = Defaults {
    frame_ms: 30,
    threshold: 0.6,
    // the spectral engine needs it: without it, quiet noise (−80 dBFS) is sometimes speech
    min_level_dbfs: -60.0,
    hangover_ms: 90,
    min_speech_ms: 60,
    min_silence_ms: SPECTRAL_MIN_SILENCE_MS,
    speech_pad_ms: 0,
};
/// silero's own: frame decisions are its per-window probabilities over its threshold
/// (no hangover, no minimum run), segments its `get_speech_timestamps` defaults
/// (min_silence_duration_ms 100, speech_pad_ms 30).
/// No level floor: silero called no quiet non-speech speech (white, pink, hum at −90 to
/// −40 dBFS), and a −60 dBFS floor dropped quiet telephone speech (docs/AUDIO.md).
const SILERO: Defaults = Defaults {
    frame_ms: SILERO_FRAME_MS,
    threshold: 0.5,
    min_level_dbfs: MIN_LEVEL_DBFS,
    hangover_ms: 0,
    min_speech_ms: 0,
    min_silence_ms: 100,
    speech_pad_ms: 30,
};
const DEFAULT_GATE: bool = false;
/// Largest `hangover_ms` and `min_speech_ms`.
const MAX_MS: u32 = 5000;
/// The spectral engine's segment bridging: pauses inside utterances run to a few
/// hundred ms; its frame decisions bridge only `hangover_ms`.
const SPECTRAL_MIN_SILENCE_MS: u32 = 300;
/// Largest `max_speech_s`: an hour.
const MAX_SPEECH_S: f64 = 3600.0;
/// Lowest `min_level_dbfs`: below any f32 signal's level, so the floor is off.
const MIN_LEVEL_DBFS: f64 = -200.0;

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields, default)]
struct Params {
    engine: String,
    model_path: Option<String>,
    frame_ms: Option<u32>,
    threshold: Option<f64>,
    hangover_ms: Option<u32>,
    min_speech_ms: Option<u32>,
    min_silence_ms: Option<u32>,
    speech_pad_ms: Option<u32>,
    max_speech_s: Option<f64>,
    min_level_dbfs: Option<f64>,
    gate: bool,
}

impl Default for Params {
    fn default() -> Self {
        Self {
            engine: ENGINES[0].into(),
            model_path: None,
            frame_ms: None,
            threshold: None,
            hangover_ms: None,
            min_speech_ms: None,
            min_silence_ms: None,
            speech_pad_ms: None,
            max_speech_s: None,
            min_level_dbfs: None,
            gate: DEFAULT_GATE,
        }
    }
}

/// What scores frames: the engine's per-stream state (silero's is out in an
/// [`Inference`] between `stage` and `complete`).
enum Scorer {
    Spectral(Box<Spectral>),
    Silero(Arc<Silero>, Option<Box<SileroState>>),
}

/// Why a silero state is missing: it left in an inference that never came back.
const STATE_LOST: &str = "the VAD's silero state was lost (an earlier batched inference did not finish)";

impl Scorer {
    /// Scores the frames of `staged` (whole frames of `frame_len`) into `scores`,
    /// directly (spectral), or through `inference` (silero; run already).
    fn scores(&mut self, staged: &[f32], frame_len: usize, inference: Option<Inference>, scores: &mut Vec<f32>) -> Result<(), NodeFailure> {
        match (self, inference) {
            (Scorer::Spectral(s), None) => {
                scores.clear();
                scores.extend(staged.chunks_exact(frame_len).map(|f| s.score(f)));
            }
            (Scorer::Silero(_, slot), Some(Inference::Silero { state, probs, .. })) => {
                *slot = Some(state);
                *scores = probs;
            }
            (Scorer::Silero(..), None) if staged.is_empty() => scores.clear(),
            _ => return Err(NodeFailure::broken(STATE_LOST)),
        }
        Ok(())
    }

    /// One padded frame scored alone (the silero tail at flush).
    fn score(&mut self, frame: &[f32]) -> Result<f32, NodeFailure> {
        match self {
            Scorer::Spectral(s) => Ok(s.score(frame)),
            Scorer::Silero(model, Some(state)) => Ok(crate::model::budget::run(|| model.forward(state, frame))),
            Scorer::Silero(_, None) => Err(NodeFailure::broken(STATE_LOST)),
        }
    }
}

/// Mean-square level of `frame` in dB full scale (−inf for digital silence).
fn level_dbfs(frame: &[f32]) -> f64 {
    let power = frame.iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>() / frame.len().max(1) as f64;
    10.0 * power.log10()
}

/// One frame's result, held until its decision is final.
struct Frame {
    index: u64,
    score: f32,
    /// At or above `min_level_dbfs`.
    loud: bool,
    audio: Option<Vec<f32>>,
}

struct Stream {
    rate: u32,
    frame_len: usize,
    scorer: Scorer,
    /// Samples not yet making a whole frame.
    pending: Vec<f32>,
    next_index: u64,
    /// Frames since the last frame above threshold (`None`: not in a run).
    since_raw: Option<u64>,
    /// First frame of the current run, and whether the run has been long enough
    /// (from its start to a frame above threshold) to be speech.
    run_start: Option<u64>,
    confirmed: bool,
    /// Frames of a run not yet long enough, held back.
    held: Vec<Frame>,
    segments: Segmenter,
    /// Whole frames of the chunk being processed, waiting for their scores.
    staged: Vec<f32>,
    scores: Vec<f32>,
}

struct Vad {
    params: Params,
    frame_ms: u32,
    threshold: f64,
    min_level_dbfs: f64,
    speech_pad_ms: u32,
    min_silence_ms: u32,
    max_speech_ms: Option<u64>,
    /// The silero model, loaded at creation (so a bad file fails validation).
    silero: Option<Arc<Silero>>,
    hangover: u64,
    min_run: u64,
    stream: Option<Stream>,
}

/// Frame decisions of one chunk, emitted together on the "frames" port.
#[derive(Default)]
struct Decisions {
    start_frame: Option<u64>,
    speech: Vec<bool>,
    score: Vec<f32>,
}

impl Vad {
    fn new(params: Params) -> Result<Self, ParamError> {
        let silero = params.engine == "silero";
        if !ENGINES.contains(&params.engine.as_str()) {
            return Err(ParamError::new("engine", format!("'{}' is not one of \"spectral\", \"silero\"", params.engine)));
        }
        let defaults = if silero { &SILERO } else { &SPECTRAL };
        let frame_ms = params.frame_ms.unwrap_or(defaults.frame_ms);
        let threshold = params.threshold.unwrap_or(defaults.threshold);
        let hangover_ms = params.hangover_ms.unwrap_or(defaults.hangover_ms);
        let min_speech_ms = params.min_speech_ms.unwrap_or(defaults.min_speech_ms);
        let speech_pad_ms = params.speech_pad_ms.unwrap_or(defaults.speech_pad_ms);
        let min_silence_ms = params.min_silence_ms.unwrap_or(defaults.min_silence_ms);
        match (silero, frame_ms) {
            (true, SILERO_FRAME_MS) => {}
            (true, ms) => {
                return Err(ParamError::new("frame_ms", format!("{ms} ms: the silero engine works on {SILERO_FRAME_MS} ms windows")));
            }
            (false, ms) if !FRAME_MS.contains(&ms) => {
                return Err(ParamError::new("frame_ms", format!("{ms} ms is not one of 10, 20, 30 (the spectral engine's frames)")));
            }
            _ => {}
        }
        if !(0.0..=1.0).contains(&threshold) {
            return Err(ParamError::new("threshold", format!("{threshold} is outside 0..=1")));
        }
        let min_level_dbfs = params.min_level_dbfs.unwrap_or(defaults.min_level_dbfs);
        if !(MIN_LEVEL_DBFS..=0.0).contains(&min_level_dbfs) {
            return Err(ParamError::new("min_level_dbfs", format!("{min_level_dbfs} is outside {MIN_LEVEL_DBFS}..=0")));
        }
        let max_speech_ms = match params.max_speech_s {
            Some(s) if !(s > 0.0 && s <= MAX_SPEECH_S) => {
                return Err(ParamError::new("max_speech_s", format!("{s} is outside (0, {MAX_SPEECH_S}]")));
            }
            s => s.map(|s| (s * 1000.0).round() as u64),
        };
        for (name, ms) in [
            ("hangover_ms", hangover_ms),
            ("min_speech_ms", min_speech_ms),
            ("speech_pad_ms", speech_pad_ms),
            ("min_silence_ms", min_silence_ms),
        ] {
            if ms > MAX_MS {
                return Err(ParamError::new(name, format!("{ms} is more than {MAX_MS}")));
            }
        }
        let model = match (silero, &params.model_path) {
            (true, Some(path)) => Some(crate::model::silero(path).map_err(|e| ParamError::new("model_path", e))?),
            (true, None) => {
                return Err(ParamError::new(
                    "model_path",
                    "the silero engine needs model_path, a silero VAD ONNX file (from Python, the silero-vad package's is found by itself: pip install 'remotemedia[silero]')",
                ));
            }
            (false, Some(_)) => return Err(ParamError::new("model_path", "only the silero engine takes a model")),
            (false, None) => None,
        };
        let frame = u64::from(frame_ms);
        Ok(Self {
            min_level_dbfs,
            hangover: u64::from(hangover_ms).div_ceil(frame),
            min_run: min_run(min_speech_ms, frame_ms),
            threshold,
            speech_pad_ms,
            min_silence_ms,
            max_speech_ms,
            params,
            frame_ms,
            silero: model,
            stream: None,
        })
    }

    fn start(&self, rate: u32) -> Result<Stream, NodeFailure> {
        let (scorer, frame_len) = match &self.silero {
            Some(model) if rate == SILERO_RATE => (Scorer::Silero(model.clone(), Some(Box::new(model.state()))), SILERO_WINDOW),
            Some(_) => return Err(NodeFailure::new(format!("VAD's silero engine takes 16000 Hz, got {rate}; resample first"))),
            None if RATES.contains(&rate) => {
                (Scorer::Spectral(Box::new(Spectral::new(rate, self.frame_ms))), (rate * self.frame_ms / 1000) as usize)
            }
            None => return Err(NodeFailure::new(format!("VAD takes 8000, 16000, 32000 or 48000 Hz, got {rate}; resample first"))),
        };
        Ok(Stream {
            rate,
            frame_len,
            scorer,
            pending: Vec::with_capacity(frame_len),
            next_index: 0,
            since_raw: None,
            run_start: None,
            confirmed: false,
            held: Vec::new(),
            segments: Segmenter::new(self.frame_ms, self.min_silence_ms, self.speech_pad_ms, self.max_speech_ms),
            staged: Vec::new(),
            scores: Vec::new(),
        })
    }

    /// Final decision for `frame`; emits segment and gated-audio events.
    fn decide(&self, stream: &mut Stream, frame: Frame, speech: bool, decisions: &mut Decisions, out: &mut Emitter) {
        decisions.start_frame.get_or_insert(frame.index);
        decisions.speech.push(speech);
        decisions.score.push(frame.score);
        let mut closed = Vec::new();
        stream.segments.frame(frame.index, speech, frame.score, &mut closed);
        Self::emit_segments(closed, out);
        if let (true, Some(samples)) = (speech, frame.audio)
            && let Ok(a) = AudioBuffer::new(Samples::F32(crate::data::SampleBuf::owned(samples)), 1, stream.rate)
        {
            out.emit_to(PORT_AUDIO, Data::Audio(a));
        }
    }

    /// Pushes the whole frame `samples` (of which the first `len` are audio, the rest
    /// padding), scored `score`, towards its decision.
    fn frame(&self, stream: &mut Stream, samples: &[f32], len: usize, score: f32, decisions: &mut Decisions, out: &mut Emitter) {
        let loud = self.loud(&samples[..len]);
        let index = stream.next_index;
        stream.next_index += 1;
        let audio = self.params.gate.then(|| samples[..len].to_vec());
        self.push_frame(stream, Frame { index, score, loud, audio }, decisions, out);
    }

    /// Whether `frame`'s level is at least `min_level_dbfs`. With the floor off
    /// (silero's default) one sample loud enough alone settles it, without the level of
    /// the whole frame: x² >= n · floor gives a mean square of at least the floor.
    fn loud(&self, frame: &[f32]) -> bool {
        if self.min_level_dbfs <= MIN_LEVEL_DBFS {
            let enough = (frame.len() as f64 * 10f64.powf(self.min_level_dbfs / 10.0)).sqrt() * (1.0 + 1e-9);
            if frame.iter().any(|&x| f64::from(x).abs() >= enough) {
                return true;
            }
        }
        level_dbfs(frame) >= self.min_level_dbfs
    }

    fn push_frame(&self, stream: &mut Stream, frame: Frame, decisions: &mut Decisions, out: &mut Emitter) {
        let raw = frame.loud && f64::from(frame.score) > self.threshold;
        stream.since_raw = match (raw, stream.since_raw) {
            (true, _) => Some(0),
            (false, Some(n)) if n < self.hangover => Some(n + 1),
            _ => None,
        };
        if stream.since_raw.is_none() {
            // The run (if any) ended: frames held for a short run are not speech.
            for held in std::mem::take(&mut stream.held) {
                self.decide(stream, held, false, decisions, out);
            }
            (stream.run_start, stream.confirmed) = (None, false);
            self.decide(stream, frame, false, decisions, out);
            return;
        }
        let start = *stream.run_start.get_or_insert(frame.index);
        if raw && frame.index - start + 1 >= self.min_run {
            stream.confirmed = true;
        }
        stream.held.push(frame);
        if stream.confirmed {
            for held in std::mem::take(&mut stream.held) {
                self.decide(stream, held, true, decisions, out);
            }
        }
    }

    /// The time of frame `index` in seconds: `index * frame_ms / 1000`, the one formula
    /// both runtimes use, so times print the same (0.03 * 97 would not).
    fn seconds(&self, index: u64) -> f64 {
        index as f64 * f64::from(self.frame_ms) / 1000.0
    }

    /// Emits segments in seconds: whole milliseconds / 1000, the one formula both
    /// runtimes use.
    fn emit_segments(segments: Vec<Segment>, out: &mut Emitter) {
        for s in segments {
            let (start, end) = (s.start_ms as f64 / 1000.0, s.end_ms as f64 / 1000.0);
            out.emit_to(PORT_SEGMENTS, Data::Json(Arc::new(json!({"start": start, "end": end}))));
        }
    }

    fn emit_decisions(&self, decisions: Decisions, out: &mut Emitter) {
        let Some(start) = decisions.start_frame else { return };
        // Built field by field into a map sized for them: one per chunk when streaming.
        let mut event = Map::with_capacity(4);
        event.insert("start".into(), self.seconds(start).into());
        event.insert("frame_ms".into(), self.frame_ms.into());
        event.insert("speech".into(), decisions.speech.into());
        event.insert("score".into(), decisions.score.into());
        out.emit(Data::Json(Arc::new(Value::Object(event))));
    }
}

impl Vad {
    /// The stream for a chunk of `audio`'s rate (made at the first chunk).
    fn stream_for(&mut self, audio: &AudioBuffer) -> Result<&mut Stream, NodeFailure> {
        if self.stream.is_none() {
            self.stream = Some(self.start(audio.sample_rate())?);
        }
        let stream = self.stream.as_mut().expect("set above");
        if audio.sample_rate() != stream.rate {
            return Err(NodeFailure::invalid_input(format!(
                "its input port in got a chunk of {} Hz; the stream is {} Hz (configured, or its first chunk)",
                audio.sample_rate(),
                stream.rate
            )));
        }
        Ok(stream)
    }
}

/// Reads a `frames` event of a VAD (as [`Vad::emit_decisions`] writes it): calls
/// `row(frame index, score, speech)` for each of its frames; false when `event` is not
/// one.
pub(crate) fn vad_frames(event: &Value, mut row: impl FnMut(u64, f32, bool)) -> bool {
    let (Some(start), Some(frame_ms), Some(speech), Some(score)) = (
        event.get("start").and_then(Value::as_f64),
        event.get("frame_ms").and_then(Value::as_u64).filter(|&ms| ms > 0),
        event.get("speech").and_then(Value::as_array),
        event.get("score").and_then(Value::as_array),
    ) else {
        return false;
    };
    // start is index · frame_ms / 1000 (`Vad::seconds`), so the index is exact after rounding
    let first = (start * 1000.0 / frame_ms as f64).round() as u64;
    for (i, (s, p)) in speech.iter().zip(score).enumerate() {
        row(first + i as u64, p.as_f64().unwrap_or(f64::NAN) as f32, s.as_bool().unwrap_or(false));
    }
    true
}

impl Batchable for Vad {
    /// Cuts the chunk into whole frames (a frame that straddles chunks is assembled in
    /// `pending`, which keeps its capacity) and stages them; silero's need inference.
    fn stage(&mut self, _port: usize, input: &Data) -> Result<Option<Inference>, NodeFailure> {
        let (audio, samples) = super::mono_f32(input, "VAD")?;
        let stream = self.stream_for(audio)?;
        let mut rest: &[f32] = samples;
        stream.staged.clear();
        while !rest.is_empty() {
            if stream.pending.is_empty() && rest.len() >= stream.frame_len {
                let whole = rest.len() / stream.frame_len * stream.frame_len;
                stream.staged.extend_from_slice(&rest[..whole]);
                rest = &rest[whole..];
                continue;
            }
            let take = (stream.frame_len - stream.pending.len()).min(rest.len());
            stream.pending.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if stream.pending.len() == stream.frame_len {
                stream.staged.extend_from_slice(&stream.pending);
                stream.pending.clear();
            }
        }
        Ok(match &mut stream.scorer {
            Scorer::Silero(model, state) if !stream.staged.is_empty() => Some(Inference::Silero {
                model: model.clone(),
                state: state.take().ok_or_else(|| NodeFailure::broken(STATE_LOST))?,
                windows: std::mem::take(&mut stream.staged),
                probs: {
                    stream.scores.clear();
                    std::mem::take(&mut stream.scores)
                },
            }),
            _ => None,
        })
    }

    /// Decides the staged frames in order, with their scores.
    fn complete(&mut self, mut inference: Option<Inference>, out: &mut Emitter) -> Result<(), NodeFailure> {
        let mut stream = self.stream.take().ok_or_else(|| NodeFailure::broken("VAD completed a chunk it did not stage"))?;
        if let Some(Inference::Silero { windows, .. }) = &mut inference {
            stream.staged = std::mem::take(windows);
        }
        let mut scores = std::mem::take(&mut stream.scores);
        let scored = stream.scorer.scores(&stream.staged, stream.frame_len, inference, &mut scores);
        if let Err(e) = scored {
            self.stream = Some(stream);
            return Err(e);
        }
        let mut decisions = Decisions::default();
        let staged = std::mem::take(&mut stream.staged);
        for (frame, &score) in staged.chunks_exact(stream.frame_len).zip(&scores) {
            self.frame(&mut stream, frame, frame.len(), score, &mut decisions, out);
        }
        (stream.staged, stream.scores) = (staged, scores);
        self.emit_decisions(decisions, out);
        self.stream = Some(stream);
        Ok(())
    }
}

impl Node for Vad {
    fn process(&mut self, input: &Data, out: &mut Emitter) -> Result<(), NodeFailure> {
        let mut inference = self.stage(0, input)?;
        if let Some(inference) = &mut inference {
            inference.run();
        }
        self.complete(inference, out)
    }

    fn as_batchable(&mut self) -> Option<&mut dyn Batchable> {
        if self.silero.is_some() { Some(self) } else { None }
    }

    /// Makes the engine's state and frame buffer for the negotiated rate, when known.
    fn configure(&mut self, inputs: &[Caps]) -> Result<(), NodeFailure> {
        if let Some(rate) = inputs[0].rate() {
            self.stream = Some(self.start(rate)?);
        }
        Ok(())
    }

    fn flush(&mut self, out: &mut Emitter) -> Result<(), NodeFailure> {
        let Some(mut stream) = self.stream.take() else { return Ok(()) };
        let mut decisions = Decisions::default();
        if matches!(stream.scorer, Scorer::Silero(..)) && !stream.pending.is_empty() {
            // the tail, padded with zeros to a whole window as silero's own tools do
            let mut tail = std::mem::take(&mut stream.pending);
            let len = tail.len();
            tail.resize(stream.frame_len, 0.0);
            let score = stream.scorer.score(&tail)?;
            self.frame(&mut stream, &tail, len, score, &mut decisions, out);
        }
        for held in std::mem::take(&mut stream.held) {
            self.decide(&mut stream, held, false, &mut decisions, out);
        }
        let mut closed = Vec::new();
        stream.segments.finish(stream.next_index, &mut closed);
        Self::emit_segments(closed, out);
        self.emit_decisions(decisions, out);
        // The stream is over; a chunk after this starts a new one at the same rate.
        self.stream = Some(self.start(stream.rate)?);
        Ok(())
    }

    fn reset(&mut self) -> Result<(), NodeFailure> {
        self.stream = None;
        Ok(())
    }

    fn latency(&self) -> usize {
        self.stream.as_ref().map_or(0, |s| held_frames(self.min_run, self.hangover) as usize * s.frame_len - 1)
    }
}
