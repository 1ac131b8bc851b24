//! Model: runs a frame-wise ONNX model (classifier, keyword spotter, embedding, filter)
//! on windows of mono f32 audio, with the generic engine of `crate::model`.
//!
//! Windows of `window` samples start every `hop` samples from the stream's start; each
//! window fills the model's input tensor (its declared shape, with every unknown
//! dimension 1 except one that takes the rest). Per window the output tensor is emitted
//! as a JSON event `{"start", "shape", "values"}` (`emit` "json") or, flattened, as
//! audio at the input's rate (`emit` "audio"). `flush` runs the last, partial window
//! padded with zeros if it holds samples no window has seen; `reset` forgets the stream.
//! The model is loaded when the pipeline is built (a bad file, an unsupported operator
//! or a window the input cannot take is a params error then) and shared by every node
//! that names the same file.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::json;

use crate::data::{AudioBuffer, Data, SampleBuf, Samples};
use crate::error::NodeFailure;
use crate::model::{Array, Graph, OPS};
use crate::nodes::{Emitter, Implementation, Node, NodeSpec, ParamError, parse_params};

/// Largest `window` and `hop`, in samples.
const MAX_WINDOW: u64 = 1 << 20;
const EMITS: [&str; 2] = ["json", "audio"];

pub fn spec() -> NodeSpec {
    NodeSpec {
        node_type: "Model".into(),
        description: format!(
            "Runs a frame-wise ONNX model on windows of f32 mono audio (any rate): per window the output tensor as a JSON event {{start, shape, values}}, or as audio. Built-in engine operators: {}.",
            OPS.join(", ")
        ),
        params_schema: json!({
            "type": "object",
            "properties": {
                "model_path": {"type": "string", "description": "the ONNX file"},
                "window": {"type": "integer", "minimum": 1, "maximum": MAX_WINDOW, "description": "samples per window"},
                "hop": {"type": ["integer", "null"], "minimum": 1, "maximum": MAX_WINDOW, "description": "samples from one window's start to the next (default: window)"},
                "input": {"type": ["string", "null"], "description": "the input tensor (default: the model's first)"},
                "output": {"type": ["string", "null"], "description": "the output tensor (default: the model's first)"},
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
            "outputs": {"out": {"kind": {"param": "emit", "cases": {"audio": "audio"}, "default": "json"}, "format": "f32", "channels": 1}}
        })),
        // a window is run once it is whole
        latency: Some(Arc::new(|params, _| Some(usize::try_from(parse_params::<Params>(params).ok()?.window).ok()?.saturating_sub(1)))),
        create: Arc::new(|params| Ok(Box::new(ModelNode::new(parse_params(params)?)?))),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    model_path: String,
    window: u64,
    hop: Option<u64>,
    input: Option<String>,
    output: Option<String>,
    #[serde(default = "default_emit")]
    emit: String,
}

fn default_emit() -> String {
    EMITS[0].into()
}

/// The stream: its rate, samples not yet past (the next window starts at `pending[0]`),
/// how many of them a window has seen, samples still to skip (hop > window), and the
/// stream position of `pending[0]`.
struct Stream {
    rate: u32,
    pending: Vec<f32>,
    seen: usize,
    skip: usize,
    position: u64,
}

struct ModelNode {
    graph: Arc<Graph>,
    shape: Vec<usize>,
    window: usize,
    hop: usize,
    audio: bool,
    stream: Option<Stream>,
}

impl ModelNode {
    fn new(params: Params) -> Result<Self, ParamError> {
        for (name, value) in [("window", Some(params.window)), ("hop", params.hop)] {
            if let Some(v) = value.filter(|&v| !(1..=MAX_WINDOW).contains(&v)) {
                return Err(ParamError::new(name, format!("{v} is outside 1..={MAX_WINDOW}")));
            }
        }
        let audio = match params.emit.as_str() {
            "json" => false,
            "audio" => true,
            other => return Err(ParamError::new("emit", format!("'{other}' is not one of \"json\", \"audio\""))),
        };
        let graph = crate::model::graph(&params.model_path, params.input.as_deref(), params.output.as_deref())
            .map_err(|e| ParamError::new("model_path", e))?;
        let window = params.window as usize;
        let shape = fit(&graph.input_dims, window).map_err(|e| ParamError::new("window", e))?;
        // one run on silence now, so a model whose shapes do not fit fails validation
        graph
            .run(Array { shape: shape.clone(), data: vec![0.0; window] })
            .map_err(|e| ParamError::new("window", format!("the model does not run on a window of {window} samples: {e}")))?;
        Ok(Self { graph, shape, window, hop: params.hop.unwrap_or(params.window) as usize, audio, stream: None })
    }

    fn run(&self, stream: &Stream, samples: &[f32], out: &mut Emitter) -> Result<(), NodeFailure> {
        let y = self
            .graph
            .run(Array { shape: self.shape.clone(), data: samples.to_vec() })
            .map_err(|e| NodeFailure::new(format!("Model: {e}")))?;
        if self.audio {
            let audio =
                AudioBuffer::new(Samples::F32(SampleBuf::owned(y.data)), 1, stream.rate).map_err(|e| NodeFailure::new(e.to_string()))?;
            out.emit(Data::Audio(audio));
        } else {
            let start = stream.position as f64 / f64::from(stream.rate);
            out.emit(Data::Json(Arc::new(json!({"start": start, "shape": y.shape, "values": y.data}))));
        }
        Ok(())
    }

    /// Runs every whole window in `stream.pending`.
    fn drain(&self, stream: &mut Stream, out: &mut Emitter) -> Result<(), NodeFailure> {
        loop {
            let skip = stream.skip.min(stream.pending.len());
            stream.pending.drain(..skip);
            stream.skip -= skip;
            stream.position += skip as u64;
            if stream.skip > 0 || stream.pending.len() < self.window {
                return Ok(());
            }
            self.run(stream, &stream.pending[..self.window], out)?;
            let step = self.hop.min(self.window);
            stream.pending.drain(..step);
            stream.position += step as u64;
            stream.skip = self.hop - step;
            stream.seen = self.window - step;
        }
    }
}

/// The input shape for a window of `window` samples: the declared dimensions, unknown
/// ones 1 except one that takes what the known ones leave.
fn fit(dims: &[Option<i64>], window: usize) -> Result<Vec<usize>, String> {
    let known: usize = dims.iter().filter_map(|d| d.filter(|&d| d > 0)).map(|d| d as usize).product();
    let mut shape: Vec<usize> = dims.iter().map(|d| d.filter(|&d| d > 0).map_or(1, |d| d as usize)).collect();
    match dims.iter().rposition(|d| d.is_none_or(|d| d <= 0)) {
        _ if dims.is_empty() => Ok(vec![window]),
        Some(free) if window % known == 0 => {
            shape[free] = window / known;
            Ok(shape)
        }
        None if known == window => Ok(shape),
        _ => Err(format!("the model's input has shape {dims:?}, which does not take a window of {window} samples")),
    }
}

impl Node for ModelNode {
    fn process(&mut self, input: &Data, out: &mut Emitter) -> Result<(), NodeFailure> {
        let (audio, samples) = super::mono_f32(input, "Model")?;
        let rate = audio.sample_rate();
        let stream = self.stream.get_or_insert_with(|| Stream { rate, pending: Vec::new(), seen: 0, skip: 0, position: 0 });
        if stream.rate != rate {
            return Err(NodeFailure::new("Model got a chunk whose rate differs from the stream's first"));
        }
        let mut stream = self.stream.take().expect("set above");
        stream.pending.extend_from_slice(samples);
        let result = self.drain(&mut stream, out);
        self.stream = Some(stream);
        result
    }

    fn flush(&mut self, out: &mut Emitter) -> Result<(), NodeFailure> {
        let Some(stream) = self.stream.take() else { return Ok(()) };
        if stream.skip == 0 && stream.pending.len() > stream.seen {
            let mut last = stream.pending.clone();
            last.resize(self.window, 0.0);
            self.run(&stream, &last, out)?;
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

#[cfg(test)]
mod tests {
    use super::fit;

    #[test]
    fn windows_fit_the_declared_input() {
        assert_eq!(fit(&[Some(1), Some(400)], 400), Ok(vec![1, 400]));
        assert_eq!(fit(&[None, Some(1), None], 400), Ok(vec![1, 1, 400]));
        assert_eq!(fit(&[], 400), Ok(vec![400]));
        assert!(fit(&[Some(1), Some(512)], 400).is_err());
        assert!(fit(&[None, Some(3)], 400).is_err());
    }
}
