//! What the microphone-cleaning nodes share (`EchoCanceller`, `NoiseSuppressor`, one
//! file each here): 10 ms framing of a mono f32 stream from its
//! first sample ([`Framer`]), and WebRTC's audio processing module as sonora ports it
//! ([`Webrtc`]).
//!
//! Every engine works on whole 10 ms frames counted from the stream's start, so the
//! output does not depend on how the input is chunked: a chunk's samples past the last
//! whole frame wait for the next chunk (the node's latency, one frame less a sample),
//! and `flush` runs the last partial frame padded with zeros, emitting only its own
//! samples. The output has as many samples as the input.

mod echo;
mod noise;

use std::sync::Arc;

use serde_json::{Value, json};
use sonora::config::MaxProcessingRate;
use sonora::{AudioProcessing, Config, StreamConfig};

use crate::data::{AudioBuffer, Data, SampleBuf, Samples, pooled_vec};
use crate::error::NodeFailure;
use crate::nodes::{Emitter, LatencyFn, NodeSpec};

/// The rates WebRTC's module takes, the first preferred: the plan converts the rest.
pub(super) const RATES: [u32; 3] = [16_000, 32_000, 48_000];

/// The node types of this module. They have no Python twin: no maintained Python
/// library gives their results, so the Python runtime refuses them at validation.
pub(crate) const NODE_TYPES: [&str; 2] = ["EchoCanceller", "NoiseSuppressor"];

pub(super) fn specs() -> Vec<NodeSpec> {
    vec![echo::spec(), noise::spec()]
}

/// Samples in one 10 ms frame at `rate`.
fn frame_len(rate: u32) -> usize {
    rate as usize / 100
}

/// The caps of a port taking mono f32 at `rates`.
fn mono_caps(rates: Value) -> Value {
    json!({"kind": "audio", "format": ["f32"], "channels": [1], "sample_rate": rates})
}

/// The output's lag behind the input at `rate`, in samples: a frame less a sample of
/// framing (what a chunk can leave waiting) plus the engine's own delay.
fn lag(rate: u32, delay: usize) -> usize {
    frame_len(rate) - 1 + delay
}

/// A spec's latency: [`lag`] at the input's rate (the highest rate's when it is not
/// known yet), `delay` chosen by the node's params.
fn latency_of(delay: fn(&serde_json::Map<String, Value>, u32) -> usize) -> Option<Arc<LatencyFn>> {
    Some(Arc::new(move |params, caps| {
        let rate = caps.rate().unwrap_or(RATES[2]);
        Some(lag(rate, delay(params, rate)))
    }))
}

/// WebRTC's band splitting at 32 and 48 kHz adds to an engine's delay at 16 kHz (in
/// samples at the rate; measured as the lag of the output's best correlation with the
/// input, issue 28).
fn webrtc_delay(at_16k: usize, rate: u32) -> usize {
    match rate {
        16_000 => at_16k,
        32_000 => 2 * at_16k + 4,
        _ => 3 * at_16k + 46,
    }
}

/// Cuts one mono stream into 10 ms frames from its first sample.
pub(super) struct Framer {
    rate: u32,
    /// Samples of the frame not yet whole.
    pending: Vec<f32>,
}

impl Framer {
    pub(super) fn new(rate: u32) -> Self {
        Self { rate, pending: Vec::with_capacity(frame_len(rate)) }
    }

    pub(super) fn rate(&self) -> u32 {
        self.rate
    }

    pub(super) fn frame(&self) -> usize {
        frame_len(self.rate)
    }

    /// Runs every frame made whole by `samples` through `each(input, output)` and emits
    /// their outputs as one chunk (nothing when no frame is whole).
    pub(super) fn run(
        &mut self,
        samples: &[f32],
        out: &mut Emitter,
        mut each: impl FnMut(&[f32], &mut [f32]) -> Result<(), NodeFailure>,
    ) -> Result<(), NodeFailure> {
        let n = self.frame();
        let whole = (self.pending.len() + samples.len()) / n;
        if whole == 0 {
            self.pending.extend_from_slice(samples);
            return Ok(());
        }
        let mut output = pooled_vec::<f32>(whole * n);
        output.resize(whole * n, 0.0);
        let mut frames = output.chunks_exact_mut(n);
        let mut rest = samples;
        if !self.pending.is_empty() {
            let (head, tail) = rest.split_at(n - self.pending.len());
            self.pending.extend_from_slice(head);
            each(&self.pending, frames.next().expect("a whole frame"))?;
            self.pending.clear();
            rest = tail;
        }
        let mut inputs = rest.chunks_exact(n);
        for (input, frame) in inputs.by_ref().zip(frames) {
            each(input, frame)?;
        }
        self.pending.extend_from_slice(inputs.remainder());
        self.emit(output, out)
    }

