//! The silero VAD network (v5/v6 shape, 16 kHz), run natively with its weights read
//! from the model's ONNX file.
//!
//! Per 512-sample window, with the previous window's last 64 samples prepended:
//! reflect-pad 128 each side, a 256-point STFT with hop 128 (the file's convolution
//! kernel, checked at load to be a periodic-Hann DFT, is done as a real FFT) keeping
//! frames 1..=4, magnitudes of 129 bins, four conv+ReLU layers (kernel 3, strides
//! 1, 2, 2, 1), one LSTM cell of 128, ReLU, a 1×1 convolution and a sigmoid.
//!
//! The weights ([`Silero`]) are immutable and shared; each stream owns a
//! [`SileroState`]: the LSTM state, the 64-sample context and its scratch buffers.

use std::sync::Arc;

use realfft::{RealFftPlanner, RealToComplex};
use rustfft::num_complex::Complex;

use super::onnx::OnnxGraph;

/// New samples per window at 16 kHz, and samples of context carried from the last.
pub(crate) const WINDOW: usize = 512;
const CONTEXT: usize = 64;
const NFFT: usize = 256;
const HOP: usize = 128;
const PAD: usize = 128;
const BINS: usize = NFFT / 2 + 1;
/// STFT frames kept per window (the first of five is dropped).
const FRAMES: usize = 4;
const HIDDEN: usize = 128;
const GATES: usize = 4 * HIDDEN;
/// Largest deviation of the file's STFT kernel from a periodic-Hann DFT.
const BASIS_TOLERANCE: f32 = 1e-4;
/// (input channels, output channels, stride) of the four encoder layers.
const ENCODER: [(usize, usize, usize); 4] = [(BINS, 128, 1), (128, 64, 2), (64, 64, 2), (64, HIDDEN, 1)];

/// One conv1d layer (kernel 3, padding 1) with ReLU; `weight` is out × (3 · in), tap
/// by tap (column `t·in + c` is the file's weight of input channel `c` at tap `t`), so
/// a position's three taps are three contiguous runs of the position-major input.
struct Conv {
    weight: Packed,
    bias: Vec<f32>,
    inputs: usize,
    outputs: usize,
    stride: usize,
}

impl Conv {
    fn out_len(&self, len: usize) -> usize {
        (len - 1) / self.stride + 1
    }

    /// `input` is (`lanes` · `len`) × inputs, position-major, each lane's `len`
    /// positions one after another; writes (`lanes` · out_len) × outputs alike into
    /// `output`. `cols` and `part` are scratch.
    ///
    /// A position's taps that fall in the zero padding are left out of its product:
    /// positions are taken class by class (the taps they see inside the input), each
    /// class one product over those taps' weights. Leaving out a zero tap at the start
    /// or the end of a sum of fused multiply-adds does not change it.
    fn run(&self, input: &[f32], lanes: usize, len: usize, cols: &mut Vec<f32>, part: &mut Vec<f32>, output: &mut Vec<f32>) {
        let n = self.out_len(len);
        let c = self.inputs;
        // the taps position j sees inside the input: input positions j·stride + t − 1
        let taps = |j: usize| {
            let first = usize::from(j * self.stride == 0);
            let end = if j * self.stride + 1 < len { 3 } else { 2 };
            (first, end)
        };
        output.clear();
        output.resize(self.outputs * n * lanes, 0.0);
        let mut done = 0u64; // a bit per position whose class was run
        while done != (1 << n) - 1 {
            let class = taps((0..n).find(|&j| (done >> j) & 1 == 0).expect("a position is left"));
            let members: Vec<usize> = (0..n).filter(|&j| taps(j) == class).collect();
            members.iter().for_each(|j| done |= 1 << j);
            let (first, end) = class;
            let width = (end - first) * c;
            // cols is (lanes · members) × width: each member position's taps, tap by tap
            cols.clear();
            cols.resize(width * members.len() * lanes, 0.0);
            let mut rows = cols.chunks_exact_mut(width);
            for lane in 0..lanes {
                for &j in &members {
                    let row = rows.next().expect("sized above");
                    let from = (lane * len + j * self.stride + first - 1) * c;
                    row.copy_from_slice(&input[from..from + width]);
                }
            }
            part.clear();
            part.resize(self.outputs * members.len() * lanes, 0.0);
            matmul_taps(&self.weight, first * c, end * c, cols, members.len() * lanes, part);
            let mut results = part.chunks_exact(self.outputs);
            for lane in 0..lanes {
                for &j in &members {
                    let at = (lane * n + j) * self.outputs;
                    let result = results.next().expect("sized above");
                    for ((v, &r), b) in output[at..at + self.outputs].iter_mut().zip(result).zip(&self.bias) {
                        *v = (r + b).max(0.0);
                    }
                }
            }
        }
    }
}

