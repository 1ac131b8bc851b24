//! Model: runs a frame-wise ONNX model (classifier, keyword spotter, embedding, filter,
//! denoiser) on windows of mono f32 audio, on the built-in engine or on onnxruntime
//! (`engine.rs` chooses and checks; `crate::model` loads, once per process).
//!
//! Windows of `window` samples start every `hop` samples from the stream's start. Each
//! input tensor holds `context` samples of the stream before the window (zeros before
//! its start), then the window, in the model's declared shape (unknown dimensions 1
//! except one that takes the rest). `state` pairs carry an output into an input from
//! window to window, zero at the start of each stream; `constants` feed fixed inputs.
//! Per window, each output tensor named in `output` (default: the model's first that
//! is not state) goes to its own port: a JSON event `{"start", "shape", "values"}`
//! (`emit` "json") or, flattened, audio at the input's rate (`emit` "audio").
//!
//! The window is bound as the input tensor without a copy when `context` is 0 and the
//! model takes float32; otherwise it is copied once per run (context prepended, or
//! converted). A stateless model with a dynamic first dimension runs the whole windows
//! of each chunk `batch` at a time (one-shot runs of files: one call per batch).
//! `flush` runs the last, partial window padded with zeros if it holds samples no window
//! has seen, then ends the stream (state back to zero); `reset` forgets the stream.

mod engine;

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::data::{AudioBuffer, Data, SampleBuf, Samples};
use crate::error::NodeFailure;
use crate::model::OPS;
use crate::model::tensor::Tensor;
use crate::nodes::{Emitter, Implementation, Node, NodeSpec, ParamError, parse_params};
use engine::{ENGINES, Engine, Outputs, Wants};

/// Largest `window`, `hop` and `context`, in samples.
const MAX_WINDOW: u64 = 1 << 20;
/// Largest `batch`, in windows.
const MAX_BATCH: u64 = 4096;
const DEFAULT_BATCH: u64 = 32;
const EMITS: [&str; 2] = ["json", "audio"];

pub fn spec() -> NodeSpec {
    NodeSpec {
        node_type: "Model".into(),
        description: format!(
            "Runs a frame-wise ONNX model on windows of f32 mono audio (any rate), on the built-in engine or on onnxruntime: per window each output tensor as a JSON event {{start, shape, values}}, or as audio; recurrent state carried per stream. Built-in engine operators: {}.",
            OPS.join(", ")
        ),
        params_schema: json!({
            "type": "object",
            "properties": {
                "model_path": {"type": "string", "description": "the ONNX file"},
                "window": {"type": "integer", "minimum": 1, "maximum": MAX_WINDOW, "description": "samples per window"},
                "hop": {"type": ["integer", "null"], "minimum": 1, "maximum": MAX_WINDOW, "description": "samples from one window's start to the next (default: window)"},
                "context": {"type": "integer", "minimum": 0, "maximum": MAX_WINDOW, "default": 0, "description": "samples of the stream before each window prepended to it (silero: 64)"},
                "input": {"type": ["string", "null"], "description": "the input tensor the audio fills (default: the model's first that is not state or a constant)"},
                "output": {"type": ["string", "array", "null"], "items": {"type": "string"}, "minItems": 1, "maxItems": 64, "description": "the output tensor, or a list of them, each then a port of its name (default: the model's first that is not state, on port out)"},
                "state": {"type": "array", "items": {"type": "array", "items": {"type": "string"}, "minItems": 2, "maxItems": 2}, "default": [], "description": "[input, output] pairs carried from window to window per stream, zero at its start"},
                "constants": {"type": "object", "default": {}, "description": "other inputs fed fixed values: a number or a list, typed as the model declares (e.g. {\"sr\": 16000})"},
                "engine": {"enum": ENGINES, "default": ENGINES[0], "description": "\"auto\": the built-in engine when it runs every operator, else onnxruntime; \"native\": built-in only; \"onnxruntime\""},
                "batch": {"type": "integer", "minimum": 1, "maximum": MAX_BATCH, "default": DEFAULT_BATCH, "description": "most windows per onnxruntime call for a stateless model with a dynamic first dimension"},
                "emit": {"enum": EMITS, "default": EMITS[0], "description": "\"json\": an event per window; \"audio\": the output as audio"}
            },
            "required": ["model_path", "window"],
            "additionalProperties": false
        }),
        outputs: vec!["out".into()],
        implementation: Implementation::Native,
        prefers_isolation: false,
        caps: Some(json!({
            "input": {"kind": "audio", "format": ["f32"], "channels": [1]},
            "output_ports": {"param": "output"},
            "outputs": {"out": {"kind": {"param": "emit", "cases": {"audio": "audio"}, "default": "json"}, "format": "f32", "channels": 1}}
        })),
        // a window is run once it is whole
        latency: Some(Arc::new(|params, _| Some(usize::try_from(parse_params::<Params>(params).ok()?.window).ok()?.saturating_sub(1)))),
        create: Arc::new(|params| Ok(Box::new(ModelNode::new(parse_params(params)?)?))),
    }
}

