//! Downmix: average all channels to mono, or map channels by index.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::json;

use crate::data::{AudioBuffer, Data, Sample, Samples};
use crate::error::NodeFailure;
use crate::nodes::{Emitter, Implementation, Node, NodeSpec, ParamError, no_latency, parse_params};

/// Most output channels of a channel map.
const MAX_CHANNELS: usize = 64;

pub fn spec() -> NodeSpec {
    NodeSpec {
        node_type: "Downmix".into(),
        description: "Mixes all channels to mono (float audio: left-to-right sum / n), or with `map` picks input channels by index for each output channel (any format).".into(),
        params_schema: json!({
            "type": "object",
            "properties": {"map": {"type": ["array", "null"], "items": {"type": "integer", "minimum": 0, "maximum": usize::MAX}, "minItems": 1, "maxItems": MAX_CHANNELS}},
            "additionalProperties": false
        }),
        outputs: vec!["out".into()],
        implementation: Implementation::Native,
        prefers_isolation: false,
        // without a map it mixes, which needs float samples
        caps: Some(json!({
            "input": {"kind": "audio", "format": {"param": "map", "set": "any", "default": ["f32", "f64"]}},
            "outputs": {"out": {"channels": {"param": "map", "len": true, "default": 1}}}
        })),
        latency: no_latency(),
        create: Arc::new(|params| {
            let p: Params = parse_params(params)?;
            if let Some(map) = &p.map
                && (map.is_empty() || map.len() > MAX_CHANNELS) {
                    return Err(ParamError::new("map", format!("map must list 1 to {MAX_CHANNELS} channels")));
                }
            Ok(Box::new(Downmix { map: p.map }))
        }),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    #[serde(default)]
    map: Option<Vec<usize>>,
}

struct Downmix {
    map: Option<Vec<usize>>,
}

fn mix<T: Copy + std::ops::Add<Output = T> + std::ops::Div<Output = T>>(x: &[T], channels: usize, n: T) -> Vec<T> {
    x.chunks_exact(channels).map(|frame| frame[1..].iter().fold(frame[0], |acc, &s| acc + s) / n).collect()
}

fn pick<T: Copy>(x: &[T], channels: usize, map: &[usize]) -> Vec<T> {
    let mut out = Vec::with_capacity(x.len() / channels * map.len());
    for frame in x.chunks_exact(channels) {
        out.extend(map.iter().map(|&c| frame[c]));
    }
    out
}

impl Node for Downmix {
    fn process(&mut self, input: &Data, out: &mut Emitter) -> Result<(), NodeFailure> {
        let audio = super::audio(input, "Downmix")?;
        let ch = audio.channels() as usize;
        let (samples, channels) = match &self.map {
            None if ch == 1 => {
                out.emit(input.clone());
                return Ok(());
            }
            None => {
                let mixed = match audio.samples() {
                    Samples::F32(b) => f32::wrap(mix(b, ch, ch as f32)),
                    Samples::F64(b) => f64::wrap(mix(b, ch, ch as f64)),
                    other => {
                        return Err(NodeFailure::new(format!(
                            "Downmix mixes float audio, got {:?}; convert first, or use `map` to pick channels",
                            other.format()
                        )));
                    }
                };
                (mixed, 1)
            }
            Some(map) => {
                if let Some(&bad) = map.iter().find(|&&c| c >= ch) {
                    return Err(NodeFailure::new(format!("map names channel {bad}, but the audio has {ch} channels")));
                }
                let picked = match audio.samples() {
                    Samples::F32(b) => f32::wrap(pick(b, ch, map)),
                    Samples::F64(b) => f64::wrap(pick(b, ch, map)),
                    Samples::I16(b) => i16::wrap(pick(b, ch, map)),
                    Samples::I32(b) => i32::wrap(pick(b, ch, map)),
                };
                (picked, map.len() as u16)
            }
        };
        let mixed = AudioBuffer::new(samples, channels, audio.sample_rate()).map_err(|e| NodeFailure::new(e.to_string()))?;
        out.emit(Data::Audio(mixed));
        Ok(())
    }
}