/// Output rows computed together: one AVX register of f32.
const LANES: usize = 8;

/// A weight matrix (`rows` × `k`) packed for [`matmul`]: blocks of `LANES` rows, each
/// stored column by column, so a step along `k` reads `LANES` contiguous weights.
struct Packed {
    data: Vec<f32>,
    rows: usize,
    k: usize,
}

impl Packed {
    /// Packs the row-major `rows` × `k` matrix `w`; `rows` must be a multiple of `LANES`.
    fn new(w: &[f32], rows: usize, k: usize) -> Self {
        assert!(rows.is_multiple_of(LANES) && w.len() == rows * k, "packed shape");
        let mut data = Vec::with_capacity(w.len());
        for block in 0..rows / LANES {
            for kk in 0..k {
                data.extend((0..LANES).map(|l| w[(block * LANES + l) * k + kk]));
            }
        }
        Self { data, rows, k }
    }
}

/// `out[j·rows + o]` = row `o` of `w` · row `j` of `cols` (`n` rows of `w.k`): one
/// output row of `w.rows` per input row.
///
/// Columns are taken in tiles of 6, 4, 2 and 1; every output is one chain of fused
/// multiply-adds in the order of `k` whatever the tile, so a column's result does not
/// depend on `n` or on the other columns: a batch of streams equals each stream alone.
fn matmul(w: &Packed, cols: &[f32], n: usize, out: &mut [f32]) {
    matmul_taps(w, 0, w.k, cols, n, out);
}

/// [`matmul`] over columns `k0..k1` of `w` only: `cols` rows are `k1 − k0` long.
fn matmul_taps(w: &Packed, k0: usize, k1: usize, cols: &[f32], n: usize, out: &mut [f32]) {
    assert!(k0 <= k1 && k1 <= w.k && cols.len() == n * (k1 - k0) && out.len() == w.rows * n, "matmul shapes");
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        let mut j = 0;
        while j < n {
            let tile = match n - j {
                1 => 1,
                2 | 3 => 2,
                4 | 5 => 4,
                _ => 6,
            };
            // SAFETY: the CPU has AVX2 and FMA (checked just above); the shapes were
            // checked, and columns j..j + tile are within n.
            unsafe {
                match tile {
                    1 => avx2::kernel::<1, 8>(w, k0, k1, cols, out, j),
                    2 => avx2::kernel::<2, 4>(w, k0, k1, cols, out, j),
                    4 => avx2::kernel::<4, 2>(w, k0, k1, cols, out, j),
                    _ => avx2::kernel::<6, 2>(w, k0, k1, cols, out, j),
                }
            }
            j += tile;
        }
        return;
    }
    matmul_portable(w, k0, k1, cols, n, out);
}

