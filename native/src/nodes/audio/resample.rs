//! Resample: band-limited sample-rate conversion on rubato's synchronous FFT resampler.
//!
//! Input is cut into fixed blocks whatever the incoming chunk sizes, so chunked and
//! one-shot processing give identical output. The resampler's delay is trimmed from
//! the start: output is time-aligned with input, and after `flush` a stream of `n`
//! input frames has produced exactly `ceil(n * target_rate / input_rate)` frames.

use std::sync::Arc;

use rubato::{FftFixedInOut, Resampler as _};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::budget;
use crate::data::{AudioBuffer, Data, Sample, pooled_vec};
use crate::error::NodeFailure;
use crate::nodes::{Emitter, Implementation, Node, NodeSpec, ParamError, parse_params};

/// The resampler's state per channel, in blocks of `block_in + block_out` samples
/// (pending input, output, the FFT buffers and the overlap), for the memory budget.
const STATE_BLOCKS: usize = 4;

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
        create: Arc::new(|params| {
            let p: Params = parse_params(params)?;
            if !RATES.contains(&p.target_rate) {
                return Err(ParamError::new("target_rate", format!("{} Hz is outside {RATES:?}", p.target_rate)));
            }
            Ok(Box::new(Resample { target_rate: p.target_rate, quality: p.quality, state: None }))
        }),
    }
}

/// Quality presets: FFT block length on the lower-rate side, which is also the length
/// of the anti-aliasing filter there.
#[derive(Serialize, Deserialize, Clone, Copy, Default, Debug, PartialEq)]
#[serde(rename_all = "lowercase")]
pub enum Quality {
    Fast,
    Balanced,
    #[default]
    High,
}

impl Quality {
    /// Minimum block length, in frames at the lower of the two rates.
    pub fn block_at_lower_rate(self) -> usize {
        match self {
            Quality::Fast => 64,
            Quality::Balanced => 256,
            Quality::High => 1024,
        }
    }
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
    state: Option<State>,
}

/// Block sizes for a rate pair: (input frames, output frames) per block.
///
/// The number of rate units per block is even, so both block lengths are even: the
/// filter is then centred on a whole output frame and trimming the delay aligns the
/// output exactly (an odd block would leave it half a frame late).
pub fn block_sizes(input_rate: u32, output_rate: u32, quality: Quality) -> (usize, usize) {
    let g = gcd(input_rate, output_rate) as usize;
    let (unit_in, unit_out) = (input_rate as usize / g, output_rate as usize / g);
    let units = quality.block_at_lower_rate().div_ceil(unit_in.min(unit_out)).next_multiple_of(2);
    (units * unit_in, units * unit_out)
}

fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

struct State {
    input_rate: u32,
    channels: usize,
    /// `None` when the rates are equal: audio passes through.
    engine: Option<Engine>,
}

struct Engine {
    resampler: FftFixedInOut<f32>,
    block_in: usize,
    /// Per-channel input not yet processed.
    pending: Vec<Vec<f32>>,
    /// Per-channel output buffers of one block.
    scratch: Vec<Vec<f32>>,
    /// Output frames still to drop at the start (the resampler's delay).
    to_skip: usize,
    frames_in: u64,
    frames_out: u64,
}

impl Engine {
    /// Runs every whole block in `pending`, interleaving the kept output into `out`.
    fn run_blocks(&mut self, out: &mut Vec<f32>) -> Result<(), NodeFailure> {
        let blocks = self.pending[0].len() / self.block_in;
        let channels = self.pending.len();
        let needed = out.len() + blocks * self.scratch[0].len() * channels;
        if out.capacity() < needed {
            let mut bigger = pooled_vec(needed);
            bigger.extend_from_slice(out);
            *out = bigger;
        }
        let mut inputs: Vec<&[f32]> = Vec::with_capacity(channels);
        for b in 0..blocks {
            let range = b * self.block_in..(b + 1) * self.block_in;
            inputs.clear();
            inputs.extend(self.pending.iter().map(|p| &p[range.clone()]));
            let (_, produced) = self
                .resampler
                .process_into_buffer(&inputs, &mut self.scratch, None)
                .map_err(|e| NodeFailure::new(format!("resampler: {e}")))?;
            let skip = self.to_skip.min(produced);
            self.to_skip -= skip;
            if channels == 1 {
                out.extend_from_slice(&self.scratch[0][skip..produced]);
            } else {
                for frame in skip..produced {
                    out.extend(self.scratch.iter().map(|ch| ch[frame]));
                }
            }
            self.frames_out += (produced - skip) as u64;
        }
        for p in &mut self.pending {
            p.drain(..blocks * self.block_in);
        }
        Ok(())
    }
}

