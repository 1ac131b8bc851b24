//! VAD: frame-based voice activity detection on spectral features.
//!
//! Per frame (10, 20 or 30 ms at 8, 16, 32 or 48 kHz; mono f32):
//! 1. power spectrum of the Hann-windowed frame (`realfft`, on `rustfft`);
//! 2. energies of 8 log-spaced bands from 200 Hz to 4 kHz (or 0.475 × the rate);
//! 3. a noise floor per band by minimum statistics: the minimum of the smoothed band
//!    energy over ten 360 ms windows (3.6 s), times 1.5;
//! 4. features: mean and maximum band SNR (dB, clipped to 0..30) and the spectral
//!    flatness (dB) of the noise-whitened spectrum: about -2.5 dB for stationary noise
//!    of any colour, far lower for harmonic speech;
//! 5. score = logistic(weights · features): a probability-like value in 0..1;
//! 6. decision: score > threshold, held for `hangover_ms` after the last such frame
//!    (silences shorter than that are bridged); a run becomes speech once it has lasted
//!    `min_speech_ms` up to a frame above threshold (hangover frames do not count), so
//!    shorter runs are dropped and decisions are delayed by that much.
//!
//! Weights were fitted by logistic regression on the generated set of
//! `benchmarks/vad_dataset.py` (30 ms frames at 16 kHz).

use std::collections::VecDeque;
use std::sync::Arc;

use realfft::{RealFftPlanner, RealToComplex};
use rustfft::num_complex::Complex;
use serde::Deserialize;
use serde_json::json;

use crate::data::{AudioBuffer, Data, Samples};
use crate::error::NodeFailure;
use crate::nodes::{Emitter, Implementation, Node, NodeSpec, ParamError, parse_params};

const RATES: [u32; 4] = [8000, 16000, 32000, 48000];
const FRAME_MS: [u32; 3] = [10, 20, 30];
const BANDS: usize = 8;
const LOW_HZ: f64 = 200.0;
const HIGH_HZ: f64 = 4000.0;
const SMOOTH: f32 = 0.6;
const SUBWINDOW_MS: u32 = 360;
const SUBWINDOWS: usize = 10;
const NOISE_BIAS: f32 = 1.5;
const SNR_MAX_DB: f32 = 30.0;
/// Logistic weights for (mean band SNR dB, whitened flatness dB, max band SNR dB) and bias.
const WEIGHTS: [f32; 3] = [0.164, 0.293, 0.259];
const BIAS: f32 = -1.278;
const TINY: f32 = 1e-12;

/// Ports: per-chunk frame decisions, closed speech segments, and gated speech audio.
const PORT_SEGMENTS: usize = 1;
const PORT_AUDIO: usize = 2;

pub fn spec() -> NodeSpec {
    NodeSpec {
        node_type: "VAD".into(),
        description: "Voice activity detection on spectral features (f32 mono, 8/16/32/48 kHz, 10/20/30 ms frames): frame decisions and scores, speech segments, and optionally the speech audio.".into(),
        params_schema: json!({
            "type": "object",
            "properties": {
                "frame_ms": {"enum": FRAME_MS, "default": DEFAULT_FRAME_MS},
                "threshold": {"type": "number", "minimum": 0, "maximum": 1, "default": DEFAULT_THRESHOLD},
                "hangover_ms": {"type": "integer", "minimum": 0, "maximum": MAX_MS, "default": DEFAULT_HANGOVER_MS},
                "min_speech_ms": {"type": "integer", "minimum": 0, "maximum": MAX_MS, "default": DEFAULT_MIN_SPEECH_MS},
                "gate": {"type": "boolean", "default": DEFAULT_GATE}
            },
            "additionalProperties": false
        }),
        outputs: vec!["frames".into(), "segments".into(), "audio".into()],
        implementation: Implementation::Native,
        create: Arc::new(|params| Ok(Box::new(Vad::new(parse_params(params)?)?))),
    }
}

const DEFAULT_FRAME_MS: u32 = 30;
const DEFAULT_THRESHOLD: f64 = 0.6;
const DEFAULT_HANGOVER_MS: u32 = 90;
const DEFAULT_MIN_SPEECH_MS: u32 = 60;
const DEFAULT_GATE: bool = false;
/// Largest `hangover_ms` and `min_speech_ms`.
const MAX_MS: u32 = 5000;

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields, default)]
struct Params {
    frame_ms: u32,
    threshold: f64,
    hangover_ms: u32,
    min_speech_ms: u32,
    gate: bool,
}

