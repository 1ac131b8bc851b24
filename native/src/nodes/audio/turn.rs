//! SmartTurn: end-of-turn detection with the Smart Turn v3 model, following pipecat's
//! smart-turn analyzer.
//!
//! Input ports: `in`, 16 kHz mono f32 audio; `vad`, a VAD's `frames` events
//! (`{"start", "frame_ms", "speech": [...]}`). The node keeps 8 s of audio before the
//! VAD's latest frame (before any frame, or while the VAD lags, at most 120 s).
//! - With VAD frames: speech starting opens a turn from `pre_speech_ms` before it;
//!   speech ending (a speech frame followed by a non-speech one) evaluates the model on
//!   the turn's audio up to that point, its last `max_duration_s` (front-padded with
//!   zeros to 8 s), once that audio has arrived. A complete turn (probability above
//!   `threshold`) is closed; an incomplete one keeps its audio and is evaluated again at
//!   its next end of speech; `stop_s` of silence after speech closes it anyway
//!   (`"timeout": true`, no evaluation).
//! - Without VAD frames (a clip run once): `flush` evaluates the audio held, once.
//! - `flush` with VAD frames evaluates an open turn whose latest speech has not been
//!   evaluated yet, up to the end of the audio.
//!
//! Each decision is `{"start", "end", "probability", "end_of_turn", "timeout"}` (times in
//! seconds of the stream) on port `out`. Engines: `"native"` (the int8 forward in
//! `crate::model::smart_turn`), `"onnxruntime"` (same features, the model on
//! onnxruntime) and `"auto"` (default): native where the CPU has a VNNI or an AVX2
//! kernel (both sum as onnxruntime does on that CPU), else onnxruntime if it loads (the
//! portable kernel is about 13× slower), else native.

use std::collections::VecDeque;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::data::Data;
use crate::error::NodeFailure;
use crate::model::onnxruntime::{Feed, LoadError};
use crate::model::smart_turn::features_of;
use crate::model::tensor::Elem;
use crate::model::whisper_mel::{FRAMES, MELS, MelScratch, RATE, SAMPLES};
use crate::model::{OrtModel, SmartTurn};
use crate::nodes::{Emitter, Implementation, Node, NodeSpec, ParamError, no_latency, parse_params};

const ENGINES: [&str; 3] = ["auto", "native", "onnxruntime"];
const PORT_VAD: usize = 1;
/// Bounds of the time params, in seconds.
const MAX_STOP_S: f64 = 3600.0;
const MAX_PRE_SPEECH_MS: f64 = 8000.0;
/// Bounds of a frames event: its start (about 116 days), frame length and frame count.
const MAX_START_S: f64 = 1e7;
const MAX_FRAME_MS: f64 = 10_000.0;
const MAX_FRAMES: usize = 1_000_000;
/// Most audio held while the VAD lags behind it, or before a VAD frame has come (120 s,
/// 7.7 MB): beyond, the oldest goes.
const MAX_HELD: u64 = 120 * RATE as u64;