/// `output`: one tensor name or several.
#[derive(Deserialize)]
#[serde(untagged)]
enum Names {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    model_path: String,
    window: u64,
    hop: Option<u64>,
    #[serde(default)]
    context: u64,
    input: Option<String>,
    output: Option<Names>,
    #[serde(default)]
    state: Vec<(String, String)>,
    #[serde(default)]
    constants: Map<String, Value>,
    #[serde(default = "default_engine")]
    engine: String,
    #[serde(default = "default_batch")]
    batch: u64,
    #[serde(default = "default_emit")]
    emit: String,
}

fn default_emit() -> String {
    EMITS[0].into()
}

fn default_engine() -> String {
    ENGINES[0].into()
}

fn default_batch() -> u64 {
    DEFAULT_BATCH
}

/// The stream: its rate, samples not yet past (the next window starts at `pending[0]`),
/// how many of them a window has seen, samples still to skip (hop > window), the stream
/// position of `pending[0]`, the `context` samples before it, and the carried state.
struct Stream {
    rate: u32,
    pending: Vec<f32>,
    seen: usize,
    skip: usize,
    position: u64,
    before: Vec<f32>,
    state: Vec<Tensor>,
}

impl Stream {
    /// Moves the first `n` pending samples past, keeping the last `context` of the stream.
    fn advance(&mut self, n: usize, context: usize) {
        let kept = &self.pending[n.saturating_sub(context)..n];
        let from_before = context - kept.len();
        let drop = self.before.len().saturating_sub(from_before);
        self.before.drain(..drop);
        self.before.extend_from_slice(kept);
        self.pending.drain(..n);
        self.position += n as u64;
    }
}

struct ModelNode {
    engine: Engine,
    window: usize,
    hop: usize,
    context: usize,
    audio: bool,
    stream: Option<Stream>,
    /// Input tensors of a run, laid out one after another (when the window cannot be bound as it is).
    scratch: Vec<f32>,
}

impl ModelNode {
    fn new(params: Params) -> Result<Self, ParamError> {
        for (name, value) in [("window", Some(params.window)), ("hop", params.hop), ("context", Some(params.context.max(1)))] {
            if let Some(v) = value.filter(|&v| !(1..=MAX_WINDOW).contains(&v)) {
                return Err(ParamError::new(name, format!("{v} is outside 1..={MAX_WINDOW}")));
            }
        }
        if !(1..=MAX_BATCH).contains(&params.batch) {
            return Err(ParamError::new("batch", format!("{} is outside 1..={MAX_BATCH}", params.batch)));
        }
        let audio = match params.emit.as_str() {
            "json" => false,
            "audio" => true,
            other => return Err(ParamError::new("emit", format!("'{other}' is not one of \"json\", \"audio\""))),
        };
        let outputs = match params.output {
            None => Vec::new(),
            Some(Names::One(name)) => vec![name],
            Some(Names::Many(names)) if names.is_empty() => return Err(ParamError::new("output", "an empty list names no output")),
            Some(Names::Many(names)) => {
                if let Some(twice) = names.iter().enumerate().find(|(i, n)| names[..*i].contains(n)).map(|(_, n)| n) {
                    return Err(ParamError::new("output", format!("'{twice}' is listed twice; each output is one port")));
                }
                names
            }
        };
        let (window, context) = (params.window as usize, params.context as usize);
        let engine = Engine::new(&Wants {
            path: &params.model_path,
            engine: &params.engine,
            input: params.input.as_deref(),
            outputs: &outputs,
            state: &params.state,
            constants: &params.constants,
            samples: window + context,
            batch: params.batch as usize,
        })?;
        let hop = params.hop.unwrap_or(params.window) as usize;
        tracing::info!(model = %params.model_path, engine = engine.name(), "Model runs on the {} engine", engine.name());
        Ok(Self { engine, window, hop, context, audio, stream: None, scratch: Vec::new() })
    }

    fn emit(&self, stream: &Stream, start: u64, outputs: Outputs, out: &mut Emitter) -> Result<(), NodeFailure> {
        for (port, y) in outputs.into_iter().enumerate() {
            let data = if self.audio {
                let samples = Samples::F32(SampleBuf::owned(y.values.into_f32()));
                Data::Audio(AudioBuffer::new(samples, 1, stream.rate).map_err(|e| NodeFailure::new(e.to_string()))?)
            } else {
                let start = start as f64 / f64::from(stream.rate);
                Data::Json(Arc::new(json!({"start": start, "shape": y.shape, "values": y.values.to_f64()})))
            };
            out.emit_to(port, data);
        }
        Ok(())
    }