impl Default for Params {
    fn default() -> Self {
        Self {
            frame_ms: DEFAULT_FRAME_MS,
            threshold: DEFAULT_THRESHOLD,
            hangover_ms: DEFAULT_HANGOVER_MS,
            min_speech_ms: DEFAULT_MIN_SPEECH_MS,
            gate: DEFAULT_GATE,
        }
    }
}

/// Fast log2 for positive normal floats (error below 1e-4): exponent bits plus a
/// least-squares quintic in the mantissa, so loops over it vectorize.
fn log2_approx(x: f32) -> f32 {
    const C: [f32; 6] = [0.043_428_42, -0.404_862_85, 1.593_886_4, -3.492_469_2, 5.046_855_5, -2.786_806_4];
    let bits = x.to_bits();
    let exponent = ((bits >> 23) & 0xff) as i32 - 127;
    let m = f32::from_bits((bits & 0x007f_ffff) | 0x3f80_0000);
    let p = ((((C[0] * m + C[1]) * m + C[2]) * m + C[3]) * m + C[4]) * m + C[5];
    exponent as f32 + p
}

/// Spectral analysis of one frame size at one rate.
struct Analyzer {
    window: Vec<f32>,
    fft: Arc<dyn RealToComplex<f32>>,
    input: Vec<f32>,
    spectrum: Vec<Complex<f32>>,
    scratch: Vec<Complex<f32>>,
    /// First bin of each band, plus the end of the last band.
    edges: [usize; BANDS + 1],
    /// Band of each analysed bin, from `edges[0]`.
    band_of: Vec<usize>,
    power: Vec<f32>,
}

impl Analyzer {
    fn new(rate: u32, frame_len: usize) -> Self {
        let nfft = frame_len.next_power_of_two();
        let window =
            (0..frame_len).map(|n| (0.5 - 0.5 * (2.0 * std::f64::consts::PI * n as f64 / frame_len as f64).cos()) as f32).collect();
        let fft = RealFftPlanner::<f32>::new().plan_fft_forward(nfft);
        let high = HIGH_HZ.min(0.475 * f64::from(rate));
        let mut edges = [0usize; BANDS + 1];
        for (b, e) in edges.iter_mut().enumerate() {
            let f = LOW_HZ * (high / LOW_HZ).powf(b as f64 / BANDS as f64);
            *e = (f * nfft as f64 / f64::from(rate)).round() as usize;
        }
        let band_of = (edges[0]..edges[BANDS]).map(|k| edges.iter().rposition(|&e| e <= k).unwrap().min(BANDS - 1)).collect();
        Self {
            window,
            input: fft.make_input_vec(),
            spectrum: fft.make_output_vec(),
            scratch: fft.make_scratch_vec(),
            fft,
            edges,
            band_of,
            power: vec![0.0; 0],
        }
    }

    /// Band energies of `frame` into `bands`; keeps the analysed bins' power.
    fn analyse(&mut self, frame: &[f32], bands: &mut [f32; BANDS]) {
        let n = frame.len() as f32;
        for ((dst, &x), &w) in self.input.iter_mut().zip(frame).zip(&self.window) {
            *dst = x * w;
        }
        self.input[frame.len()..].fill(0.0);
        self.fft.process_with_scratch(&mut self.input, &mut self.spectrum, &mut self.scratch).expect("sizes come from the plan");
        self.power.clear();
        self.power.extend(self.spectrum[self.edges[0]..self.edges[BANDS]].iter().map(|c| c.norm_sqr() / n + TINY));
        let base = self.edges[0];
        for (b, e) in bands.iter_mut().enumerate() {
            let bins = &self.power[self.edges[b] - base..self.edges[b + 1] - base];
            *e = bins.iter().sum::<f32>() / bins.len().max(1) as f32 + TINY;
        }
    }
}

/// Minimum-statistics noise floor per band.
struct NoiseFloor {
    smoothed: Option<[f32; BANDS]>,
    current: [f32; BANDS],
    history: VecDeque<[f32; BANDS]>,
    frames_per_window: usize,
    frames_in_window: usize,
}

impl NoiseFloor {
    fn new(frames_per_window: usize) -> Self {
        Self { smoothed: None, current: [f32::INFINITY; BANDS], history: VecDeque::new(), frames_per_window, frames_in_window: 0 }
    }

