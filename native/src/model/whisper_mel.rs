//! Whisper's log-mel front end, as Smart Turn v3 takes it: 8 s of 16 kHz audio →
//! 80 mel bins × 800 frames.
//!
//! The waveform (padded with zeros at its end, or cut, to 8 s) is normalised to zero
//! mean and unit variance in f32 exactly as numpy computes `(x - x.mean()) /
//! np.sqrt(x.var() + 1e-7)` on float32 (its pairwise sums, its order of operations):
//! Smart Turn's quantized input rounds these features to codes 0.0096 apart, and a
//! feature one ulp off can land on another code and move the model's output by 0.1.
//! Then, in f64 as numpy does: frames of 400 samples every 160 (the signal reflect-padded by
//! 200 each side) pass a periodic Hann window and a real FFT; the power of the 201 bins
//! goes through Slaney-normalised triangular mel filters spanning 0–8 kHz on the Slaney
//! mel scale; then log10 (floor 1e-10), the last frame dropped, everything clamped to
//! at most 8 below the maximum, and (x + 4) / 4. This is what
//! `transformers.WhisperFeatureExtractor` computes; the tests compare it with
//! pipecat's numpy copy of it, installed.
//!
//! One [`LogMel`] (window, filters, FFT plan) is shared; each caller brings a
//! [`MelScratch`], so an evaluation allocates nothing after the first.

use std::sync::{Arc, OnceLock};

use realfft::{RealFftPlanner, RealToComplex};
use rustfft::num_complex::Complex;

pub(crate) const RATE: u32 = 16_000;
/// Samples of audio the features cover (8 s).
pub(crate) const SAMPLES: usize = 8 * RATE as usize;
pub(crate) const MELS: usize = 80;
/// Frames of features (one every `HOP` samples; the trailing one dropped).
pub(crate) const FRAMES: usize = SAMPLES / HOP;
const NFFT: usize = 400;
const HOP: usize = 160;
const BINS: usize = NFFT / 2 + 1;
const FLOOR: f64 = 1e-10;
const VARIANCE_EPS: f32 = 1e-7;
/// Log10 range kept below the maximum.
const DYNAMIC_RANGE: f64 = 8.0;

/// One triangular filter: the first bin it covers and its weights from there.
struct Filter {
    first: usize,
    weights: Vec<f64>,
}

/// The front end's constants, shared.
pub struct LogMel {
    window: Vec<f64>,
    filters: Vec<Filter>,
    fft: Arc<dyn RealToComplex<f64>>,
}

/// Per-caller buffers of [`LogMel::compute`].
#[derive(Default)]
pub struct MelScratch {
    /// A caller's own buffer for the audio it passes (Smart Turn pads clips in it).
    pub(crate) input: Vec<f32>,
    normalized: Vec<f32>,
    deviations: Vec<f32>,
    signal: Vec<f64>,
    frame: Vec<f64>,
    spectrum: Vec<Complex<f64>>,
    fft_scratch: Vec<Complex<f64>>,
    logs: Vec<f64>,
}

/// numpy's sum of float32 values: pairwise, blocks of up to 128 summed in eight
/// interleaved lanes (`pairwise_sum` in numpy's loops).
fn numpy_sum(a: &[f32]) -> f32 {
    let n = a.len();
    if n < 8 {
        return a.iter().fold(0.0, |s, &x| s + x);
    }
    if n <= 128 {
        let mut r: [f32; 8] = a[..8].try_into().expect("eight values");
        let whole = n - n % 8;
        for block in a[8..whole].chunks_exact(8) {
            for (r, &x) in r.iter_mut().zip(block) {
                *r += x;
            }
        }
        let mut sum = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for &x in &a[whole..] {
            sum += x;
        }
        return sum;
    }
    let half = n / 2 - (n / 2) % 8;
    numpy_sum(&a[..half]) + numpy_sum(&a[half..])
}

/// Hertz → mel on the Slaney scale (linear below 1 kHz, logarithmic above).
fn hz_to_mel(hz: f64) -> f64 {
    if hz < 1000.0 { 3.0 * hz / 200.0 } else { 15.0 + (hz / 1000.0).ln() * 27.0 / 6.4f64.ln() }
}

fn mel_to_hz(mel: f64) -> f64 {
    if mel < 15.0 { 200.0 * mel / 3.0 } else { 1000.0 * ((mel - 15.0) * 6.4f64.ln() / 27.0).exp() }
}