    /// Runs the partial frame held, padded with zeros, emitting its own samples only.
    pub(super) fn finish(
        &mut self,
        out: &mut Emitter,
        mut each: impl FnMut(&[f32], &mut [f32]) -> Result<(), NodeFailure>,
    ) -> Result<(), NodeFailure> {
        let len = self.pending.len();
        if len == 0 {
            return Ok(());
        }
        let n = self.frame();
        self.pending.resize(n, 0.0);
        let mut output = pooled_vec::<f32>(n);
        output.resize(n, 0.0);
        each(&self.pending, &mut output)?;
        self.pending.clear();
        output.truncate(len);
        self.emit(output, out)
    }

    fn emit(&self, samples: Vec<f32>, out: &mut Emitter) -> Result<(), NodeFailure> {
        let audio = AudioBuffer::new(Samples::F32(SampleBuf::owned(samples)), 1, self.rate).map_err(|e| NodeFailure::new(e.to_string()))?;
        out.emit(Data::Audio(audio));
        Ok(())
    }
}

/// WebRTC's audio processing module for one mono stream, with the components `config`
/// enables, on 10 ms frames.
pub(super) struct Webrtc {
    apm: AudioProcessing,
    /// Where the render side's output goes (unused: the module may change it).
    render_out: Vec<f32>,
}

impl Webrtc {
    pub(super) fn new(mut config: Config, rate: u32) -> Self {
        // the whole band at 48 kHz (the module's default stops at 32 kHz: above 16 kHz lost)
        config.pipeline.maximum_internal_processing_rate = MaxProcessingRate::Rate48kHz;
        let stream = StreamConfig::new(rate, 1);
        let apm = AudioProcessing::builder().config(config).capture_config(stream).render_config(stream).build();
        Self { apm, render_out: vec![0.0; frame_len(rate)] }
    }

    /// Cleans one microphone frame.
    pub(super) fn capture(&mut self, input: &[f32], output: &mut [f32]) -> Result<(), NodeFailure> {
        self.apm.process_capture_f32(&[input], &mut [output]).map_err(failed)
    }

    /// Tells the module what the loudspeaker played during the next microphone frame.
    pub(super) fn render(&mut self, far: &[f32]) -> Result<(), NodeFailure> {
        self.apm.process_render_f32(&[far], &mut [&mut self.render_out]).map_err(failed)
    }
}

fn failed(e: sonora::Error) -> NodeFailure {
    NodeFailure::new(format!("audio processing: {e}"))
}

/// One stream of a framing node: its framer and its engine, made at the first chunk's
/// rate.
pub(super) struct Stream<E> {
    pub(super) framer: Framer,
    pub(super) engine: E,
}