/// [`matmul`] in plain Rust, for CPUs without AVX2 and FMA.
fn matmul_portable(w: &Packed, k0: usize, k1: usize, cols: &[f32], n: usize, out: &mut [f32]) {
    out.fill(0.0);
    let k = k1 - k0;
    for (block, weights) in w.data.chunks_exact(w.k * LANES).enumerate() {
        for (kk, wv) in weights[k0 * LANES..k1 * LANES].chunks_exact(LANES).enumerate() {
            for j in 0..n {
                let x = cols[j * k + kk];
                for (l, &wl) in wv.iter().enumerate() {
                    out[j * w.rows + block * LANES + l] += wl * x;
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{EXP_MAX, EXP_MIN, EXP_POLY, HIDDEN, LANES, LN2_HI, LN2_LO, Packed, SileroState, UNITS};

    /// [`super::exp`] of 8 values.
    #[target_feature(enable = "avx2,fma")]
    fn exp(x: __m256) -> __m256 {
        let x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(EXP_MIN)), _mm256_set1_ps(EXP_MAX));
        let n = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(_mm256_mul_ps(
            x,
            _mm256_set1_ps(std::f32::consts::LOG2_E),
        ));
        let r = _mm256_fmadd_ps(n, _mm256_set1_ps(-LN2_LO), _mm256_fmadd_ps(n, _mm256_set1_ps(-LN2_HI), x));
        let mut p = _mm256_set1_ps(EXP_POLY[0]);
        for &c in &EXP_POLY[1..] {
            p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(c));
        }
        let e = _mm256_add_ps(_mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r), _mm256_set1_ps(1.0));
        let scale = _mm256_slli_epi32::<23>(_mm256_cvtps_epi32(n));
        _mm256_castsi256_ps(_mm256_add_epi32(_mm256_castps_si256(e), scale))
    }

    #[target_feature(enable = "avx2,fma")]
    fn sigmoid(x: __m256) -> __m256 {
        let one = _mm256_set1_ps(1.0);
        _mm256_div_ps(one, _mm256_add_ps(one, exp(_mm256_sub_ps(_mm256_setzero_ps(), x))))
    }

    #[target_feature(enable = "avx2,fma")]
    fn tanh(x: __m256) -> __m256 {
        let one = _mm256_set1_ps(1.0);
        let e = exp(_mm256_mul_ps(_mm256_set1_ps(2.0), x));
        _mm256_sub_ps(one, _mm256_div_ps(_mm256_set1_ps(2.0), _mm256_add_ps(e, one)))
    }

    /// [`super::cell`], `UNITS` units at a time.
    ///
    /// # Safety
    /// The CPU must have AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn cell(gates: &[f32], bias: &[f32], state: &mut SileroState, out_weight: &[f32], partial: &mut [f32; UNITS]) {
        assert!(gates.len() >= 4 * HIDDEN && bias.len() >= 4 * HIDDEN && out_weight.len() >= HIDDEN, "cell shapes");
        let load = |v: &[f32], at: usize| -> __m256 {
            // SAFETY: `at + UNITS <= v.len()` for every call below (checked shapes).
            unsafe { _mm256_loadu_ps(v[at..at + UNITS].as_ptr()) }
        };
        let mut acc = _mm256_setzero_ps();
        for j in (0..HIDDEN).step_by(UNITS) {
            let gate = |g: usize| _mm256_add_ps(load(gates, g * HIDDEN + j), load(bias, g * HIDDEN + j));
            let (i, o, f, g) = (sigmoid(gate(0)), sigmoid(gate(1)), sigmoid(gate(2)), tanh(gate(3)));
            let c = _mm256_add_ps(_mm256_mul_ps(f, load(&state.c, j)), _mm256_mul_ps(i, g));
            let h = _mm256_mul_ps(o, tanh(c));
            // SAFETY: j + UNITS <= HIDDEN, the arrays' length.
            unsafe {
                _mm256_storeu_ps(state.c[j..j + UNITS].as_mut_ptr(), c);
                _mm256_storeu_ps(state.h[j..j + UNITS].as_mut_ptr(), h);
            }
            acc = _mm256_add_ps(acc, _mm256_mul_ps(load(out_weight, j), _mm256_max_ps(h, _mm256_setzero_ps())));
        }
        // SAFETY: `partial` holds UNITS values.
        unsafe { _mm256_storeu_ps(partial.as_mut_ptr(), acc) };
    }

    /// [`super::matmul_taps`] of the `N` columns from `first`, `R` blocks of `LANES`
    /// output rows at a time: each step along `k` loads `R` weight vectors and `N`
    /// inputs for `R · N` fused multiply-adds, so loads stay below the FMA rate and
    /// `R · N` sums are in flight.
    ///
    /// # Safety
    /// The CPU must have AVX2 and FMA; `k0 <= k1 <= w.k`, `cols` must hold
    /// `n · (k1 − k0)` values and `out` `w.rows · n` (as `matmul_taps` checks) with
    /// `first + N <= n`; `w.rows` must be a multiple of `R · LANES`.
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::needless_range_loop)] // acc[r][j]: indices read clearer than zipped iterators
    pub unsafe fn kernel<const N: usize, const R: usize>(w: &Packed, k0: usize, k1: usize, cols: &[f32], out: &mut [f32], first: usize) {
        let (stride, k) = (w.k, k1 - k0);
        assert!(w.rows.is_multiple_of(R * LANES), "row blocks");
        for group in 0..w.rows / (R * LANES) {
            // SAFETY: group < rows / (R · LANES), so its R blocks of w.k · LANES weights
            // are in `data`; every index below is < w.k (weights) or < N · k (cols).
            unsafe {
                let weights = w.data.as_ptr().add((group * R * stride + k0) * LANES);
                let x = cols.as_ptr().add(first * k);
                let mut acc = [[_mm256_setzero_ps(); N]; R];
                for kk in 0..k {
                    let mut wv = [_mm256_setzero_ps(); R];
                    for (r, v) in wv.iter_mut().enumerate() {
                        *v = _mm256_loadu_ps(weights.add((r * stride + kk) * LANES));
                    }
                    for j in 0..N {
                        let xb = _mm256_set1_ps(*x.add(j * k + kk));
                        for r in 0..R {
                            acc[r][j] = _mm256_fmadd_ps(wv[r], xb, acc[r][j]);
                        }
                    }
                }
                for (r, acc) in acc.iter().enumerate() {
                    for (j, &sum) in acc.iter().enumerate() {
                        let at = (first + j) * w.rows + (group * R + r) * LANES;
                        assert!(at + LANES <= out.len(), "output row");
                        _mm256_storeu_ps(out.as_mut_ptr().add(at), sum);
                    }
                }
            }
        }
    }
}