impl LogMel {
    /// The process's front end, built on first use.
    pub fn shared() -> &'static LogMel {
        static SHARED: OnceLock<LogMel> = OnceLock::new();
        SHARED.get_or_init(LogMel::new)
    }

    fn new() -> Self {
        let window = (0..NFFT).map(|n| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * n as f64 / NFFT as f64).cos()).collect();
        let (low, high) = (hz_to_mel(0.0), hz_to_mel(f64::from(RATE) / 2.0));
        let edges: Vec<f64> = (0..MELS + 2).map(|i| mel_to_hz(low + (high - low) * i as f64 / (MELS + 1) as f64)).collect();
        let bin_hz = |b: usize| b as f64 * f64::from(RATE / 2) / (BINS - 1) as f64;
        let filters = (0..MELS)
            .map(|m| {
                let (left, centre, right) = (edges[m], edges[m + 1], edges[m + 2]);
                let norm = 2.0 / (right - left);
                let weight = |b: usize| {
                    let f = bin_hz(b);
                    ((f - left) / (centre - left)).min((right - f) / (right - centre)).max(0.0) * norm
                };
                let first = (0..BINS).find(|&b| weight(b) > 0.0).unwrap_or(BINS);
                let end = (first..BINS).find(|&b| weight(b) <= 0.0).unwrap_or(BINS);
                Filter { first, weights: (first..end).map(weight).collect() }
            })
            .collect();
        Self { window, filters, fft: RealFftPlanner::<f64>::new().plan_fft_forward(NFFT) }
    }

    /// Features of `audio` (16 kHz; its first [`SAMPLES`] used, zeros after its end) into
    /// `out`, mel-major: `out[m * FRAMES + t]`.
    pub fn compute(&self, audio: &[f32], scratch: &mut MelScratch, out: &mut [f32]) {
        assert_eq!(out.len(), MELS * FRAMES, "features buffer");
        let audio = &audio[..audio.len().min(SAMPLES)];
        // (x − mean) / √(var + 1e-7), float32 as numpy: mean and var are f32(sum / n)
        let x = &mut scratch.normalized;
        x.clear();
        x.extend_from_slice(audio);
        x.resize(SAMPLES, 0.0);
        let n = SAMPLES as f32;
        let mean = numpy_sum(x) / n;
        scratch.deviations.clear();
        scratch.deviations.extend(x.iter().map(|&v| (v - mean) * (v - mean)));
        let var = numpy_sum(&scratch.deviations) / n;
        let deviation = (var + VARIANCE_EPS).sqrt();
        let pad = NFFT / 2;
        let signal = &mut scratch.signal;
        signal.clear();
        signal.resize(SAMPLES + 2 * pad, 0.0);
        for (y, &v) in signal[pad..pad + SAMPLES].iter_mut().zip(x.iter()) {
            *y = f64::from((v - mean) / deviation);
        }
        for i in 0..pad {
            signal[pad - 1 - i] = signal[pad + 1 + i];
            signal[pad + SAMPLES + i] = signal[pad + SAMPLES - 2 - i];
        }
        scratch.frame.resize(NFFT, 0.0);
        scratch.spectrum.resize(BINS, Complex::default());
        scratch.fft_scratch.resize(self.fft.get_scratch_len(), Complex::default());
        scratch.logs.resize(MELS * FRAMES, 0.0);
        let mut max = f64::NEG_INFINITY;
        let mut power = [0f64; BINS];
        for t in 0..FRAMES {
            let start = t * HOP;
            for ((f, &x), &w) in scratch.frame.iter_mut().zip(&scratch.signal[start..start + NFFT]).zip(&self.window) {
                *f = x * w;
            }
            self.fft
                .process_with_scratch(&mut scratch.frame, &mut scratch.spectrum, &mut scratch.fft_scratch)
                .expect("buffer lengths match the plan");
            for (p, c) in power.iter_mut().zip(&scratch.spectrum) {
                *p = c.re * c.re + c.im * c.im;
            }
            for (m, filter) in self.filters.iter().enumerate() {
                let bins = &power[filter.first..filter.first + filter.weights.len()];
                let energy: f64 = bins.iter().zip(&filter.weights).map(|(p, w)| p * w).sum();
                let log = energy.max(FLOOR).log10();
                max = max.max(log);
                scratch.logs[m * FRAMES + t] = log;
            }
        }
        let low = max - DYNAMIC_RANGE;
        for (o, &v) in out.iter_mut().zip(&scratch.logs) {
            *o = ((v.max(low) + 4.0) / 4.0) as f32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_are_slaney_triangles_covering_the_band() {
        let mel = LogMel::shared();
        assert_eq!(mel.filters.len(), MELS);
        // filters move up the spectrum, and every bin but DC and Nyquist feeds one
        assert!(mel.filters.windows(2).all(|f| f[0].first <= f[1].first));
        let mut covered = [false; BINS];
        for f in &mel.filters {
            covered[f.first..f.first + f.weights.len()].iter_mut().for_each(|c| *c = true);
        }
        assert!(covered[1..BINS - 1].iter().all(|&c| c), "every inner bin feeds some filter");
    }

    #[test]
    fn silence_and_a_tone_give_features_in_range() {
        let mel = LogMel::shared();
        let mut out = vec![0.0; MELS * FRAMES];
        let mut scratch = MelScratch::default();
        mel.compute(&[], &mut scratch, &mut out);
        assert!(out.iter().all(|&v| v == out[0]), "silence is flat");
        let tone: Vec<f32> = (0..SAMPLES).map(|i| (i as f32 * 2.0 * std::f32::consts::PI * 1000.0 / 16000.0).sin()).collect();
        mel.compute(&tone, &mut scratch, &mut out);
        let max = out.iter().copied().fold(f32::MIN, f32::max);
        let min = out.iter().copied().fold(f32::MAX, f32::min);
        assert!((max - min - 2.0).abs() < 1e-5, "8 decades clamp to a range of 2: {min}..{max}");
    }
}