    fn update(&mut self, energy: &[f32; BANDS]) -> [f32; BANDS] {
        let s = self.smoothed.get_or_insert(*energy);
        let mut floor = [0.0; BANDS];
        for b in 0..BANDS {
            s[b] = SMOOTH * s[b] + (1.0 - SMOOTH) * energy[b];
            self.current[b] = self.current[b].min(s[b]);
            let past = self.history.iter().map(|h| h[b]).fold(f32::INFINITY, f32::min);
            floor[b] = self.current[b].min(past) * NOISE_BIAS;
        }
        self.frames_in_window += 1;
        if self.frames_in_window == self.frames_per_window {
            self.history.push_back(self.current);
            if self.history.len() > SUBWINDOWS {
                self.history.pop_front();
            }
            self.current = [f32::INFINITY; BANDS];
            self.frames_in_window = 0;
        }
        floor
    }
}

/// One frame's result, held until its decision is final.
struct Frame {
    index: u64,
    score: f32,
    audio: Option<Vec<f32>>,
}

struct Stream {
    rate: u32,
    frame_len: usize,
    analyzer: Analyzer,
    noise: NoiseFloor,
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
    /// Start frame of the open speech segment.
    segment_start: Option<u64>,
}

struct Vad {
    params: Params,
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
        if !FRAME_MS.contains(&params.frame_ms) {
            return Err(ParamError::new("frame_ms", format!("{} ms is not one of 10, 20, 30", params.frame_ms)));
        }
        if !(0.0..=1.0).contains(&params.threshold) {
            return Err(ParamError::new("threshold", format!("{} is outside 0..=1", params.threshold)));
        }
        for (name, ms) in [("hangover_ms", params.hangover_ms), ("min_speech_ms", params.min_speech_ms)] {
            if ms > MAX_MS {
                return Err(ParamError::new(name, format!("{ms} is more than {MAX_MS}")));
            }
        }
        let frame = u64::from(params.frame_ms);
        Ok(Self {
            hangover: u64::from(params.hangover_ms).div_ceil(frame),
            min_run: u64::from(params.min_speech_ms).div_ceil(frame).max(1),
            params,
            stream: None,
        })
    }

    fn start(&self, rate: u32) -> Result<Stream, NodeFailure> {
        if !RATES.contains(&rate) {
            return Err(NodeFailure::new(format!("VAD takes 8000, 16000, 32000 or 48000 Hz, got {rate}; resample first")));
        }
        let frame_len = (rate * self.params.frame_ms / 1000) as usize;
        Ok(Stream {
            rate,
            frame_len,
            analyzer: Analyzer::new(rate, frame_len),
            noise: NoiseFloor::new((SUBWINDOW_MS / self.params.frame_ms) as usize),
            pending: Vec::with_capacity(frame_len),
            next_index: 0,
            since_raw: None,
            run_start: None,
            confirmed: false,
            held: Vec::new(),
            segment_start: None,
        })
    }

    fn score(stream: &mut Stream, frame: &[f32]) -> f32 {
        let mut energy = [0.0f32; BANDS];
        stream.analyzer.analyse(frame, &mut energy);
        let floor = stream.noise.update(&energy);
        let mut snr_sum = 0.0f32;
        let mut snr_max = 0.0f32;
        let mut inv = [0.0f32; BANDS];
        for b in 0..BANDS {
            let snr = (10.0 * std::f32::consts::LOG10_2 * log2_approx(energy[b] / floor[b])).clamp(0.0, SNR_MAX_DB);
            snr_sum += snr;
            snr_max = snr_max.max(snr);
            inv[b] = 1.0 / floor[b];
        }
        let a = &stream.analyzer;
        let (mut log_sum, mut sum) = (0.0f32, 0.0f32);
        for (&p, &b) in a.power.iter().zip(&a.band_of) {
            let w = p * inv[b];
            log_sum += log2_approx(w);
            sum += w;
        }
        let n = a.power.len().max(1) as f32;
        // flatness in dB: 10 log10(geometric mean / arithmetic mean)
        let flatness = 10.0 * std::f32::consts::LOG10_2 * (log_sum / n - log2_approx(sum / n));
        let z = WEIGHTS[0] * snr_sum / BANDS as f32 + WEIGHTS[1] * flatness + WEIGHTS[2] * snr_max + BIAS;
        1.0 / (1.0 + (-z).exp())
    }

    /// Final decision for `frame`; emits segment and gated-audio events.
    fn decide(&self, stream: &mut Stream, frame: Frame, speech: bool, decisions: &mut Decisions, out: &mut Emitter) {
        decisions.start_frame.get_or_insert(frame.index);
        decisions.speech.push(speech);
        decisions.score.push(frame.score);
        match (speech, stream.segment_start) {
            (true, None) => stream.segment_start = Some(frame.index),
            (false, Some(start)) => {
                self.emit_segment(start, frame.index, out);
                stream.segment_start = None;
            }
            _ => {}
        }
        if let (true, Some(samples)) = (speech, frame.audio) {
            if let Ok(a) = AudioBuffer::new(Samples::F32(crate::data::SampleBuf::owned(samples)), 1, stream.rate) {
                out.emit_to(PORT_AUDIO, Data::Audio(a));
            }
        }
    }

    fn push_frame(&self, stream: &mut Stream, frame: Frame, decisions: &mut Decisions, out: &mut Emitter) {
        let raw = f64::from(frame.score) > self.params.threshold;
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
        index as f64 * f64::from(self.params.frame_ms) / 1000.0
    }

    /// Emits the segment from frame `start` to frame `end` (exclusive).
    fn emit_segment(&self, start: u64, end: u64, out: &mut Emitter) {
        out.emit_to(PORT_SEGMENTS, Data::Json(Arc::new(json!({"start": self.seconds(start), "end": self.seconds(end)}))));
    }

    fn emit_decisions(&self, decisions: Decisions, out: &mut Emitter) {
        let Some(start) = decisions.start_frame else { return };
        out.emit(Data::Json(Arc::new(json!({
            "start": self.seconds(start),
            "frame_ms": self.params.frame_ms,
            "speech": decisions.speech,
            "score": decisions.score,
        }))));
    }
}