/// The weights of one silero VAD model: immutable, shared by every stream.
pub struct Silero {
    window: Vec<f32>,
    fft: Arc<dyn RealToComplex<f32>>,
    encoder: Vec<Conv>,
    /// LSTM input and recurrent weights side by side: 4·128 rows (gates i, o, f, c) of
    /// 256 (128 for x, then 128 for h); and the summed biases.
    lstm: Packed,
    lstm_bias: Vec<f32>,
    out_weight: Vec<f32>,
    out_bias: f32,
}

/// One stream's state: the LSTM's and the last window's context (1.3 KB).
#[derive(Clone, Copy)]
pub struct SileroState {
    h: [f32; HIDDEN],
    c: [f32; HIDDEN],
    context: [f32; CONTEXT],
}

/// Most streams in one forward pass: their largest product input (the first layer's,
/// 4 positions × 387 values each) stays within a core's L2 cache.
pub(crate) const BATCH_LANES: usize = 32;

/// Scratch space of a forward pass, one per thread, grown to the largest batch.
struct Scratch {
    padded: Vec<f32>,
    frame: Vec<f32>,
    spectrum: Vec<Complex<f32>>,
    fft_scratch: Vec<Complex<f32>>,
    a: Vec<f32>,
    b: Vec<f32>,
    cols: Vec<f32>,
    /// One class of positions' products (see `Conv::run`).
    part: Vec<f32>,
    xh: Vec<f32>,
    gates: Vec<f32>,
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Option<Scratch>> = const { std::cell::RefCell::new(None) };
}

impl Silero {
    /// The model in `graph`, or why `graph` is not a silero VAD model of this shape.
    pub fn from_graph(graph: &OnnxGraph) -> Result<Self, String> {
        let weights = Weights { graph };
        let basis = weights.tensor(&["stft.forward_basis_buffer", "model.stft.forward_basis_buffer"], &[2 * BINS, 1, NFFT])?;
        let window: Vec<f32> =
            (0..NFFT).map(|n| (0.5 - 0.5 * (2.0 * std::f64::consts::PI * n as f64 / NFFT as f64).cos()) as f32).collect();
        check_basis(basis, &window)?;
        let mut encoder = Vec::new();
        for (i, &(inputs, outputs, stride)) in ENCODER.iter().enumerate() {
            let names = |part: &str| {
                [
                    format!("encoder.{i}.{part}"),
                    format!("encoder.{i}.reparam_conv.{part}"),
                    format!("model.encoder.{i}.reparam_conv.{part}"),
                ]
            };
            let file = weights.tensor(&names("weight").each_ref().map(String::as_str), &[outputs, inputs, 3])?;
            // the file's [out][in][tap] as [out][tap][in] (see `Conv`)
            let taps: Vec<f32> =
                (0..outputs).flat_map(|o| (0..3).flat_map(move |t| (0..inputs).map(move |c| file[(o * inputs + c) * 3 + t]))).collect();
            let weight = Packed::new(&taps, outputs, inputs * 3);
            let bias = weights.tensor(&names("bias").each_ref().map(String::as_str), &[outputs])?.to_vec();
            encoder.push(Conv { weight, bias, inputs, outputs, stride });
        }
        let (lstm, lstm_bias) = weights.lstm()?;
        let out_weight =
            weights.tensor(&["output.weight", "decoder.decoder.2.weight", "model.decoder.decoder.2.weight"], &[1, HIDDEN, 1])?.to_vec();
        let out_bias = weights.tensor(&["output.bias", "decoder.decoder.2.bias", "model.decoder.decoder.2.bias"], &[1])?[0];
        Ok(Self { fft: RealFftPlanner::<f32>::new().plan_fft_forward(NFFT), window, encoder, lstm, lstm_bias, out_weight, out_bias })
    }