impl Resample {
    fn start(&self, audio: &AudioBuffer) -> Result<State, NodeFailure> {
        self.start_at(audio.sample_rate(), audio.channels() as usize)
    }

    fn start_at(&self, input_rate: u32, channels: usize) -> Result<State, NodeFailure> {
        if !RATES.contains(&input_rate) {
            return Err(NodeFailure::new(format!("input rate {input_rate} Hz is outside 8000..=192000")));
        }
        if input_rate == self.target_rate {
            return Ok(State { input_rate, channels, engine: None });
        }
        let (block_in, block_out) = block_sizes(input_rate, self.target_rate, self.quality);
        budget::samples("Resample state", STATE_BLOCKS * (block_in + block_out), channels)?;
        let resampler = FftFixedInOut::new(input_rate as usize, self.target_rate as usize, block_in, channels)
            .map_err(|e| NodeFailure::new(format!("resampler: {e}")))?;
        debug_assert_eq!((resampler.input_frames_next(), resampler.output_frames_next()), (block_in, block_out));
        let to_skip = resampler.output_delay();
        Ok(State {
            input_rate,
            channels,
            engine: Some(Engine {
                resampler,
                block_in,
                pending: vec![Vec::with_capacity(2 * block_in); channels],
                scratch: vec![vec![0.0; block_out]; channels],
                to_skip,
                frames_in: 0,
                frames_out: 0,
            }),
        })
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
        if self.state.is_none() {
            self.state = Some(self.start(audio)?);
        }
        let state = self.state.as_mut().expect("set above");
        if (audio.sample_rate(), audio.channels() as usize) != (state.input_rate, state.channels) {
            return Err(NodeFailure::new("Resample got a chunk whose rate or channel count differs from the stream's first"));
        }
        let Some(engine) = state.engine.as_mut() else {
            out.emit(input.clone());
            return Ok(());
        };
        if state.channels == 1 {
            engine.pending[0].extend_from_slice(samples);
        } else {
            for (c, pending) in engine.pending.iter_mut().enumerate() {
                pending.extend(samples.iter().skip(c).step_by(state.channels));
            }
        }
        engine.frames_in += audio.frames() as u64;
        let mut resampled = Vec::new();
        engine.run_blocks(&mut resampled)?;
        let state = self.state.as_ref().expect("set above");
        self.emit(state, resampled, out)
    }

    fn flush(&mut self, out: &mut Emitter) -> Result<(), NodeFailure> {
        let Some(state) = self.state.as_mut() else { return Ok(()) };
        let Some(engine) = state.engine.as_mut() else { return Ok(()) };
        let wanted = (engine.frames_in * u64::from(self.target_rate)).div_ceil(u64::from(state.input_rate));
        let mut resampled = Vec::new();
        while engine.frames_out < wanted {
            for p in &mut engine.pending {
                p.resize(engine.block_in, 0.0);
            }
            engine.run_blocks(&mut resampled)?;
        }
        let excess = (engine.frames_out - wanted) as usize;
        resampled.truncate(resampled.len() - excess * state.channels);
        let state = self.state.take().expect("set above");
        self.emit(&state, resampled, out)?;
        // The stream is over; a chunk after this starts a new one at the same rates.
        self.state = Some(self.start_at(state.input_rate, state.channels)?);
        Ok(())
    }

    fn reset(&mut self) -> Result<(), NodeFailure> {
        self.state = None;
        Ok(())
    }

    /// A block to fill plus the resampler's delay, in output frames.
    fn latency(&self) -> usize {
        self.state.as_ref().and_then(|s| s.engine.as_ref()).map_or(0, |e| {
            let block_out = e.scratch[0].len();
            block_out + e.resampler.output_delay()
        })
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
    fn length_is_conserved_and_chunking_does_not_matter() {
        let x: Vec<f32> = (0..10_007).map(|i| (i as f32 * 0.05).sin() * 0.5).collect();
        let mut n = node(16_000, Quality::High);
        let one = run(&mut n, &x, 48_000, x.len());
        assert_eq!(one.len(), 10_007usize.div_ceil(3));
        assert_eq!(n.latency(), 1024 + 512, "a 1024-frame block plus half a block of filter delay");
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

    #[test]
    fn block_sizes_follow_the_ratio() {
        assert_eq!(block_sizes(48_000, 16_000, Quality::High), (3072, 1024));
        assert_eq!(block_sizes(44_100, 48_000, Quality::Fast), (294, 320));
        let (i, o) = block_sizes(8_000, 192_000, Quality::Balanced);
        assert_eq!((i * 24, o), (o, 6144));
    }
}
