//! Resample: band-limited sample-rate conversion by FFT overlap-add filtering
//! (`design` sizes the filter and blocks, `engine` runs them).
//!
//! Input is cut into fixed blocks whatever the incoming chunk sizes, so chunked and
//! one-shot processing give identical output. The filter's delay is trimmed from the
//! start: output is time-aligned with input, and after `flush` a stream of `n` input
//! frames has produced exactly `ceil(n * target_rate / input_rate)` frames.

mod design;
mod engine;

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::budget;
use crate::caps::Caps;
use crate::data::{AudioBuffer, Data, Sample};
use crate::error::NodeFailure;
use crate::nodes::{Emitter, Implementation, Node, NodeSpec, ParamError, parse_params};
use engine::{Engine, Kernel};

/// Supported rates, input and output.
pub const RATES: std::ops::RangeInclusive<u32> = 8000..=192_000;

pub fn spec() -> NodeSpec {
    NodeSpec {
        node_type: "Resample".into(),
        description: "Converts the sample rate of f32 audio (8-192 kHz, any channel count); quality fast, balanced or high (see docs/PERFORMANCE.md for measured figures).".into(),
        params_schema: json!({
            "type": "object",
            "properties": {
                "target_rate": {"type": "integer", "minimum": RATES.start(), "maximum": RATES.end()},
                "quality": {"enum": [Quality::Fast, Quality::Balanced, Quality::High], "default": Quality::default()}
            },
            "required": ["target_rate"],
            "additionalProperties": false
        }),
        outputs: vec!["out".into()],
        implementation: Implementation::Native,
        prefers_isolation: false,
        caps: Some(json!({
            "input": {"kind": "audio", "format": ["f32"], "sample_rate": {"min": RATES.start(), "max": RATES.end()}},
            "outputs": {"out": {"sample_rate": {"param": "target_rate"}}}
        })),
        // a block plus the filter delay
        latency: Some(Arc::new(|params, caps| {
            let p: Params = parse_params(params).ok()?;
            let rate = caps.rate().filter(|r| RATES.contains(r))?;
            Some(if rate == p.target_rate { 0 } else { design::design(rate, p.target_rate, p.quality).latency() })
        })),
        create: Arc::new(|params| {
            let p: Params = parse_params(params)?;
            if !RATES.contains(&p.target_rate) {
                return Err(ParamError::new("target_rate", format!("{} Hz is outside {RATES:?}", p.target_rate)));
            }
            Ok(Box::new(Resample { target_rate: p.target_rate, quality: p.quality, state: None }))
        }),
    }
}

/// Quality presets: the filter's passband and stopband attenuation (see `design::preset`).
#[derive(Serialize, Deserialize, Clone, Copy, Default, Debug, PartialEq)]
#[serde(rename_all = "lowercase")]
pub enum Quality {
    Fast,
    Balanced,
    #[default]
    High,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    target_rate: u32,
    #[serde(default)]
    quality: Quality,
}

struct Resample {
    target_rate: u32,
    quality: Quality,
    /// Kept across `reset` (buffers cleared), so that the next stream at the same
    /// rate and channel count needs no new filter, plans or buffers.
    state: Option<State>,
}

struct State {
    input_rate: u32,
    channels: usize,
    /// `None` when the rates are equal: audio passes through.
    engine: Option<Engine>,
    /// Whether the current stream has had a chunk (which fixes its rate and channels).
    started: bool,
}

impl Resample {
    fn start_at(&self, input_rate: u32, channels: usize) -> Result<State, NodeFailure> {
        if !RATES.contains(&input_rate) {
            return Err(NodeFailure::new(format!("input rate {input_rate} Hz is outside 8000..=192000")));
        }
        if input_rate == self.target_rate {
            return Ok(State { input_rate, channels, engine: None, started: true });
        }
        let d = design::design(input_rate, self.target_rate, self.quality);
        // Pending input, tails and the FFT buffers: about two blocks of each length.
        budget::samples("Resample state", 2 * (d.n_in + d.n_out), channels)?;
        Ok(State { input_rate, channels, engine: Some(Engine::new(Arc::new(Kernel::new(&d)), channels)), started: true })
    }

    fn emit(&self, state: &State, samples: Vec<f32>, out: &mut Emitter) -> Result<(), NodeFailure> {
        if samples.is_empty() {
            return Ok(());
        }
        let audio =
            AudioBuffer::new(f32::wrap(samples), state.channels as u16, self.target_rate).map_err(|e| NodeFailure::new(e.to_string()))?;
        out.emit(Data::Audio(audio));
        Ok(())
    }
}

impl Node for Resample {
    fn process(&mut self, input: &Data, out: &mut Emitter) -> Result<(), NodeFailure> {
        let audio = super::audio(input, "Resample")?;
        let samples = super::f32_samples(audio, "Resample")?;
        super::finite(samples, "Resample")?;
        let format = (audio.sample_rate(), audio.channels() as usize);
        match &mut self.state {
            Some(s) if (s.input_rate, s.channels) == format => s.started = true,
            Some(s) if s.started => {
                return Err(NodeFailure::invalid_input(format!(
                    "its input port in got a chunk of {} Hz, {} ch; the stream is {} Hz, {} ch (configured, or its first chunk)",
                    format.0, format.1, s.input_rate, s.channels
                )));
            }
            _ => self.state = Some(self.start_at(format.0, format.1)?),
        }
        let state = self.state.as_mut().expect("set above");
        let Some(engine) = state.engine.as_mut() else {
            out.emit(input.clone());
            return Ok(());
        };
        let mut resampled = Vec::new();
        engine.process(samples, &mut resampled)?;
        let state = self.state.as_ref().expect("set above");
        self.emit(state, resampled, out)
    }

