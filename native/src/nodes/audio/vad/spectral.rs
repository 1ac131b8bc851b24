//! The spectral VAD engine: a speech score per frame from band SNRs against a
//! minimum-statistics noise floor and the flatness of the noise-whitened spectrum.
//!
//! Per frame (10, 20 or 30 ms at 8, 16, 32 or 48 kHz):
//! 1. power spectrum of the Hann-windowed frame (`realfft`, on `rustfft`);
//! 2. energies of 8 log-spaced bands from 200 Hz to 4 kHz (or 0.475 × the rate);
//! 3. a noise floor per band by minimum statistics: the minimum of the smoothed band
//!    energy over ten 360 ms windows (3.6 s), times 1.5;
//! 4. features: mean and maximum band SNR (dB, clipped to 0..30) and the spectral
//!    flatness (dB) of the noise-whitened spectrum: about -2.5 dB for stationary noise
//!    of any colour, far lower for harmonic speech;
//! 5. score = logistic(weights · features): a probability-like value in 0..1.
//!
//! Weights were fitted by logistic regression on the generated set of
//! `benchmarks/vad_dataset.py` (30 ms frames at 16 kHz).

use std::collections::VecDeque;
use std::sync::Arc;

use realfft::{RealFftPlanner, RealToComplex};
use rustfft::num_complex::Complex;

pub(crate) const RATES: [u32; 4] = [8000, 16000, 32000, 48000];
pub(crate) const FRAME_MS: [u32; 3] = [10, 20, 30];
const BANDS: usize = 8;
const LOW_HZ: f64 = 200.0;
const HIGH_HZ: f64 = 4000.0;
const SMOOTH: f32 = 0.6;
const SUBWINDOW_MS: u32 = 360;
const SUBWINDOWS: usize = 10;
const NOISE_BIAS: f32 = 1.5;
/// Subwindows, and how far above the older minimum (power ratio, 20 dB), that make a
/// rise of the noise floor.
const RISE_WINDOWS: usize = 1;
const RISE_FACTOR: f32 = 100.0;
const SNR_MAX_DB: f32 = 30.0;
/// Logistic weights for (mean band SNR dB, whitened flatness dB, max band SNR dB) and bias.
const WEIGHTS: [f32; 3] = [0.164, 0.293, 0.259];
const BIAS: f32 = -1.278;
const TINY: f32 = 1e-12;
/// Samples are clipped to ± this before analysis (see its doc).
const CLIP: f32 = crate::model::SAMPLE_CLIP;

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
            *dst = x.clamp(-CLIP, CLIP) * w;
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
            self.follow_rise();
            self.current = [f32::INFINITY; BANDS];
            self.frames_in_window = 0;
        }
        floor
    }
}

impl NoiseFloor {
    /// Where the last `RISE_WINDOWS` subwindows all sat more than `RISE_FACTOR` above an
    /// older one in a band, the noise has risen for good (a quiet lead-in ended): the
    /// older minimum is raised to theirs, so the floor follows in under a second
    /// instead of after the whole history (3.6 s).
    fn follow_rise(&mut self) {
        let n = self.history.len();
        if n <= RISE_WINDOWS {
            return;
        }
        for b in 0..BANDS {
            let recent = self.history.range(n - RISE_WINDOWS..).map(|h| h[b]).fold(f32::INFINITY, f32::min);
            for h in self.history.range_mut(..n - RISE_WINDOWS) {
                if h[b] * RISE_FACTOR < recent {
                    h[b] = recent;
                }
            }
        }
    }
}

/// The spectral engine's state for one stream at one rate and frame size.
pub struct Spectral {
    analyzer: Analyzer,
    noise: NoiseFloor,
}

impl Spectral {
    pub fn new(rate: u32, frame_ms: u32) -> Self {
        let frame_len = (rate * frame_ms / 1000) as usize;
        Self { analyzer: Analyzer::new(rate, frame_len), noise: NoiseFloor::new((SUBWINDOW_MS / frame_ms) as usize) }
    }

    pub fn score(&mut self, frame: &[f32]) -> f32 {
        let mut energy = [0.0f32; BANDS];
        self.analyzer.analyse(frame, &mut energy);
        let floor = self.noise.update(&energy);
        let mut snr_sum = 0.0f32;
        let mut snr_max = 0.0f32;
        let mut inv = [0.0f32; BANDS];
        for b in 0..BANDS {
            let snr = (10.0 * std::f32::consts::LOG10_2 * log2_approx(energy[b] / floor[b])).clamp(0.0, SNR_MAX_DB);
            snr_sum += snr;
            snr_max = snr_max.max(snr);
            inv[b] = 1.0 / floor[b];
        }
        let a = &self.analyzer;
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
