//! NoiseSuppressor: takes stationary and non-stationary noise out of a microphone
//! stream, on 10 ms frames (`apm/mod.rs`). Engines: `"webrtc"` (WebRTC's noise
//! suppressor from sonora; `level` low ≈ 6 dB, moderate ≈ 12 dB, high ≈ 18 dB,
//! very_high ≈ 21 dB; 16, 32 or 48 kHz) and `"rnnoise"` (RNNoise's recurrent network
//! from nnnoiseless, its weights built in; 48 kHz; no level). Both delay the audio by a
//! fixed amount (docs/AUDIO.md gives each).

use std::sync::Arc;

use nnnoiseless::DenoiseState;
use serde::Deserialize;
use serde_json::json;
use sonora::Config;
use sonora::config::{NoiseSuppression, NoiseSuppressionLevel};

use super::{RATES, Stream, Webrtc, lag, latency_of, mono_caps, stream_chunk, webrtc_delay};
use crate::data::Data;
use crate::error::NodeFailure;
use crate::nodes::{Emitter, Implementation, Node, NodeSpec, ParamError, parse_params};

const NODE: &str = super::NODE_TYPES[1];
/// RNNoise's one rate.
const RNNOISE_RATE: u32 = 48_000;
/// RNNoise works on 16-bit sample values in f32.
const RNNOISE_SCALE: f32 = 32_768.0;

pub fn spec() -> NodeSpec {
    NodeSpec {
        node_type: NODE.into(),
        description: "Noise suppression of mono f32 audio on 10 ms frames: engine \"webrtc\" (WebRTC's suppressor; 16, 32 or 48 kHz; level low, moderate, high or very_high) or \"rnnoise\" (RNNoise; 48 kHz). Output: the input cleaned, as many samples, delayed by the engine's fixed latency.".into(),
        params_schema: json!({
            "type": "object",
            "properties": {
                "engine": {"enum": ["webrtc", "rnnoise"], "default": "webrtc", "description": "\"webrtc\": WebRTC's noise suppressor (sonora); \"rnnoise\": RNNoise (nnnoiseless), 48 kHz only"},
                "level": {"enum": ["low", "moderate", "high", "very_high"], "description": "webrtc only: about 6, 12, 18 or 21 dB of suppression (default low)"}
            },
            "additionalProperties": false
        }),
        outputs: vec!["out".into()],
        implementation: Implementation::Native,
        prefers_isolation: false,
        caps: Some(json!({
            "input": mono_caps(json!({"param": "engine", "cases": {"rnnoise": [RNNOISE_RATE]}, "default": RATES})),
            "outputs": {"out": {}}
        })),
        latency: latency_of(|params, rate| match parse_params::<Params>(params) {
            Ok(p) => delay(p.engine, rate),
            Err(_) => 0,
        }),
        create: Arc::new(|params| {
            let p: Params = parse_params(params)?;
            if p.engine == EngineName::Rnnoise && p.level.is_some() {
                return Err(ParamError::new("level", "the rnnoise engine has no level; leave level out or use engine \"webrtc\""));
            }
            Ok(Box::new(Suppressor { params: p, stream: None }))
        }),
    }
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum EngineName {
    Webrtc,
    Rnnoise,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum Level {
    Low,
    Moderate,
    High,
    VeryHigh,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    #[serde(default = "default_engine")]
    engine: EngineName,
    level: Option<Level>,
}

fn default_engine() -> EngineName {
    EngineName::Webrtc
}

/// An engine's own delay at `rate`, in samples: WebRTC's suppressor 6 ms at 16 kHz,
/// RNNoise one frame.
fn delay(engine: EngineName, rate: u32) -> usize {
    match engine {
        EngineName::Webrtc => webrtc_delay(96, rate),
        EngineName::Rnnoise => DenoiseState::FRAME_SIZE,
    }
}

enum Engine {
    Webrtc(Box<Webrtc>),
    Rnnoise(Box<DenoiseState<'static>>, Vec<f32>),
}

impl Engine {
    fn new(params: &Params, rate: u32) -> Result<Self, NodeFailure> {
        match params.engine {
            EngineName::Webrtc => {
                let level = match params.level.unwrap_or(Level::Low) {
                    Level::Low => NoiseSuppressionLevel::Low,
                    Level::Moderate => NoiseSuppressionLevel::Moderate,
                    Level::High => NoiseSuppressionLevel::High,
                    Level::VeryHigh => NoiseSuppressionLevel::VeryHigh,
                };
                let config = Config { noise_suppression: Some(NoiseSuppression { level, ..Default::default() }), ..Default::default() };
                Ok(Engine::Webrtc(Box::new(Webrtc::new(config, rate))))
            }
            EngineName::Rnnoise if rate != RNNOISE_RATE => Err(NodeFailure::invalid_input(format!(
                "{NODE} engine \"rnnoise\" takes 48 kHz, got {rate} Hz; put a Resample before it (a pipeline's plan does)"
            ))),
            EngineName::Rnnoise => Ok(Engine::Rnnoise(DenoiseState::new(), vec![0.0; DenoiseState::FRAME_SIZE])),
        }
    }

    fn frame(&mut self, input: &[f32], output: &mut [f32]) -> Result<(), NodeFailure> {
        match self {
            Engine::Webrtc(w) => w.capture(input, output),
            Engine::Rnnoise(state, scaled) => {
                for (s, &x) in scaled.iter_mut().zip(input) {
                    *s = x * RNNOISE_SCALE;
                }
                state.process_frame(output, scaled);
                output.iter_mut().for_each(|y| *y /= RNNOISE_SCALE);
                Ok(())
            }
        }
    }
}

struct Suppressor {
    params: Params,
    stream: Option<Stream<Engine>>,
}

impl Node for Suppressor {
    fn process(&mut self, input: &Data, out: &mut Emitter) -> Result<(), NodeFailure> {
        let params = &self.params;
        let (samples, Stream { framer, engine }) = stream_chunk(input, &mut self.stream, NODE, |rate| Engine::new(params, rate))?;
        framer.run(samples, out, |i, o| engine.frame(i, o))
    }

    fn flush(&mut self, out: &mut Emitter) -> Result<(), NodeFailure> {
        if let Some(Stream { mut framer, mut engine }) = self.stream.take() {
            framer.finish(out, |i, o| engine.frame(i, o))?;
        }
        Ok(())
    }

    fn latency(&self) -> usize {
        self.stream.as_ref().map_or(0, |s| lag(s.framer.rate(), delay(self.params.engine, s.framer.rate())))
    }

    fn reset(&mut self) -> Result<(), NodeFailure> {
        self.stream = None;
        Ok(())
    }
}