    /// Sizes the filter and its buffers for the negotiated rate and channels, when known.
    fn configure(&mut self, inputs: &[Caps]) -> Result<(), NodeFailure> {
        let (Some(rate), Some(channels)) = (inputs[0].rate(), inputs[0].channels()) else { return Ok(()) };
        let channels = usize::from(channels);
        if !matches!(&self.state, Some(s) if (s.input_rate, s.channels) == (rate, channels)) {
            self.state = Some(self.start_at(rate, channels)?);
        }
        self.state.as_mut().expect("set above").started = true;
        Ok(())
    }

    fn flush(&mut self, out: &mut Emitter) -> Result<(), NodeFailure> {
        let Some(state) = self.state.as_mut() else { return Ok(()) };
        let Some(engine) = state.engine.as_mut() else { return Ok(()) };
        let wanted = (engine.frames_in * u64::from(self.target_rate)).div_ceil(u64::from(state.input_rate));
        let mut resampled = Vec::new();
        while engine.frames_out < wanted {
            engine.pad_block(&mut resampled)?;
        }
        let excess = (engine.frames_out - wanted) as usize;
        resampled.truncate(resampled.len() - excess * state.channels);
        let state = self.state.as_ref().expect("set above");
        self.emit(state, resampled, out)?;
        // The stream is over; a chunk after this starts a new one at the same rates.
        if let Some(engine) = self.state.as_mut().and_then(|s| s.engine.as_mut()) {
            engine.restart();
        }
        Ok(())
    }

    fn reset(&mut self) -> Result<(), NodeFailure> {
        if let Some(state) = &mut self.state {
            state.started = false;
            if let Some(engine) = &mut state.engine {
                engine.restart();
            }
        }
        Ok(())
    }

    /// A block to fill plus the filter's delay, in output frames.
    fn latency(&self) -> usize {
        self.state.as_ref().filter(|s| s.started).and_then(|s| s.engine.as_ref()).map_or(0, |e| e.hop_out() + e.delay())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{SampleBuf, Samples};

    fn node(target: u32, quality: Quality) -> Resample {
        Resample { target_rate: target, quality, state: None }
    }

    fn run(node: &mut Resample, input: &[f32], rate: u32, chunk: usize) -> Vec<f32> {
        let mut e = Emitter::default();
        for c in input.chunks(chunk.max(1)) {
            let a = AudioBuffer::new(Samples::F32(SampleBuf::owned(c.to_vec())), 1, rate).unwrap();
            node.process(&Data::Audio(a), &mut e).unwrap();
        }
        node.flush(&mut e).unwrap();
        e.take()
            .into_iter()
            .flat_map(|(_, d)| match d {
                Data::Audio(a) => match a.samples() {
                    Samples::F32(b) => b.to_vec(),
                    _ => unreachable!(),
                },
                Data::Json(_) => unreachable!(),
            })
            .collect()
    }

    #[test]
    fn huge_finite_samples_are_resampled_not_refused() {
        // near f32's largest: an unscaled FFT of them overflows to inf and NaN
        for v in [1e36f32, 3e38, f32::MAX] {
            let x: Vec<f32> = (0..9_600).map(|i| if i % 3 == 0 { -v } else { v }).collect();
            let y = run(&mut node(16_000, Quality::High), &x, 48_000, 4_800);
            assert_eq!(y.len(), 3_200);
            assert!(y.iter().all(|s| !s.is_nan()), "{v}");
        }
    }

    #[test]
    fn length_is_conserved_and_chunking_does_not_matter() {
        let x: Vec<f32> = (0..10_007).map(|i| (i as f32 * 0.05).sin() * 0.5).collect();
        let mut n = node(16_000, Quality::High);
        let one = run(&mut n, &x, 48_000, x.len());
        assert_eq!(one.len(), 10_007usize.div_ceil(3));
        let d = design::design(48_000, 16_000, Quality::High);
        assert_eq!(n.latency(), d.hop_out + d.delay, "a block plus the filter delay");
        assert_eq!(run(&mut n, &x, 48_000, 1000), one, "a stream after flush starts afresh");
        for chunk in [1, 7, 480, 3000] {
            assert_eq!(run(&mut node(16_000, Quality::High), &x, 48_000, chunk), one, "chunk {chunk}");
        }
        let up = run(&mut node(44_100, Quality::Fast), &x, 16_000, 333);
        assert_eq!(up.len(), (10_007u64 * 44_100).div_ceil(16_000) as usize);
    }

    #[test]
    fn output_is_time_aligned() {
        // A slow sine keeps its phase: the delay has been trimmed.
        let x: Vec<f32> = (0..48_000).map(|i| (2.0 * std::f32::consts::PI * 100.0 * i as f32 / 48_000.0).sin()).collect();
        let y = run(&mut node(16_000, Quality::High), &x, 48_000, 960);
        for (k, &v) in y.iter().enumerate().skip(2000).take(1000) {
            let expected = (2.0 * std::f32::consts::PI * 100.0 * k as f32 / 16_000.0).sin();
            assert!((v - expected).abs() < 1e-3, "frame {k}: {v} vs {expected}");
        }
    }
}