impl Node for Vad {
    fn process(&mut self, input: &Data, out: &mut Emitter) -> Result<(), NodeFailure> {
        let audio = super::audio(input, "VAD")?;
        let samples = super::f32_samples(audio, "VAD")?;
        super::finite(samples, "VAD")?;
        if audio.channels() != 1 {
            return Err(NodeFailure::new(format!("VAD takes mono audio, got {} channels; put a Downmix before it", audio.channels())));
        }
        if self.stream.is_none() {
            self.stream = Some(self.start(audio.sample_rate())?);
        }
        let mut stream = self.stream.take().expect("set above");
        if audio.sample_rate() != stream.rate {
            self.stream = Some(stream);
            return Err(NodeFailure::new("VAD got a chunk whose rate differs from the stream's first"));
        }
        let mut decisions = Decisions::default();
        let mut rest: &[f32] = samples;
        // A frame that straddles chunks is assembled in `pending`, which keeps its
        // capacity, so steady-state streaming allocates nothing payload-sized here.
        let mut pending = std::mem::take(&mut stream.pending);
        while !rest.is_empty() {
            let whole: &[f32] = if pending.is_empty() && rest.len() >= stream.frame_len {
                let (f, r) = rest.split_at(stream.frame_len);
                rest = r;
                f
            } else {
                let take = (stream.frame_len - pending.len()).min(rest.len());
                pending.extend_from_slice(&rest[..take]);
                rest = &rest[take..];
                if pending.len() < stream.frame_len {
                    break;
                }
                &pending
            };
            let score = Self::score(&mut stream, whole);
            let index = stream.next_index;
            stream.next_index += 1;
            let audio = self.params.gate.then(|| whole.to_vec());
            self.push_frame(&mut stream, Frame { index, score, audio }, &mut decisions, out);
            if pending.len() == stream.frame_len {
                pending.clear();
            }
        }
        stream.pending = pending;
        self.emit_decisions(decisions, out);
        self.stream = Some(stream);
        Ok(())
    }

    fn flush(&mut self, out: &mut Emitter) -> Result<(), NodeFailure> {
        let Some(mut stream) = self.stream.take() else { return Ok(()) };
        let mut decisions = Decisions::default();
        for held in std::mem::take(&mut stream.held) {
            self.decide(&mut stream, held, false, &mut decisions, out);
        }
        if let Some(start) = stream.segment_start {
            self.emit_segment(start, stream.next_index, out);
        }
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
        self.stream.as_ref().map_or(0, |s| (self.min_run as usize - 1) * s.frame_len + s.frame_len - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log2_approx_is_close() {
        for &x in &[1e-12f32, 1e-6, 0.3, 1.0, 1.5, 2.0, 1234.5, 3e30] {
            assert!((log2_approx(x) - x.log2()).abs() < 1e-4, "{x}");
        }
    }

    #[test]
    fn bands_cover_the_speech_range() {
        let a = Analyzer::new(16000, 480);
        assert_eq!(a.edges[0], (200.0f64 * 512.0 / 16000.0).round() as usize);
        assert!(a.edges.windows(2).all(|w| w[0] < w[1]), "{:?}", a.edges);
        let a = Analyzer::new(8000, 80);
        assert!(a.edges.windows(2).all(|w| w[0] <= w[1]));
    }
}