    /// A fresh stream: zero LSTM state and zero context.
    pub fn state(&self) -> SileroState {
        SileroState { h: [0.0; HIDDEN], c: [0.0; HIDDEN], context: [0.0; CONTEXT] }
    }

    /// Speech probability of the next `WINDOW` samples of `state`'s stream.
    pub fn forward(&self, state: &mut SileroState, window: &[f32]) -> f32 {
        let mut p = [0.0];
        self.forward_batch(&mut [(state, window)], &mut p);
        p[0]
    }

    /// Speech probabilities of the next `WINDOW` samples of several streams, one
    /// window each: `lanes[i]` is a stream's state and window, `probs[i]` receives its
    /// probability. Each stream's result is the one [`Silero::forward`] gives it alone,
    /// to the bit: the lanes share each matrix product (the weights are read once for
    /// all), never a sum.
    pub fn forward_batch(&self, lanes: &mut [(&mut SileroState, &[f32])], probs: &mut [f32]) {
        assert_eq!(lanes.len(), probs.len(), "one probability per lane");
        SCRATCH.with(|cell| {
            let mut cell = cell.borrow_mut();
            let s = cell.get_or_insert_with(|| Scratch {
                padded: vec![0.0; CONTEXT + WINDOW + 2 * PAD],
                frame: self.fft.make_input_vec(),
                spectrum: self.fft.make_output_vec(),
                fft_scratch: self.fft.make_scratch_vec(),
                a: Vec::new(),
                b: Vec::new(),
                cols: Vec::new(),
                part: Vec::new(),
                xh: Vec::new(),
                gates: Vec::new(),
            });
            for (lanes, probs) in lanes.chunks_mut(BATCH_LANES).zip(probs.chunks_mut(BATCH_LANES)) {
                self.forward_in(s, lanes, probs);
            }
        });
    }

    fn forward_in(&self, s: &mut Scratch, lanes: &mut [(&mut SileroState, &[f32])], probs: &mut [f32]) {
        let n = lanes.len();
        // magnitudes: (n · FRAMES) × BINS, position-major, lane by lane
        s.a.clear();
        s.a.resize(BINS * FRAMES * n, 0.0);
        for (lane, (state, window)) in lanes.iter_mut().enumerate() {
            assert_eq!(window.len(), WINDOW, "silero windows are {WINDOW} samples");
            self.magnitudes(s, state, window, lane);
        }
        let mut len = FRAMES;
        for conv in &self.encoder {
            conv.run(&s.a, n, len, &mut s.cols, &mut s.part, &mut s.b);
            len = conv.out_len(len);
            std::mem::swap(&mut s.a, &mut s.b);
        }
        debug_assert_eq!(s.a.len(), HIDDEN * n);
        // x and h of each lane side by side, a row of 2·HIDDEN per lane
        s.xh.clear();
        for (x, (state, _)) in s.a.chunks_exact(HIDDEN).zip(lanes.iter()) {
            s.xh.extend_from_slice(x);
            s.xh.extend_from_slice(&state.h);
        }
        s.gates.clear();
        s.gates.resize(GATES * n, 0.0);
        matmul(&self.lstm, &s.xh, n, &mut s.gates);
        for ((gates, (state, _)), p) in s.gates.chunks_exact(GATES).zip(lanes.iter_mut()).zip(probs.iter_mut()) {
            let z = cell(gates, &self.lstm_bias, state, &self.out_weight);
            *p = sigmoid(z + self.out_bias);
        }
    }

    /// The STFT magnitudes of `window` (after `state`'s context) into lane `lane` of
    /// `s.a`, frame by frame; `state` keeps the window's end as the next context.
    fn magnitudes(&self, s: &mut Scratch, state: &mut SileroState, window: &[f32], lane: usize) {
        // x = context ++ window, reflect-padded by PAD on both sides
        let len = CONTEXT + WINDOW;
        s.padded[PAD..PAD + CONTEXT].copy_from_slice(&state.context);
        let clip = super::SAMPLE_CLIP;
        s.padded[PAD + CONTEXT..PAD + len].iter_mut().zip(window).for_each(|(p, &x)| *p = x.clamp(-clip, clip));
        for i in 0..PAD {
            s.padded[i] = s.padded[2 * PAD - i];
            s.padded[PAD + len + i] = s.padded[PAD + len - 2 - i];
        }
        state.context.copy_from_slice(&s.padded[PAD + len - CONTEXT..PAD + len]);
        for f in 0..FRAMES {
            let start = (f + 1) * HOP;
            for ((dst, &x), &w) in s.frame.iter_mut().zip(&s.padded[start..start + NFFT]).zip(&self.window) {
                *dst = x * w;
            }
            self.fft.process_with_scratch(&mut s.frame, &mut s.spectrum, &mut s.fft_scratch).expect("sizes come from the plan");
            let row = &mut s.a[(lane * FRAMES + f) * BINS..(lane * FRAMES + f + 1) * BINS];
            for (m, z) in row.iter_mut().zip(&s.spectrum) {
                *m = (z.re * z.re + z.im * z.im).sqrt();
            }
        }
    }
}