    /// Runs the windows of `stream.pending` that start at `starts` (at most one batch),
    /// with the context before each.
    fn run(&mut self, stream: &mut Stream, starts: &[usize], out: &mut Emitter) -> Result<(), NodeFailure> {
        let (window, context) = (self.window, self.context);
        let whole = starts.last().is_some_and(|&s| s + window <= stream.pending.len());
        let x: &[f32] = if starts.len() == 1 && context == 0 && whole {
            &stream.pending[starts[0]..starts[0] + window]
        } else {
            self.scratch.clear();
            for &s in starts {
                // context: the stream's samples before the window, zeros before its start
                let from_pending = s.min(context);
                let from_before = (context - from_pending).min(stream.before.len());
                self.scratch.resize(self.scratch.len() + context - from_pending - from_before, 0.0);
                self.scratch.extend_from_slice(&stream.before[stream.before.len() - from_before..]);
                self.scratch.extend_from_slice(&stream.pending[s - from_pending..s]);
                let end = (s + window).min(stream.pending.len());
                self.scratch.extend_from_slice(&stream.pending[s..end]);
                self.scratch.resize(self.scratch.len() + window - (end - s), 0.0);
            }
            &self.scratch
        };
        let results = self.engine.run(x, starts.len(), &mut stream.state).map_err(|e| NodeFailure::new(format!("Model: {e}")))?;
        for (&s, outputs) in starts.iter().zip(results) {
            self.emit(stream, stream.position + s as u64, outputs, out)?;
        }
        Ok(())
    }

    /// Runs every whole window in `stream.pending`, a batch at a time, then moves past
    /// the samples no later window needs (once: the buffer is not shifted per window).
    fn drain(&mut self, stream: &mut Stream, out: &mut Emitter) -> Result<(), NodeFailure> {
        let batch = match &self.engine {
            // a batch's input stays within the sample budget however much the windows overlap
            Engine::Ort(o) => o.batch.min((crate::budget::MAX_BUFFER_SAMPLES / (self.window + self.context)).max(1)),
            Engine::Builtin { .. } => 1,
        };
        let mut at = 0;
        let result = loop {
            let skip = stream.skip.min(stream.pending.len() - at);
            at += skip;
            stream.skip -= skip;
            if stream.skip > 0 || stream.pending.len() - at < self.window {
                break Ok(());
            }
            // whole windows from here, each hop after the last (hop ≤ window within a batch)
            let mut starts = vec![at];
            while starts.len() < batch && self.hop <= self.window {
                let next = starts[starts.len() - 1] + self.hop;
                if next + self.window > stream.pending.len() {
                    break;
                }
                starts.push(next);
            }
            if let Err(e) = self.run(stream, &starts, out) {
                break Err(e);
            }
            let step = self.hop.min(self.window);
            at = starts[starts.len() - 1] + step;
            stream.skip = self.hop - step;
            stream.seen = self.window - step;
        };
        stream.advance(at, self.context);
        result
    }
}

impl Node for ModelNode {
    fn process(&mut self, input: &Data, out: &mut Emitter) -> Result<(), NodeFailure> {
        let (audio, samples) = super::mono_f32(input, "Model")?;
        let rate = audio.sample_rate();
        let engine = &self.engine;
        let mut stream = self.stream.take().unwrap_or_else(|| Stream {
            rate,
            pending: Vec::new(),
            seen: 0,
            skip: 0,
            position: 0,
            before: Vec::new(),
            state: engine.state_zeros(),
        });
        let result = if stream.rate != rate {
            Err(NodeFailure::new("Model got a chunk whose rate differs from the stream's first"))
        } else {
            crate::budget::reserve(&mut stream.pending, samples.len(), "Model's pending samples").and_then(|()| {
                stream.pending.extend_from_slice(samples);
                self.drain(&mut stream, out)
            })
        };
        // a refused chunk leaves the stream as it was
        self.stream = Some(stream);
        result
    }

    fn flush(&mut self, out: &mut Emitter) -> Result<(), NodeFailure> {
        let Some(mut stream) = self.stream.take() else { return Ok(()) };
        if stream.skip == 0 && stream.pending.len() > stream.seen {
            self.run(&mut stream, &[0], out)?;
        }
        Ok(())
    }

    fn reset(&mut self) -> Result<(), NodeFailure> {
        self.stream = None;
        Ok(())
    }

    fn latency(&self) -> usize {
        self.window - 1
    }
}