/// The mono f32 samples of a chunk for `node_type` (at one of [`RATES`], all finite),
/// and the stream they go to: `stream`, or a new one at their rate made with `make`.
/// A chunk at another rate than the stream's is refused: nothing of it is processed.
pub(super) fn stream_chunk<'a, 's, E>(
    input: &'a Data,
    stream: &'s mut Option<Stream<E>>,
    node_type: &str,
    make: impl FnOnce(u32) -> Result<E, NodeFailure>,
) -> Result<(&'a [f32], &'s mut Stream<E>), NodeFailure> {
    let (audio, samples) = super::mono_f32(input, node_type)?;
    let rate = audio.sample_rate();
    if !RATES.contains(&rate) {
        return Err(NodeFailure::invalid_input(format!(
            "{node_type} takes 16, 32 or 48 kHz, got {rate} Hz; put a Resample before it (a pipeline's plan does)"
        )));
    }
    if let Some(s) = stream.as_ref().filter(|s| s.framer.rate() != rate) {
        return Err(NodeFailure::invalid_input(format!("{node_type}: the stream is at {} Hz, this chunk at {rate} Hz", s.framer.rate())));
    }
    if stream.is_none() {
        *stream = Some(Stream { framer: Framer::new(rate), engine: make(rate)? });
    }
    Ok((samples, stream.as_mut().expect("made above")))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::data::{AudioBuffer, Data, SampleBuf, Samples};
    use crate::error::FailureKind;
    use crate::nodes::audio::testing::{emitted as samples, mono as chunk};
    use crate::nodes::{Emitter, Node};

    fn node(node_type: &str, params: serde_json::Value) -> Box<dyn Node> {
        let spec = super::specs().into_iter().find(|s| s.node_type == node_type).expect("a spec");
        (spec.create)(params.as_object().expect("an object")).unwrap_or_else(|e| panic!("{}", e.message))
    }

    /// Speech-like test signal: a gliding tone in bursts, plus a little noise.
    fn signal(n: usize, rate: u32, seed: u64) -> Vec<f32> {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..n)
            .map(|i| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                let t = i as f32 / rate as f32;
                let burst = if (t * 2.0).fract() < 0.6 { 0.3 } else { 0.0 };
                burst * (2.0 * std::f32::consts::PI * (200.0 + 300.0 * t) * t).sin() + ((s >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.02
            })
            .collect()
    }

    /// Runs `mic` in chunks of `sizes` (cycled), after the far end whole when given, then
    /// flushes: the output.
    fn run(node: &mut dyn Node, rate: u32, mic: &[f32], far: Option<&[f32]>, sizes: &[usize]) -> Vec<f32> {
        let mut out = Emitter::default();
        if let Some(far) = far {
            node.process_port(1, &chunk(far, rate), &mut out).expect("far taken");
        }
        let mut got = Vec::new();
        let mut at = 0;
        for &size in sizes.iter().cycle() {
            if at >= mic.len() {
                break;
            }
            let end = (at + size).min(mic.len());
            node.process_port(0, &chunk(&mic[at..end], rate), &mut out).expect("processed");
            got.extend(samples(&mut out));
            at = end;
        }
        node.flush(&mut out).expect("flushed");
        got.extend(samples(&mut out));
        got
    }

    #[test]
    fn any_chunking_gives_the_output_of_10_ms_chunks_and_as_many_samples() {
        let cases: [(&str, serde_json::Value, u32, bool); 6] = [
            ("EchoCanceller", json!({}), 16_000, true),
            ("EchoCanceller", json!({}), 48_000, true),
            ("NoiseSuppressor", json!({}), 16_000, false),
            ("NoiseSuppressor", json!({"level": "very_high"}), 32_000, false),
            ("NoiseSuppressor", json!({"engine": "rnnoise"}), 48_000, false),
            ("NoiseSuppressor", json!({"level": "low"}), 48_000, false),
        ];
        for (node_type, params, rate, with_far) in cases {
            let n = rate as usize / 2 + 37; // half a second and a partial frame
            let mic = signal(n, rate, 1);
            let far = with_far.then(|| signal(n, rate, 2));
            let mut a = node(node_type, params.clone());
            let want = run(a.as_mut(), rate, &mic, far.as_deref(), &[rate as usize / 100]);
            assert_eq!(want.len(), n, "{node_type}: as many samples out as in");
            assert!(want.iter().any(|&x| x != 0.0), "{node_type}: some output");
            for sizes in [&[1usize, 7, 333][..], &[n], &[160, 1, 1000, 3]] {
                // the same node after its flush: a new stream starts as a fresh node would
                let got = run(a.as_mut(), rate, &mic, far.as_deref(), sizes);
                assert_eq!(got, want, "{node_type} at {rate} Hz in chunks of {sizes:?}");
            }
        }
    }

    #[test]
    fn the_echo_canceller_removes_an_echo_and_passes_the_microphone_when_the_far_end_is_silent() {
        let rate = 16_000;
        let far = signal(rate as usize * 4, rate, 3);
        // the echo: the far end 30 ms later, halved, plus a reflection
        let echo: Vec<f32> = (0..far.len())
            .map(|i| 0.5 * i.checked_sub(480).map_or(0.0, |j| far[j]) + 0.2 * i.checked_sub(800).map_or(0.0, |j| far[j]))
            .collect();
        let out = run(node("EchoCanceller", json!({})).as_mut(), rate, &echo, Some(&far), &[320]);
        let energy = |x: &[f32]| x.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>();
        let tail = rate as usize * 2..;
        let erle = 10.0 * (energy(&echo[tail.clone()]) / energy(&out[tail])).log10();
        assert!(erle > 20.0, "ERLE {erle:.1} dB");
        let mic = signal(rate as usize, rate, 4);
        let out = run(node("EchoCanceller", json!({})).as_mut(), rate, &mic, Some(&vec![0.0; mic.len()]), &[320]);
        // the output is the input 8 ms later (AEC3's delay, docs/AUDIO.md)
        let (mic, out) = (&mic[..mic.len() - 128], &out[128..]);
        let dot: f64 = mic.iter().zip(out).map(|(a, b)| f64::from(*a) * f64::from(*b)).sum();
        let corr = dot / (energy(mic) * energy(out)).sqrt();
        assert!(corr > 0.999, "correlation {corr}");
    }

    #[test]
    fn the_far_end_is_bounded_and_bad_chunks_are_refused() {
        let rate = 16_000;
        let mut aec = node("EchoCanceller", json!({"max_far_ms": 100}));
        let mut out = Emitter::default();
        // far end 1 s ahead: only its last 100 ms is kept, and the microphone goes on
        let far = signal(16_000, rate, 5);
        let mic = signal(3200, rate, 6);
        let last = run(node("EchoCanceller", json!({})).as_mut(), rate, &mic, Some(&far[far.len() - 1600..]), &[320]);
        assert_eq!(run(aec.as_mut(), rate, &mic, Some(&far), &[320]), last);
        assert!(super::echo::FAR.starts_with(super::NODE_TYPES[0]));
        aec.process_port(1, &chunk(&far, rate), &mut out).unwrap();
        for (port, bad, why) in [
            (0, chunk(&[0.0; 160], 8_000), "EchoCanceller takes 16, 32 or 48 kHz, got 8000 Hz"),
            (0, chunk(&[f32::NAN; 160], rate), "non-finite"),
            (1, chunk(&[0.0; 480], 48_000), "EchoCanceller input far: the stream is at 16000 Hz, this chunk at 48000 Hz"),
            (0, Data::Audio(AudioBuffer::new(Samples::F32(SampleBuf::owned(vec![0.0; 320])), 2, rate).unwrap()), "mono"),
        ] {
            let e = aec.process_port(port, &bad, &mut out).unwrap_err();
            assert!(e.message.contains(why), "{}", e.message);
        }
        let mut ns = node("NoiseSuppressor", json!({}));
        ns.process(&chunk(&[0.0; 100], 16_000), &mut out).unwrap();
        let e = ns.process(&chunk(&[0.0; 480], 48_000), &mut out).unwrap_err();
        assert_eq!(e.kind, FailureKind::InvalidInput);
        assert!(e.message.contains("the stream is at 16000 Hz"), "{}", e.message);
        let e = node("NoiseSuppressor", json!({})).process(&chunk(&[0.0; 80], 8_000), &mut out).unwrap_err();
        assert!(e.message.contains("takes 16, 32 or 48 kHz, got 8000 Hz"), "{}", e.message);
        let mut ns = node("NoiseSuppressor", json!({"engine": "rnnoise"}));
        let e = ns.process(&chunk(&[0.0; 160], 16_000), &mut out).unwrap_err();
        assert!(e.message.contains("takes 48 kHz"), "{}", e.message);
        let spec = super::specs().into_iter().find(|s| s.node_type == "NoiseSuppressor").unwrap();
        for bad in [json!({"engine": "rnnoise", "level": "low"}), json!({"level": "max"}), json!({"engine": "dtln9"})] {
            assert!((spec.create)(bad.as_object().unwrap()).is_err(), "{bad}");
        }
    }
}