/// Units of the LSTM cell updated together: one AVX register.
const UNITS: usize = 8;

/// The LSTM cell of one stream: gates `i, o, f, c` (each `HIDDEN` values, before their
/// `bias`) update `state`'s c and h; returns Σ `out_weight[j]` · relu(h[j]), summed in
/// `UNITS` partial sums added in order. The AVX2 path and the plain one do the same
/// operations in the same order (exp by [`exp`]'s polynomial, no fused operations
/// outside it), so they give the same bits.
fn cell(gates: &[f32], bias: &[f32], state: &mut SileroState, out_weight: &[f32]) -> f32 {
    let mut partial = [0.0f32; UNITS];
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU has AVX2 and FMA (checked just above).
        unsafe { avx2::cell(gates, bias, state, out_weight, &mut partial) };
        return partial.iter().sum();
    }
    cell_plain(gates, bias, state, out_weight, &mut partial);
    partial.iter().sum()
}

/// [`cell`] in plain Rust, one unit at a time (into `partial`, as `avx2::cell`).
fn cell_plain(gates: &[f32], bias: &[f32], state: &mut SileroState, out_weight: &[f32], partial: &mut [f32; UNITS]) {
    for j in 0..HIDDEN {
        let gate = |g: usize| gates[g * HIDDEN + j] + bias[g * HIDDEN + j];
        let (i, o, f, g) = (sigmoid(gate(0)), sigmoid(gate(1)), sigmoid(gate(2)), tanh(gate(3)));
        state.c[j] = f * state.c[j] + i * g;
        state.h[j] = o * tanh(state.c[j]);
        partial[j % UNITS] += out_weight[j] * state.h[j].max(0.0);
    }
}

/// Clamp of [`exp`]'s argument: e^x stays a normal f32.
const EXP_MIN: f32 = -87.0;
const EXP_MAX: f32 = 88.0;
/// ln 2 split in a part exact in f32 and the rest (Cephes).
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
/// Cephes' minimax polynomial of e^r on |r| <= ln 2 / 2, highest power first.
const EXP_POLY: [f32; 6] = [1.987_569_1e-4, 1.398_199_9e-3, 8.333_452e-3, 4.166_579_6e-2, 0.166_666_65, 0.5];

/// e^x within 2 ulp (x clamped to EXP_MIN..=EXP_MAX): n = round(x / ln 2), r = x − n ln 2,
/// e^r by Cephes' polynomial, times 2^n; libm's `expf` costs several times more and
/// does not vectorize. `avx2::exp` is the same, 8 at a time.
fn exp(x: f32) -> f32 {
    let x = x.clamp(EXP_MIN, EXP_MAX);
    let n = (x * std::f32::consts::LOG2_E).round_ties_even();
    let r = n.mul_add(-LN2_LO, n.mul_add(-LN2_HI, x));
    let mut p = EXP_POLY[0];
    for &c in &EXP_POLY[1..] {
        p = p.mul_add(r, c);
    }
    let e = p.mul_add(r * r, r) + 1.0;
    f32::from_bits((e.to_bits() as i32 + ((n as i32) << 23)) as u32)
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

/// tanh by one `exp`; within 1e-6 of it.
fn tanh(x: f32) -> f32 {
    1.0 - 2.0 / (exp(2.0 * x) + 1.0)
}

/// The STFT kernel must be the periodic-Hann DFT that the FFT computes.
fn check_basis(basis: &[f32], window: &[f32]) -> Result<(), String> {
    let mut worst = 0.0f32;
    for k in 0..BINS {
        for (n, &w) in window.iter().enumerate() {
            let phase = 2.0 * std::f64::consts::PI * ((k * n) % NFFT) as f64 / NFFT as f64;
            let re = w * phase.cos() as f32;
            let im = w * phase.sin() as f32;
            worst = worst.max((basis[k * NFFT + n] - re).abs()).max((basis[(BINS + k) * NFFT + n].abs() - im.abs()).abs());
        }
    }
    if worst > BASIS_TOLERANCE {
        return Err(format!("its STFT kernel is not a periodic-Hann DFT (off by {worst})"));
    }
    Ok(())
}

/// Named tensors of a graph, checked for shape.
struct Weights<'a> {
    graph: &'a OnnxGraph,
}