pub fn spec() -> NodeSpec {
    NodeSpec {
        node_type: "SmartTurn".into(),
        description: "End-of-turn detection with the Smart Turn v3 model (pipecat's smart-turn): 16 kHz mono audio on `in`, a VAD's frame decisions on `vad`; at each end of speech, the probability that the speaker's turn is complete. Without `vad`, flush judges the audio held once (a clip). Engines: \"auto\" (default: native where the CPU has AVX2 or VNNI, else onnxruntime), \"native\" (int8, kernels chosen for the CPU), \"onnxruntime\".".into(),
        params_schema: json!({
            "type": "object",
            "properties": {
                "model_path": {"type": ["string", "null"], "description": "the Smart Turn v3 ONNX file (Python finds pipecat-ai's smart-turn-v3.2-cpu.onnx by itself: pip install --no-deps pipecat-ai)"},
                "engine": {"enum": ENGINES, "default": ENGINES[0], "description": "what runs the model: \"auto\" is the native forward where the CPU has AVX2 or VNNI (its int8 kernels sum as onnxruntime's do on that CPU), else onnxruntime when it loads (the portable kernel is slower), else native"},
                "threshold": {"type": "number", "minimum": 0, "maximum": 1, "default": 0.5, "description": "a turn is complete when its probability is above this"},
                "pre_speech_ms": {"type": "number", "minimum": 0, "maximum": MAX_PRE_SPEECH_MS, "default": 500, "description": "audio kept from before speech starts"},
                "max_duration_s": {"type": "number", "exclusiveMinimum": 0, "maximum": 8, "default": 8, "description": "at most this much of a turn's end is judged"},
                "stop_s": {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_STOP_S, "default": 3, "description": "silence after speech that ends a turn without judging it"}
            },
            "additionalProperties": false
        }),
        outputs: vec!["out".into()],
        implementation: Implementation::Native,
        prefers_isolation: false,
        caps: Some(json!({
            "inputs": {
                "in": {"kind": "audio", "format": ["f32"], "channels": [1], "sample_rate": [RATE]},
                "vad": {"kind": "json"}
            },
            "outputs": {"out": {"kind": "json"}}
        })),
        latency: no_latency(),
        create: Arc::new(|params| Ok(Box::new(Turn::new(parse_params(params)?)?))),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    model_path: Option<String>,
    #[serde(default = "default_engine")]
    engine: String,
    #[serde(default = "default_threshold")]
    threshold: f64,
    #[serde(default = "default_pre_speech_ms")]
    pre_speech_ms: f64,
    #[serde(default = "default_max_duration_s")]
    max_duration_s: f64,
    #[serde(default = "default_stop_s")]
    stop_s: f64,
}

fn default_engine() -> String {
    ENGINES[0].into()
}
fn default_threshold() -> f64 {
    0.5
}
fn default_pre_speech_ms() -> f64 {
    500.0
}
fn default_max_duration_s() -> f64 {
    8.0
}
fn default_stop_s() -> f64 {
    3.0
}

/// What runs the model.
enum Engine {
    Native(Arc<SmartTurn>),
    /// The model, and this node's feature buffers (reused from one evaluation to the next).
    Ort(Arc<OrtModel>, Box<(MelScratch, Vec<f32>)>),
}

impl Engine {
    fn probability(&mut self, clip: &[f32]) -> Result<f32, NodeFailure> {
        match self {
            Engine::Native(model) => Ok(model.probabilities(&[clip])[0]),
            Engine::Ort(model, scratch) => {
                let (mel, features) = &mut **scratch;
                features.resize(MELS * FRAMES, 0.0);
                features_of(clip, mel, features);
                let shape = [1, MELS as i64, FRAMES as i64];
                let out = model
                    .run(&[(0, Feed::F32(&shape, features))], &[0])
                    .map_err(|e| NodeFailure::new(format!("SmartTurn: onnxruntime: {e}")))?;
                let values = out.into_iter().next().map(|t| t.values.into_f32()).unwrap_or_default();
                values.first().copied().ok_or_else(|| NodeFailure::new("SmartTurn: the model gave no probability"))
            }
        }
    }
}

fn samples_of(seconds: f64) -> u64 {
    (seconds * f64::from(RATE)).round() as u64
}

fn seconds(samples: u64) -> f64 {
    samples as f64 / f64::from(RATE)
}

/// One stream's state; positions are sample indices from the stream's start.
#[derive(Default)]
struct Stream {
    /// Audio held, its first sample at `base`.
    audio: VecDeque<f32>,
    base: u64,
    /// The end of the last VAD frame received.
    vad_end: u64,
    /// Whether any VAD frame came (then turns follow the VAD; else flush judges a clip).
    vad_seen: bool,
    in_speech: bool,
    /// The open turn's first sample.
    turn_start: Option<u64>,
    /// Where the latest speech ended (an evaluation up to there is due or done).
    speech_end: Option<u64>,
    /// An evaluation waiting for audio up to this position.
    due: Option<u64>,
}

impl Stream {
    fn received(&self) -> u64 {
        self.base + self.audio.len() as u64
    }
}

struct Turn {
    engine: Engine,
    threshold: f64,
    pre_speech: u64,
    max_duration: u64,
    stop: u64,
    stream: Stream,
}

fn native_engine(path: &str) -> Result<Engine, ParamError> {
    let model = crate::model::smart_turn(path).map_err(|e| ParamError::new("model_path", e))?;
    tracing::info!("SmartTurn: the native int8 forward, {} kernel", model.kernel().name());
    Ok(Engine::Native(model))
}

/// Engine "auto": native where the int8 kernel is fast (AVX2 or VNNI) and the forward
/// reads the file's graph (v3.1, v3.2), else onnxruntime (v3.0's graph; the portable
/// kernel) when it loads, else native; failing, the error that says most.
fn auto_engine(path: &str) -> Result<Engine, ParamError> {
    if crate::model::int8_kernel().is_ok_and(|k| k != crate::model::int8::Kernel::Portable) {
        return native_engine(path).or_else(|native| ort_engine(path).map_err(|e| if e.param == "engine" { native } else { e }));
    }
    match ort_engine(path) {
        Err(e) if e.param == "engine" => native_engine(path),
        other => other,
    }
}

fn ort_engine(path: &str) -> Result<Engine, ParamError> {
    let model = crate::model::onnxruntime(path).map_err(|e| match e {
        LoadError::File(e) => ParamError::new("model_path", e),
        LoadError::Library(e) => ParamError::new("engine", e),
    })?;
    let input = model.inputs.first().filter(|_| model.inputs.len() == 1);
    let shaped =
        input.is_some_and(|i| i.elem == Some(Elem::F32) && i.dims.len() == 3 && i.dims[1..] == [Some(MELS as i64), Some(FRAMES as i64)]);
    if !shaped || model.outputs.first().and_then(|o| o.elem) != Some(Elem::F32) {
        return Err(ParamError::new(
            "model_path",
            format!("'{path}' is not a Smart Turn v3 model: it does not take one [batch, 80, 800] float input to a float output"),
        ));
    }
    tracing::info!("SmartTurn: the model on onnxruntime");
    Ok(Engine::Ort(model, Box::default()))
}

impl Turn {
    fn new(p: Params) -> Result<Self, ParamError> {
        let path = p.model_path.as_deref().ok_or_else(|| {
            ParamError::new(
                "model_path",
                "SmartTurn needs the Smart Turn v3 model: give model_path (from Python, pipecat-ai's is found by itself: pip install --no-deps pipecat-ai)",
            )
        })?;
        let engine = match p.engine.as_str() {
            "native" => native_engine(path)?,
            "onnxruntime" => ort_engine(path)?,
            "auto" => auto_engine(path)?,
            other => {
                return Err(ParamError::new("engine", format!("'{other}' is not one of \"auto\", \"native\", \"onnxruntime\"")));
            }
        };
        let check = |name: &str, v: f64, ok: bool| {
            if ok && v.is_finite() { Ok(v) } else { Err(ParamError::new(name, format!("{v} is out of range"))) }
        };
        Ok(Self {
            engine,
            threshold: check("threshold", p.threshold, (0.0..=1.0).contains(&p.threshold))?,
            pre_speech: samples_of(check("pre_speech_ms", p.pre_speech_ms, (0.0..=MAX_PRE_SPEECH_MS).contains(&p.pre_speech_ms))? / 1000.0),
            max_duration: samples_of(check("max_duration_s", p.max_duration_s, p.max_duration_s > 0.0 && p.max_duration_s <= 8.0)?),
            stop: samples_of(check("stop_s", p.stop_s, p.stop_s > 0.0 && p.stop_s <= MAX_STOP_S)?),
            stream: Stream::default(),
        })
    }

    /// Judges the open turn's audio up to `end` and emits the decision.
    fn evaluate(&mut self, end: u64, out: &mut Emitter) -> Result<(), NodeFailure> {
        let s = &mut self.stream;
        let start = s.turn_start.unwrap_or(0).max(s.base).max(end.saturating_sub(self.max_duration)).min(end);
        let (from, to) = (start.saturating_sub(s.base) as usize, end.min(s.received()).saturating_sub(s.base) as usize);
        if from >= to {
            // its audio is gone: the VAD lagged more than MAX_HELD behind the audio
            tracing::warn!("SmartTurn: no audio left for the turn ending at {:.3} s; not judged", seconds(end));
            s.due = None;
            return Ok(());
        }
        // judged in place: the deque made contiguous (no copy kept per session)
        let probability = self.engine.probability(&s.audio.make_contiguous()[from..to])?;
        let complete = f64::from(probability) > self.threshold;
        let s = &mut self.stream;
        s.due = None;
        if complete {
            (s.turn_start, s.speech_end) = (None, None);
        }
        out.emit(Data::Json(Arc::new(json!({
            "start": seconds(start), "end": seconds(end), "probability": probability,
            "end_of_turn": complete, "timeout": false
        }))));
        Ok(())
    }

    /// Runs the evaluation due once its audio is in.
    fn run_due(&mut self, out: &mut Emitter) -> Result<(), NodeFailure> {
        match self.stream.due {
            Some(end) if end <= self.stream.received() => self.evaluate(end, out),
            _ => Ok(()),
        }
    }

    fn audio(&mut self, samples: &[f32], out: &mut Emitter) -> Result<(), NodeFailure> {
        let s = &mut self.stream;
        // exactly what is held (8 s and a chunk while following a VAD), not the doubling
        // a VecDeque grows by: a session costs its 8 s of audio
        s.audio.reserve_exact(samples.len());
        s.audio.extend(samples);
        let received = s.received();
        // an evaluation ends at or after the VAD's end; keep 8 s before it
        let keep_from = match s.vad_seen {
            true => s.vad_end.min(received).saturating_sub(SAMPLES as u64).max(received.saturating_sub(MAX_HELD)),
            false => received.saturating_sub(MAX_HELD),
        };
        let excess = keep_from.saturating_sub(s.base).min(s.audio.len() as u64);
        s.audio.drain(..excess as usize);
        s.base += excess;
        self.run_due(out)
    }

    fn frames(&mut self, event: &Value, out: &mut Emitter) -> Result<(), NodeFailure> {
        let bad = || {
            NodeFailure::invalid_input(format!(
                "SmartTurn's vad port takes a VAD's frames events ({{\"start\": 0..={MAX_START_S}, \"frame_ms\": 1..={MAX_FRAME_MS}, \"speech\": [up to {MAX_FRAMES} booleans]}})"
            ))
        };
        let start = event.get("start").and_then(Value::as_f64).filter(|s| (0.0..=MAX_START_S).contains(s)).ok_or_else(bad)?;
        let frame_ms = event.get("frame_ms").and_then(Value::as_f64).filter(|f| (1.0..=MAX_FRAME_MS).contains(f)).ok_or_else(bad)?;
        let speech = event.get("speech").and_then(Value::as_array).filter(|s| s.len() <= MAX_FRAMES).ok_or_else(bad)?;
        let flags: Vec<bool> = speech.iter().map(|v| v.as_bool().ok_or_else(bad)).collect::<Result<_, _>>()?;
        let speech_len = flags.len();
        self.stream.vad_seen = true;
        let frame = samples_of(frame_ms / 1000.0);
        let first = samples_of(start);
        for (i, speech) in flags.into_iter().enumerate() {
            let at = first + i as u64 * frame;
            let s = &mut self.stream;
            match (speech, s.in_speech) {
                (true, false) => {
                    s.in_speech = true;
                    s.speech_end = None;
                    s.turn_start.get_or_insert(at.saturating_sub(self.pre_speech));
                }
                (false, true) => {
                    s.in_speech = false;
                    s.speech_end = Some(at);
                    s.due = Some(at);
                    self.run_due(out)?;
                }
                (false, false) => {
                    if let (Some(turn), Some(end)) = (s.turn_start, s.speech_end)
                        && s.due.is_none()
                        && at + frame >= end + self.stop
                    {
                        out.emit(Data::Json(Arc::new(json!({
                            "start": seconds(turn), "end": seconds(end), "probability": null,
                            "end_of_turn": true, "timeout": true
                        }))));
                        (s.turn_start, s.speech_end) = (None, None);
                    }
                }
                (true, true) => {}
            }
        }
        self.stream.vad_end = first + speech_len as u64 * frame;
        Ok(())
    }
}

impl Node for Turn {
    fn process(&mut self, input: &Data, out: &mut Emitter) -> Result<(), NodeFailure> {
        self.process_port(0, input, out)
    }

    fn process_port(&mut self, port: usize, input: &Data, out: &mut Emitter) -> Result<(), NodeFailure> {
        match (port, input) {
            (PORT_VAD, Data::Json(event)) => self.frames(event, out),
            (PORT_VAD, Data::Audio(_)) => Err(NodeFailure::invalid_input("SmartTurn's vad port takes a VAD's frames events, got audio")),
            (_, input) => {
                let (audio, samples) = super::mono_f32(input, "SmartTurn")?;
                if audio.sample_rate() != RATE {
                    return Err(NodeFailure::invalid_input(format!(
                        "SmartTurn takes {RATE} Hz, got {}; resample first",
                        audio.sample_rate()
                    )));
                }
                self.audio(samples, out)
            }
        }
    }

    fn flush(&mut self, out: &mut Emitter) -> Result<(), NodeFailure> {
        let s = &self.stream;
        let end = s.received();
        let result = if !s.vad_seen {
            if end > 0 { self.evaluate(end, out) } else { Ok(()) }
        } else if let Some(due) = s.due {
            self.evaluate(due, out)
        } else if s.in_speech && s.turn_start.is_some() {
            self.evaluate(end, out)
        } else {
            Ok(())
        };
        self.stream = Stream::default();
        result
    }

    fn reset(&mut self) -> Result<(), NodeFailure> {
        self.stream = Stream::default();
        Ok(())
    }
}
