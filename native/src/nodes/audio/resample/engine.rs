//! The block resampler: overlap-add FFT filtering with the rate change done in the
//! frequency domain.
//!
//! Each block of `hop_in` new input frames per channel is zero-padded to `n_in`,
//! transformed, multiplied by the filter's response, cut (or zero-extended) to the
//! bins below the lower Nyquist, and transformed back at length `n_out`: that is the
//! filtered block resampled to the output rate. Its first `hop_out` frames plus the
//! previous block's tail are final; the rest is the tail carried into the next block.
//! Input stays interleaved until a block is read from it, and output is written
//! interleaved straight into the emitted buffer.

use std::sync::Arc;

use realfft::num_complex::Complex;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};

use super::design::Design;
use crate::data::pooled_vec;
use crate::error::NodeFailure;

/// What a rate pair and preset fix: block sizes, FFT plans and the filter's response.
/// Shared by the streams of a node, one after another.
pub struct Kernel {
    hop_in: usize,
    hop_out: usize,
    delay: usize,
    forward: Arc<dyn RealToComplex<f32>>,
    inverse: Arc<dyn ComplexToReal<f32>>,
    /// The filter's response on the bins kept, scaled by `1 / n_in`.
    response: Vec<Complex<f32>>,
}

impl Kernel {
    pub fn new(design: &Design) -> Kernel {
        let Design { n_in, n_out, hop_in, hop_out, delay, ref taps } = *design;
        let mut planner = RealFftPlanner::<f32>::new();
        let (forward, inverse) = (planner.plan_fft_forward(n_in), planner.plan_fft_inverse(n_out));
        let mut padded = taps.clone();
        padded.resize(n_in, 0.0);
        let full = RealFftPlanner::<f64>::new().plan_fft_forward(n_in);
        let mut spectrum = full.make_output_vec();
        full.process(&mut padded, &mut spectrum).expect("buffer lengths come from the plan");
        let scale = 1.0 / n_in as f64;
        let mut response: Vec<Complex<f32>> =
            spectrum[..n_in.min(n_out) / 2].iter().map(|c| Complex::new((c.re * scale) as f32, (c.im * scale) as f32)).collect();
        response[0].im = 0.0;
        Kernel { hop_in, hop_out, delay, forward, inverse, response }
    }
}

/// One stream's resampler: a shared kernel plus the stream's buffers.
pub struct Engine {
    kernel: Arc<Kernel>,
    channels: usize,
    /// Interleaved input not yet processed.
    pending: Vec<f32>,
    /// Per channel: the last block's output beyond its first `hop_out` frames, and the
    /// power of two it is scaled down by (0 unless its samples were near f32's largest).
    tails: Vec<Vec<f32>>,
    tail_shifts: Vec<i32>,
    time_in: Vec<f32>,
    spectrum_in: Vec<Complex<f32>>,
    spectrum_out: Vec<Complex<f32>>,
    /// Per channel: the last block's filtered output (`n_out` frames); after
    /// `run_block`, its first `hop_out` frames are final.
    time_out: Vec<Vec<f32>>,
    scratch: Vec<Complex<f32>>,
    /// Output frames still to drop at the start (the filter's delay).
    to_skip: usize,
    /// Input frames taken since the stream started.
    pub frames_in: u64,
    /// Output frames produced since the stream started.
    pub frames_out: u64,
}

impl Engine {
    pub fn new(kernel: Arc<Kernel>, channels: usize) -> Engine {
        let k = &kernel;
        Engine {
            channels,
            time_in: k.forward.make_input_vec(),
            spectrum_in: k.forward.make_output_vec(),
            spectrum_out: k.inverse.make_input_vec(),
            time_out: vec![k.inverse.make_output_vec(); channels],
            scratch: vec![Complex::default(); k.forward.get_scratch_len().max(k.inverse.get_scratch_len())],
            pending: Vec::with_capacity(2 * k.hop_in * channels),
            tails: vec![vec![0.0; k.inverse.len() - k.hop_out]; channels],
            tail_shifts: vec![0; channels],
            to_skip: k.delay,
            frames_in: 0,
            frames_out: 0,
            kernel,
        }
    }

    /// Forgets the stream: the next input starts a new one.
    pub fn restart(&mut self) {
        self.pending.clear();
        self.tails.iter_mut().for_each(|t| t.fill(0.0));
        self.tail_shifts.fill(0);
        (self.to_skip, self.frames_in, self.frames_out) = (self.kernel.delay, 0, 0);
    }

    /// Output frames per block.
    pub fn hop_out(&self) -> usize {
        self.kernel.hop_out
    }

    /// The filter's delay, in output frames.
    pub fn delay(&self) -> usize {
        self.kernel.delay
    }

    /// Takes interleaved input and appends the output of every block it completes
    /// (interleaved) to `out`. Whole blocks are read from `samples` in place; only the
    /// remainder is copied into the pending buffer.
    pub fn process(&mut self, samples: &[f32], out: &mut Vec<f32>) -> Result<(), NodeFailure> {
        self.frames_in += (samples.len() / self.channels) as u64;
        self.run(samples, out)
    }