impl Weights<'_> {
    /// The first of `names` present in the graph, with shape `dims`.
    fn tensor(&self, names: &[&str], dims: &[usize]) -> Result<&[f32], String> {
        let (name, t) = names
            .iter()
            .find_map(|n| self.graph.tensors.get(*n).map(|t| (n, t)))
            .ok_or_else(|| format!("it has no tensor '{}', so it is not a silero VAD model", names[0]))?;
        if t.dims != dims {
            return Err(format!("tensor '{name}' has shape {:?}, a silero VAD model has {dims:?}", t.dims));
        }
        Ok(&t.values)
    }

    /// LSTM weights as `Silero::lstm` lays them out, from an ONNX LSTM node or from
    /// PyTorch `LSTMCell` tensors (gates i, f, g, o, reordered to ONNX's i, o, f, c).
    fn lstm(&self) -> Result<(Packed, Vec<f32>), String> {
        let (w, r, bias) = if let Some(node) = self.graph.nodes.iter().find(|n| n.op_type == "LSTM") {
            let name = |i: usize| node.inputs.get(i).map(String::as_str).unwrap_or("");
            let w = self.tensor(&[name(1)], &[1, GATES, HIDDEN])?.to_vec();
            let r = self.tensor(&[name(2)], &[1, GATES, HIDDEN])?.to_vec();
            let b = self.tensor(&[name(3)], &[1, 2 * GATES])?;
            let bias = b[..GATES].iter().zip(&b[GATES..]).map(|(x, y)| x + y).collect::<Vec<_>>();
            (w, r, bias)
        } else {
            let names = |part: &str| [format!("decoder.rnn.{part}"), format!("model.decoder.rnn.{part}")];
            let get = |part: &str, dims: &[usize]| -> Result<Vec<f32>, String> {
                Ok(self.tensor(&names(part).each_ref().map(String::as_str), dims)?.to_vec())
            };
            let reorder = |t: Vec<f32>| -> Vec<f32> {
                let width = t.len() / 4;
                [0, 3, 1, 2].iter().flat_map(|&g| t[g * width..(g + 1) * width].to_vec()).collect()
            };
            let (bi, bh) = (get("bias_ih", &[GATES])?, get("bias_hh", &[GATES])?);
            let bias = bi.iter().zip(&bh).map(|(x, y)| x + y).collect();
            (reorder(get("weight_ih", &[GATES, HIDDEN])?), reorder(get("weight_hh", &[GATES, HIDDEN])?), reorder(bias))
        };
        let lstm: Vec<f32> =
            (0..GATES).flat_map(|g| w[g * HIDDEN..(g + 1) * HIDDEN].iter().chain(&r[g * HIDDEN..(g + 1) * HIDDEN]).copied()).collect();
        Ok((Packed::new(&lstm, GATES, 2 * HIDDEN), bias))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_within_two_ulp_and_both_cell_paths_agree_to_the_bit() {
        for i in -8699..=8799 {
            let x = i as f32 / 100.0 + 0.003;
            let (mine, libm) = (exp(x), x.exp());
            assert!(((mine - libm) / libm).abs() < 2.5e-7, "{x}: {mine} {libm}");
        }
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            let gates: Vec<f32> = (0..GATES).map(|i| ((i * 7919) % 2001) as f32 / 100.0 - 10.0).collect();
            let bias: Vec<f32> = (0..GATES).map(|i| ((i * 31) % 17) as f32 / 10.0 - 0.8).collect();
            let weight: Vec<f32> = (0..HIDDEN).map(|i| ((i * 13) % 7) as f32 / 3.0 - 1.0).collect();
            let start = SileroState { h: [0.1; HIDDEN], c: std::array::from_fn(|j| j as f32 / 50.0 - 1.0), context: [0.0; CONTEXT] };
            let (mut vector, mut plain) = (SileroState { ..start }, SileroState { ..start });
            let mut partial = [0.0; UNITS];
            // SAFETY: the CPU has AVX2 and FMA (checked above).
            unsafe { avx2::cell(&gates, &bias, &mut vector, &weight, &mut partial) };
            let mut plain_partial = [0.0; UNITS];
            cell_plain(&gates, &bias, &mut plain, &weight, &mut plain_partial);
            assert_eq!((vector.c, vector.h, partial), (plain.c, plain.h, plain_partial));
        }
    }

    #[test]
    fn a_convolution_equals_its_definition() {
        for (inputs, outputs, stride, len, lanes) in [(BINS, 128, 1, 4, 3), (128, 64, 2, 4, 2), (64, 64, 2, 2, 5), (64, 128, 1, 1, 1)] {
            // w[o][t][c], tap-major as `Conv` keeps it
            let w: Vec<f32> = (0..outputs * 3 * inputs).map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0).collect();
            let bias: Vec<f32> = (0..outputs).map(|o| (o % 5) as f32 / 10.0 - 0.2).collect();
            let conv = Conv { weight: Packed::new(&w, outputs, 3 * inputs), bias: bias.clone(), inputs, outputs, stride };
            let input: Vec<f32> = (0..lanes * len * inputs).map(|i| ((i * 104_729) % 997) as f32 / 498.0 - 1.0).collect();
            let (mut cols, mut part, mut out) = (Vec::new(), Vec::new(), Vec::new());
            conv.run(&input, lanes, len, &mut cols, &mut part, &mut out);
            let n = conv.out_len(len);
            for lane in 0..lanes {
                for j in 0..n {
                    for o in 0..outputs {
                        let mut sum = f64::from(bias[o]);
                        for t in 0..3 {
                            let Some(p) = (j * stride + t).checked_sub(1).filter(|&p| p < len) else { continue };
                            for c in 0..inputs {
                                sum += f64::from(w[(o * 3 + t) * inputs + c]) * f64::from(input[(lane * len + p) * inputs + c]);
                            }
                        }
                        let got = out[(lane * n + j) * outputs + o];
                        assert!(
                            (got - sum.max(0.0) as f32).abs() < 1e-3,
                            "{inputs}x{outputs}/{stride} lane {lane} j {j} o {o}: {got} {sum}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn tanh_by_exp_is_close() {
        for i in -2000..=2000 {
            let x = i as f32 / 100.0;
            assert!((tanh(x) - x.tanh()).abs() < 1e-6, "{x}");
        }
    }

    #[test]
    fn both_matmul_paths_compute_the_product() {
        let (rows, k) = (128, 387);
        let w: Vec<f32> = (0..rows * k).map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0).collect();
        let packed = Packed::new(&w, rows, k);
        for n in [1, 2, 3, 4, 5, 6, 7, 13] {
            let cols: Vec<f32> = (0..n * k).map(|i| ((i * 104_729) % 997) as f32 / 498.0 - 1.0).collect();
            let want: Vec<f32> = (0..rows * n)
                .map(|i| {
                    let (j, o) = (i / rows, i % rows);
                    (0..k).map(|kk| f64::from(w[o * k + kk]) * f64::from(cols[j * k + kk])).sum::<f64>() as f32
                })
                .collect();
            let (mut fast, mut portable) = (vec![0.0; rows * n], vec![7.0; rows * n]);
            matmul(&packed, &cols, n, &mut fast);
            matmul_portable(&packed, 0, k, &cols, n, &mut portable);
            for ((a, b), c) in fast.iter().zip(&portable).zip(&want) {
                assert!((a - c).abs() < 1e-3 && (b - c).abs() < 1e-3, "n={n}: {a} {b} {c}");
            }
            // a column's result does not depend on the columns around it (batch = alone)
            for j in 0..n {
                let mut alone = vec![0.0; rows];
                matmul(&packed, &cols[j * k..(j + 1) * k], 1, &mut alone);
                assert_eq!(alone, fast[j * rows..(j + 1) * rows], "n={n}, column {j}");
            }
            // leaving out zero inputs at the start and the end of k changes nothing
            let (k0, k1) = (129, 258);
            let zeroed: Vec<f32> = cols.iter().enumerate().map(|(i, &x)| if (k0..k1).contains(&(i % k)) { x } else { 0.0 }).collect();
            let inner: Vec<f32> = cols.chunks_exact(k).flat_map(|c| c[k0..k1].to_vec()).collect();
            let (mut full, mut taps, mut portable_taps) = (vec![0.0; rows * n], vec![0.0; rows * n], vec![0.0; rows * n]);
            matmul(&packed, &zeroed, n, &mut full);
            matmul_taps(&packed, k0, k1, &inner, n, &mut taps);
            matmul_portable(&packed, k0, k1, &inner, n, &mut portable_taps);
            assert_eq!(full, taps, "n={n}");
            for (a, b) in taps.iter().zip(&portable_taps) {
                assert!((a - b).abs() < 1e-3, "n={n}: {a} {b}");
            }
        }
    }
}