    /// Completes the pending input to a whole block with silence and runs it.
    pub fn pad_block(&mut self, out: &mut Vec<f32>) -> Result<(), NodeFailure> {
        let missing = self.kernel.hop_in * self.channels - self.pending.len();
        self.run(&vec![0.0; missing], out)
    }

    /// Runs the blocks that `samples` completes; keeps the rest pending.
    fn run(&mut self, mut samples: &[f32], out: &mut Vec<f32>) -> Result<(), NodeFailure> {
        let block = self.kernel.hop_in * self.channels;
        let blocks = (self.pending.len() + samples.len()) / block;
        if blocks == 0 {
            self.pending.extend_from_slice(samples);
            return Ok(());
        }
        let needed = out.len() + blocks * self.kernel.hop_out * self.channels;
        if out.capacity() < needed {
            let mut bigger = pooled_vec(needed);
            bigger.extend_from_slice(out);
            *out = bigger;
        }
        if !self.pending.is_empty() {
            let (first, rest) = samples.split_at(block - self.pending.len());
            self.pending.extend_from_slice(first);
            let pending = std::mem::take(&mut self.pending);
            let done = self.run_block(&pending, out);
            self.pending = pending;
            self.pending.clear();
            done?;
            samples = rest;
        }
        let whole = samples.chunks_exact(block);
        let rest = whole.remainder();
        for b in whole {
            self.run_block(b, out)?;
        }
        self.pending.extend_from_slice(rest);
        Ok(())
    }

    /// Runs one interleaved block, appending its kept output to `out`.
    fn run_block(&mut self, block: &[f32], out: &mut Vec<f32>) -> Result<(), NodeFailure> {
        let hop = self.kernel.hop_out;
        let skip = self.to_skip.min(hop);
        self.to_skip -= skip;
        for c in 0..self.channels {
            let shift = self.filter(block, c)?;
            let (head, rest) = self.time_out[c].split_at_mut(hop);
            let tail = &mut self.tails[c];
            // The design keeps a hop at least three tails long. The sum is taken at this
            // block's scale, then scaled back up: only a true output past f32's range
            // becomes inf.
            let to_this = 2f32.powi(self.tail_shifts[c] - shift);
            head.iter_mut().zip(tail.iter()).for_each(|(h, t)| *h += if shift == self.tail_shifts[c] { *t } else { t * to_this });
            tail.copy_from_slice(rest);
            self.tail_shifts[c] = shift;
            if shift > 0 {
                let up = 2f32.powi(shift);
                head.iter_mut().for_each(|h| *h *= up);
            }
        }
        match &self.time_out[..] {
            [mono] => out.extend_from_slice(&mono[skip..hop]),
            [left, right] => out.extend(left[skip..hop].iter().zip(&right[skip..hop]).flat_map(|(&l, &r)| [l, r])),
            heads => out.extend((skip..hop).flat_map(|f| heads.iter().map(move |h| h[f]))),
        }
        self.frames_out += (hop - skip) as u64;
        Ok(())
    }

    /// Channel `c` of an interleaved block, filtered and resampled into `time_out[c]`,
    /// scaled down by the power of two returned.
    fn filter(&mut self, block: &[f32], c: usize) -> Result<i32, NodeFailure> {
        let (k, channels) = (&self.kernel, self.channels);
        let n = self.time_in.len() as f32;
        let (filled, padding) = self.time_in.split_at_mut(k.hop_in);
        if channels == 1 {
            filled.copy_from_slice(block);
        } else {
            filled.iter_mut().zip(block[c..].iter().step_by(channels)).for_each(|(t, &x)| *t = x);
        }
        padding.fill(0.0);
        // An FFT of n samples sums up to n of them: finite but huge samples (near f32's
        // largest) would overflow to inf and NaN. Such a block is scaled down by a power
        // of two before, and its output stays so scaled until the overlap-add (exact; the
        // filter is linear).
        let peak = filled.iter().fold(0.0f32, |m, &x| m.max(x.abs()));
        let shift = if peak > f32::MAX / (4.0 * n) { (peak / (f32::MAX / (4.0 * n))).log2().ceil() as i32 } else { 0 };
        if shift > 0 {
            let down = 2f32.powi(-shift);
            filled.iter_mut().for_each(|x| *x *= down);
        }
        let failed = |e: realfft::FftError| NodeFailure::new(format!("resampler: {e}"));
        k.forward.process_with_scratch(&mut self.time_in, &mut self.spectrum_in, &mut self.scratch).map_err(failed)?;
        let kept = k.response.len();
        for ((o, &i), &r) in self.spectrum_out.iter_mut().zip(&self.spectrum_in[..kept]).zip(&k.response) {
            *o = i * r;
        }
        self.spectrum_out[kept..].fill(Complex::default());
        k.inverse.process_with_scratch(&mut self.spectrum_out, &mut self.time_out[c], &mut self.scratch).map_err(failed)?;
        Ok(shift)
    }
}
