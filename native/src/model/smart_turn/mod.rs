//! Smart Turn v3 (pipecat's end-of-turn model), run natively from its int8 ONNX file.
//!
//! The network is Whisper-tiny's encoder with a classification head: log-mel features
//! (80 × 800, `whisper_mel.rs`); conv1d (k 3) and GELU; conv1d (k 3, stride 2) and
//! GELU; positions added; 4 pre-norm transformer layers (6 heads of 64, FFN 1536,
//! GELU); LayerNorm; attention pooling over the 400 frames; Gemm, LayerNorm, GELU,
//! Gemm, GELU, Gemm; sigmoid: the probability that the turn is complete.
//!
//! The file is quantized (QDQ: uint8 activations with one scale per tensor, int8
//! weights with one per channel). The forward keeps that arithmetic: each product runs
//! on bytes with i32 sums (`int8.rs`, the kernel chosen for the CPU), each quantization
//! point of the graph rounds where the graph rounds, and what lies between two such
//! points runs in f32. Where a quantized value goes through a function into another
//! quantization (GELU after conv1 and fc1, the attention softmax's exponentials), the
//! function is a table over the 256 codes, built at load. `load.rs` walks the graph.
//!
//! The weights are immutable and shared by every node of the process; the buffers of
//! one evaluation ([`Scratch`], about 5 MB) are pooled: as many exist as evaluations
//! ever ran at once, and an evaluation after the first allocates nothing.

mod load;

use std::sync::Mutex;

use super::int8::{Kernel, PackedB, gemm};
use super::onnx::OnnxGraph;
use super::whisper_mel::{FRAMES, LogMel, MELS, MelScratch};

/// Channels per attention head.
const HEAD: usize = 64;
/// Frames after the strided convolution.
const TIME: usize = FRAMES / 2;

/// A uint8 quantization: value = (code − zero) · scale.
#[derive(Clone, Copy, Debug)]
struct Quant {
    scale: f32,
    zero: i32,
}

/// Rounds half to even and clamps to a code: `v` is the value over its scale; max and
/// min drop a NaN (it becomes the lowest code). Adding and taking away 1.5 · 2²³ rounds
/// (exact for |v| < 2²²; v is clamped first), which vectorizes where round_ties_even
/// would call libm. onnxruntime's kernels clamp, then round, then add the zero point.
#[inline(always)]
#[allow(clippy::manual_clamp)] // max/min map NaN to a bound; clamp would keep it
fn to_code(v: f32, zero: i32) -> u8 {
    const MAGIC: f32 = 12_582_912.0;
    let z = zero as f32;
    let v = v.max(-z).min(255.0 - z);
    let code = (v + MAGIC) - MAGIC + z;
    // SAFETY: code is finite and within 0..=255 (v was clamped to −zero..=255 − zero).
    unsafe { code.to_int_unchecked::<i32>() as u8 }
}

impl Quant {
    fn new(scale: f32, zero: i32) -> Self {
        Self { scale, zero }
    }

    /// QuantizeLinear: x / scale (a division, as onnxruntime's), rounded, plus zero.
    #[inline(always)]
    fn code(self, x: f32) -> u8 {
        to_code(x / self.scale, self.zero)
    }

    #[inline(always)]
    fn value(self, code: u8) -> f32 {
        (i32::from(code) - self.zero) as f32 * self.scale
    }
}

/// An int8 product `x · W` of a quantized input into a quantized output, and a bias
/// added after the output is dequantized (MatMul then Add).
struct Dense {
    b: PackedB,
    in_q: Quant,
    out_q: Quant,
    /// Per output column: the operator's int32 bias (Conv, Gemm) less the input's zero
    /// point times the weights' column sum (exact integers); the requantization factor
    /// input scale · weight scale / output scale as onnxruntime's fused kernels
    /// (QLinearConv, QLinearMatMul, QGemm) compute and apply it; the bias after.
    offset: Vec<i32>,
    requant: Vec<f32>,
    outer_bias: Vec<f32>,
}

impl Dense {
    fn new(b: PackedB, in_q: Quant, scales: &[f32], inner_bias: Option<Vec<i32>>, out_q: Quant, outer_bias: Option<Vec<f32>>) -> Self {
        let n = b.n();
        let inner = inner_bias.unwrap_or_else(|| vec![0; n]);
        Self {
            offset: b.col_sums.iter().zip(&inner).map(|(&c, &bias)| bias - in_q.zero * c).collect(),
            requant: scales.iter().map(|&s| in_q.scale * s / out_q.scale).collect(),
            outer_bias: outer_bias.unwrap_or_else(|| vec![0.0; n]),
            b,
            in_q,
            out_q,
        }
    }

    fn n(&self) -> usize {
        self.b.n()
    }

    /// Runs the product of `m` rows of `a` into the front of `acc`; returns it (m × n).
    #[inline(always)]
    fn product<'s>(&self, a: &[u8], lda: usize, m: usize, acc: &'s mut Vec<i32>) -> &'s [i32] {
        let c = prefix(acc, m * self.n());
        gemm(a, lda, m, &self.b, c, self.n());
        c
    }

    /// The output codes of every row of integer sums in `acc` (written as plain indexed
    /// loops over equal-length slices, so they vectorize).
    #[inline(always)]
    fn codes(&self, acc: &[i32], out: &mut Vec<u8>) {
        let n = self.n();
        sized(out, acc.len());
        let (offset, requant, zero) = (&self.offset[..n], &self.requant[..n], self.out_q.zero);
        for (row, o) in acc.chunks_exact(n).zip(out.chunks_exact_mut(n)) {
            for j in 0..n {
                o[j] = to_code((row[j] + offset[j]) as f32 * requant[j], zero);
            }
        }
    }

    /// The dequantized outputs plus the bias after them, of every row of sums in `acc`.
    #[inline(always)]
    fn values(&self, acc: &[i32], codes: &mut Vec<u8>, out: &mut Vec<f32>) {
        self.codes(acc, codes);
        let n = self.n();
        sized(out, acc.len());
        let (q, bias) = (self.out_q, &self.outer_bias[..n]);
        for (row, o) in codes.chunks_exact(n).zip(out.chunks_exact_mut(n)) {
            for j in 0..n {
                o[j] = q.value(row[j]) + bias[j];
            }
        }
    }
}

struct Norm {
    weight: Vec<f32>,
    bias: Vec<f32>,
    eps: f32,
}

impl Norm {
    /// LayerNorm of each row of `x` (rows of `weight.len()`, a multiple of 8) into
    /// `out`, as onnxruntime's MLAS kernel computes it: the mean summed in f64 over four
    /// lanes, the centred variance in f32 over eight fused lanes, each reduced in its
    /// order; y = fma((x − mean) · (1 / √(var / n + ε)), weight, bias).
    #[inline(always)]
    fn run(&self, x: &[f32], out: &mut [f32]) {
        let w = self.weight.len();
        let n = w as f32;
        for (row, o) in x.chunks_exact(w).zip(out.chunks_exact_mut(w)) {
            let mut lanes = [0f64; 4];
            for quad in row.chunks_exact(4) {
                for (l, &v) in lanes.iter_mut().zip(quad) {
                    *l += f64::from(v);
                }
            }
            let mean = (((lanes[0] + lanes[2]) + (lanes[1] + lanes[3])) / f64::from(n)) as f32;
            let mut var = [0f32; 8];
            for block in row.chunks_exact(8) {
                for (l, &v) in var.iter_mut().zip(block) {
                    let d = v - mean;
                    *l = d.mul_add(d, *l);
                }
            }
            let var = ((var[0] + var[4]) + (var[2] + var[6])) + ((var[1] + var[5]) + (var[3] + var[7]));
            let inv = 1.0 / (var / n + self.eps).sqrt();
            for (((o, &v), &g), &b) in o.iter_mut().zip(row).zip(&self.weight).zip(&self.bias) {
                *o = ((v - mean) * inv).mul_add(g, b);
            }
        }
    }
}

impl Norm {
    /// LayerNorm as onnxruntime's SkipLayerNormalization computes it (the final norm,
    /// fused with the last residual sum): f32 sums in order, var = E[x²] − mean²,
    /// y = (x − mean) / √(var + ε) · weight + bias.
    #[inline(always)]
    fn run_sequential(&self, x: &[f32], out: &mut [f32]) {
        let w = self.weight.len();
        let n = w as f32;
        for (row, o) in x.chunks_exact(w).zip(out.chunks_exact_mut(w)) {
            let (mut mean, mut square) = (0f32, 0f32);
            for &v in row {
                mean += v;
                square += v * v;
            }
            mean /= n;
            let denom = (square / n - mean * mean + self.eps).sqrt();
            for (((o, &v), &g), &b) in o.iter_mut().zip(row).zip(&self.weight).zip(&self.bias) {
                *o = (v - mean) / denom * g + b;
            }
        }
    }
}

/// One encoder layer.
struct Layer {
    norm1: Norm,
    q: Dense,
    k: Dense,
    v: Dense,
    /// Scalars the queries and keys are multiplied by (1/⁴√64 each), and their
    /// quantizations into the attention product.
    q_scale: f32,
    q_quant: Quant,
    k_scale: f32,
    k_quant: Quant,
    v_quant: Quant,
    heads: usize,
    scores_q: Quant,
    probs_q: Quant,
    /// The attention output's quantization (the graph's two identical ones, as one).
    ctx_q: Quant,
    out: Dense,
    norm2: Norm,
    fc1: Dense,
    gelu_q: Quant,
    fc2: Dense,
}

/// One layer of the classification head.
struct HeadLayer {
    dense: Dense,
    norm: Option<Norm>,
    gelu: bool,
}

/// The network as `load` reads it.
struct Net {
    conv1: Dense,
    conv2: Dense,
    positions: Vec<f32>,
    width: usize,
    layers: Vec<Layer>,
    final_norm: Norm,
    final_q: Quant,
    pool1: Dense,
    tanh_q: Quant,
    pool2: Dense,
    head: Vec<HeadLayer>,
}

/// Tables over the 256 codes of a quantized value.
struct Tables {
    /// conv1's quantized output → GELU → conv2's input code.
    gelu1: [u8; 256],
    /// conv2's quantized output → GELU (f32, into the residual stream).
    gelu2: [f32; 256],
    /// Per layer: fc1's quantized output + bias → GELU → fc2's input code, per column.
    fc1: Vec<ColumnTables>,
    /// The pooling's first product's output + bias → tanh → its code, per column.
    tanh: ColumnTables,
    /// Per layer: the attention softmax as onnxruntime's QLinearSoftmax computes it.
    softmax: Vec<QSoftmax>,
}

/// A table over the 256 codes for each column of rows of codes: code c in column j
/// becomes `data[j · 256 + c]`.
struct ColumnTables {
    /// 256 entries per column.
    data: Vec<u8>,
    columns: usize,
}

impl ColumnTables {
    fn new(columns: usize, entry: impl Fn(usize, u8) -> u8) -> Self {
        let data = (0..columns).flat_map(|j| (0..=255u8).map(move |c| (j, c))).map(|(j, c)| entry(j, c)).collect();
        Self { data, columns }
    }

    /// Replaces every code of `rows` (rows of `columns` codes) by its column's entry.
    #[inline(always)]
    fn apply(&self, rows: &mut [u8]) {
        for row in rows.chunks_exact_mut(self.columns) {
            for (j, c) in row.iter_mut().enumerate() {
                *c = self.data[j * 256 + usize::from(*c)];
            }
        }
    }
}

/// onnxruntime's QLinearSoftmax over uint8 rows of `TIME` codes: a table of
/// e^((i − 255 + shift) · input scale) built in f64 (shift keeps the row sum in f32's
/// range), the row looked up from its maximum, summed, and each entry requantized
/// with ⌊1 / output scale⌋ (not the scale itself, as the graph would).
struct QSoftmax {
    table: [f32; 256],
    out_scale: f32,
    zero: i32,
}

impl QSoftmax {
    fn new(input: Quant, output: Quant) -> Self {
        let x_scale = f64::from(input.scale);
        let shift = ((f64::from(f32::MAX) / TIME as f64).ln() - 5.0).max(0.0) / x_scale;
        let mut table = [0f32; 256];
        for (i, t) in table.iter_mut().enumerate() {
            *t = ((i as f64 - 255.0 + shift) * x_scale).exp() as f32;
        }
        Self { table, out_scale: (1.0 / output.scale).floor(), zero: output.zero }
    }

    /// Softmax of `LANES` rows of codes (`TIME` each, one after another), in place.
    /// Each row is summed in its own order, as onnxruntime's kernel sums it; the rows'
    /// sums run side by side (eight independent chains), the rest row by row.
    #[inline(always)]
    fn rows(&self, codes: &mut [u8], exps: &mut [f32; LANES * TIME]) {
        let mut shifts = [0usize; LANES];
        for (shift, row) in shifts.iter_mut().zip(codes.chunks_exact(TIME)) {
            // a fold, not max(): it vectorizes
            *shift = usize::from(255 - row.iter().fold(0, |m, &c| m.max(c)));
        }
        // exps[r · TIME + u] = table[code + 255 − row max] (≤ 255: the mask only tells
        // the compiler so)
        for ((e, row), &shift) in exps.chunks_exact_mut(TIME).zip(codes.chunks_exact(TIME)).zip(&shifts) {
            for (e, &c) in e.iter_mut().zip(row) {
                *e = self.table[(usize::from(c) + shift) & 255];
            }
        }
        let mut totals = [0f32; LANES];
        for u in 0..TIME {
            for (r, t) in totals.iter_mut().enumerate() {
                *t += exps[r * TIME + u];
            }
        }
        // y = round(e · ⌊1/scale⌋ / sum) + zero
        for ((row, e), &t) in codes.chunks_exact_mut(TIME).zip(exps.chunks_exact(TIME)).zip(&totals) {
            for (c, &e) in row.iter_mut().zip(e) {
                *c = to_code(e * self.out_scale / t, self.zero);
            }
        }
    }
}

/// Rows of attention scores whose softmax runs side by side.
const LANES: usize = 8;

/// The buffers of one evaluation.
struct Scratch {
    mel: MelScratch,
    features: Vec<f32>,
    codes: Vec<u8>,
    cols: Vec<u8>,
    acc: Vec<i32>,
    h: Vec<f32>,
    normed: Vec<f32>,
    a: Vec<u8>,
    q: Vec<u8>,
    k: Vec<u8>,
    v: Vec<u8>,
    probs: Vec<u8>,
    ctx: Vec<u8>,
    keys: PackedB,
    values: PackedB,
    row_sums: Vec<i32>,
    hidden: Vec<u8>,
    floats: Vec<f32>,
    pooled: Vec<f32>,
    head: Vec<f32>,
}

impl Scratch {
    fn new(kernel: Kernel) -> Self {
        Self {
            mel: MelScratch::default(),
            features: Vec::new(),
            codes: Vec::new(),
            cols: Vec::new(),
            acc: Vec::new(),
            h: Vec::new(),
            normed: Vec::new(),
            a: Vec::new(),
            q: Vec::new(),
            k: Vec::new(),
            v: Vec::new(),
            probs: Vec::new(),
            ctx: Vec::new(),
            keys: PackedB::new(kernel, 4, 1, |_, _| 0),
            values: PackedB::new(kernel, 4, 1, |_, _| 0),
            row_sums: Vec::new(),
            hidden: Vec::new(),
            floats: Vec::new(),
            pooled: Vec::new(),
            head: Vec::new(),
        }
    }
}

/// The Smart Turn model: weights, tables and pooled evaluation buffers.
pub struct SmartTurn {
    net: Net,
    tables: Tables,
    kernel: Kernel,
    pool: Mutex<Vec<Scratch>>,
}

/// GELU as the graph spells it out and onnxruntime runs it, op by op in f32:
/// x · (0.5 · (erf(x / √2) + 1)).
fn gelu(x: f32) -> f32 {
    x * (0.5 * (erf(x / std::f32::consts::SQRT_2) + 1.0))
}

/// The error function as onnxruntime computes it on x86-64 (MLAS's FMA kernel): a
/// minimax polynomial in x² up to 0.921875; above, 1 − e^(−p(|x|)) with p a polynomial
/// and e^ its own range-reduced polynomial (the published "faithfully rounded erff"
/// scheme). Equal to onnxruntime's Erf on every input tested (300,000, |x| ≤ 10), so
/// GELU's outputs round to the codes onnxruntime's do.
#[allow(clippy::excessive_precision)] // the constants as published, digit for digit
fn erf(x: f32) -> f32 {
    const SPLIT: f32 = 0.921875;
    const SMALL: [f32; 6] = [-5.99104969e-4, 4.99339588e-3, -2.67667342e-2, 1.12818025e-1, -3.76124859e-1, 1.28379151e-1];
    const BIG: [f32; 7] = [1.72948930e-5, -3.83208680e-4, 3.88393435e-3, -2.42545605e-2, 1.06777847e-1, 6.34846687e-1, 1.28717512e-1];
    const EXP: [f32; 7] = [1.38319808e-3, 8.37550033e-3, 4.16689515e-2, 1.66664466e-1, 4.99999851e-1, 1.0, 1.0];
    const LOWEST: f32 = -88.3762626647949;
    const LOG2_E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = -6.93145752e-1;
    const LN2_LO: f32 = -1.42860677e-6;
    const ROUND: f32 = 12_582_912.0;
    let t = x.abs();
    let r = if t <= SPLIT {
        let s = t * t;
        SMALL[1..].iter().fold(SMALL[0], |r, &p| r.mul_add(s, p)).mul_add(t, t)
    } else {
        let p = BIG[1..].iter().fold(BIG[0], |r, &p| r.mul_add(t, p)).mul_add(t, t);
        let a = (-p).max(LOWEST);
        let k = LOG2_E.mul_add(a, ROUND) - ROUND;
        let f = k.mul_add(LN2_LO, k.mul_add(LN2_HI, a));
        let e = EXP[1..].iter().fold(EXP[0], |r, &p| r.mul_add(f, p));
        let k = k as i32;
        let two_k = if k >= -126 { f32::from_bits(((k + 127) as u32) << 23) } else { 0.0 };
        1.0 - e * two_k
    };
    r.copysign(x)
}

/// Each row of `x` (rows of `len` from `lda` apart): the sum of its first `len` bytes.
#[inline(always)]
fn row_sums(x: &[u8], lda: usize, rows: usize, len: usize, out: &mut Vec<i32>) {
    out.clear();
    out.extend((0..rows).map(|r| x[r * lda..r * lda + len].iter().map(|&b| i32::from(b)).sum::<i32>()));
}

impl SmartTurn {
    /// The network in the ONNX graph `g`, its products for `kernel`.
    pub(super) fn from_graph(g: &OnnxGraph, kernel: Kernel) -> Result<Self, String> {
        let net = load::load(g, kernel).map_err(|e| {
            format!(
                "not a Smart Turn graph the native forward reads (v3.1 and v3.2 are; engine \"onnxruntime\" runs others, such as v3.0): {e}"
            )
        })?;
        let (c1, c2, g1) = (net.conv1.out_q, net.conv2.out_q, net.conv2.in_q);
        let mut gelu1 = [0u8; 256];
        let mut gelu2 = [0f32; 256];
        for code in 0..=255u8 {
            gelu1[usize::from(code)] = g1.code(gelu(c1.value(code)));
            gelu2[usize::from(code)] = gelu(c2.value(code));
        }
        let fc1 = net
            .layers
            .iter()
            .map(|l| {
                let (q, bias) = (l.fc1.out_q, &l.fc1.outer_bias);
                ColumnTables::new(l.fc1.n(), |j, c| l.gelu_q.code(gelu(q.value(c) + bias[j])))
            })
            .collect();
        let softmax = net.layers.iter().map(|l| QSoftmax::new(l.scores_q, l.probs_q)).collect();
        let (p, t) = (&net.pool1, net.tanh_q);
        let tanh = ColumnTables::new(p.n(), |j, c| t.code((p.out_q.value(c) + p.outer_bias[j]).tanh()));
        Ok(Self { net, tables: Tables { gelu1, gelu2, fc1, tanh, softmax }, kernel, pool: Mutex::new(Vec::new()) })
    }

    /// The kernel the products run on.
    pub fn kernel(&self) -> Kernel {
        self.kernel
    }

    /// The probability that each clip (16 kHz; its last 8 s used, front-padded with
    /// zeros when shorter, as pipecat does) ends a turn. Clips are evaluated one after
    /// another on the calling thread, sharing one set of buffers.
    pub fn probabilities(&self, clips: &[&[f32]]) -> Vec<f32> {
        let mut scratch = self.pool.lock().unwrap_or_else(|p| p.into_inner()).pop().unwrap_or_else(|| Scratch::new(self.kernel));
        let out = clips
            .iter()
            .map(|clip| {
                let mut features = std::mem::take(&mut scratch.features);
                features.resize(MELS * FRAMES, 0.0);
                features_of(clip, &mut scratch.mel, &mut features);
                let p = self.forward(&features, &mut scratch);
                scratch.features = features;
                p
            })
            .collect();
        self.pool.lock().unwrap_or_else(|p| p.into_inner()).push(scratch);
        out
    }

    /// The probability from features (80 × 800, mel-major): the body compiled for AVX2
    /// where the CPU has it (the element-wise steps between products vectorize).
    fn forward(&self, x: &[f32], s: &mut Scratch) -> f32 {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU has AVX2 and FMA (checked just above).
            return unsafe { self.forward_avx2(x, s) };
        }
        self.forward_body(x, s)
    }

    /// # Safety
    /// The CPU must have AVX2 and FMA.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn forward_avx2(&self, x: &[f32], s: &mut Scratch) -> f32 {
        self.forward_body(x, s)
    }

    #[inline(always)]
    fn forward_body(&self, x: &[f32], s: &mut Scratch) -> f32 {
        let net = &self.net;
        let w = net.width;
        // conv1 (stride 1) over the quantized features, time-major im2col: k = tap · 80 + mel
        let in_q = net.conv1.in_q;
        s.codes.clear();
        s.codes.extend((0..FRAMES).flat_map(|t| (0..MELS).map(move |m| in_q.code(x[m * FRAMES + t]))));
        im2col(&s.codes, FRAMES, MELS, 1, in_q.zero as u8, &mut s.cols);
        let acc = net.conv1.product(&s.cols, 3 * MELS, FRAMES, &mut s.acc);
        let gelu1 = &self.tables.gelu1;
        net.conv1.codes(acc, &mut s.a);
        for c in s.a.iter_mut() {
            *c = gelu1[usize::from(*c)];
        }
        // conv2 (stride 2) → GELU → + positions: the residual stream h (TIME × w)
        let g1 = net.conv2.in_q;
        im2col(&s.a, FRAMES, w, 2, g1.zero as u8, &mut s.cols);
        let acc = net.conv2.product(&s.cols, 3 * w, TIME, &mut s.acc);
        let gelu2 = &self.tables.gelu2;
        net.conv2.codes(acc, &mut s.codes);
        sized(&mut s.h, s.codes.len());
        for ((h, &c), &p) in s.h.iter_mut().zip(&s.codes).zip(&net.positions) {
            *h = gelu2[usize::from(c)] + p;
        }
        for (l, layer) in net.layers.iter().enumerate() {
            self.layer(layer, l, l + 1 == net.layers.len(), s);
        }
        // final norm → attention pooling over time → head
        s.normed.resize(s.h.len(), 0.0);
        net.final_norm.run_sequential(&s.h, &mut s.normed);
        let fq = net.final_q;
        quantize(&s.normed, fq, &mut s.a);
        let acc = net.pool1.product(&s.a, w, TIME, &mut s.acc);
        let n1 = net.pool1.n();
        net.pool1.codes(acc, &mut s.hidden);
        self.tables.tanh.apply(&mut s.hidden);
        let acc = net.pool2.product(&s.hidden, n1, TIME, &mut s.acc);
        // the frames' weights (softmax over time), in the scratch's float buffer
        net.pool2.values(acc, &mut s.codes, &mut s.floats);
        let max = s.floats.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        s.floats.iter_mut().for_each(|v| *v = (*v - max).exp());
        let total: f32 = s.floats.iter().sum();
        s.pooled.clear();
        s.pooled.resize(w, 0.0);
        for (row, &wt) in s.a.chunks_exact(w).zip(&s.floats) {
            for (p, &code) in s.pooled.iter_mut().zip(row) {
                *p += fq.value(code) * (wt / total);
            }
        }
        let mut cur = std::mem::take(&mut s.pooled);
        let mut next = std::mem::take(&mut s.head);
        for layer in &net.head {
            let d = &layer.dense;
            quantize(&cur, d.in_q, &mut s.a);
            let acc = d.product(&s.a, d.b.k(), 1, &mut s.acc);
            d.values(acc, &mut s.codes, &mut next);
            if let Some(norm) = &layer.norm {
                cur.resize(next.len(), 0.0);
                norm.run(&next, &mut cur);
                std::mem::swap(&mut cur, &mut next);
            }
            if layer.gelu {
                next.iter_mut().for_each(|v| *v = gelu(*v));
            }
            std::mem::swap(&mut cur, &mut next);
        }
        let logit = cur[0];
        (s.pooled, s.head) = (cur, next);
        1.0 / (1.0 + (-logit).exp())
    }

    #[inline(always)]
    fn layer(&self, l: &Layer, index: usize, last: bool, s: &mut Scratch) {
        let w = self.net.width;
        s.normed.resize(s.h.len(), 0.0);
        l.norm1.run(&s.h, &mut s.normed);
        quantize(&s.normed, l.q.in_q, &mut s.a);
        for (dense, scale, quant, out) in
            [(&l.q, l.q_scale, l.q_quant, &mut s.q), (&l.k, l.k_scale, l.k_quant, &mut s.k), (&l.v, 1.0, l.v_quant, &mut s.v)]
        {
            let acc = dense.product(&s.a, w, TIME, &mut s.acc);
            dense.values(acc, out, &mut s.floats);
            for (o, &v) in out.iter_mut().zip(&s.floats) {
                *o = quant.code(v * scale);
            }
        }
        sized(&mut s.ctx, TIME * w);
        let softmax = &self.tables.softmax[index];
        let score_requant = l.q_quant.scale * l.k_quant.scale / l.scores_q.scale;
        let ctx_requant = l.probs_q.scale * l.v_quant.scale / l.ctx_q.scale;
        let mut exps = [0f32; LANES * TIME];
        for head in 0..l.heads {
            let at = head * HEAD;
            // scores = Q_h · K_hᵀ (QLinearMatMul), then QLinearSoftmax over each row
            s.keys.repack_codes(&s.k[at..], w, HEAD, TIME, true);
            row_sums(&s.q[at..], w, TIME, HEAD, &mut s.row_sums);
            let acc = prefix(&mut s.acc, TIME * TIME);
            gemm(&s.q[at..], w, TIME, &s.keys, acc, TIME);
            s.probs.resize(TIME * TIME, 0);
            let (zq, cb) = (l.q_quant.zero, 128 - l.k_quant.zero);
            for ((row, codes), &row_sum) in acc.chunks_exact(TIME).zip(s.probs.chunks_exact_mut(TIME)).zip(&s.row_sums) {
                let base = cb * row_sum - zq * cb * HEAD as i32;
                for ((c, &sum), &col) in codes.iter_mut().zip(row).zip(&s.keys.col_sums) {
                    *c = to_code((sum + base - zq * col) as f32 * score_requant, l.scores_q.zero);
                }
            }
            for rows in s.probs.chunks_exact_mut(LANES * TIME) {
                softmax.rows(rows, &mut exps);
            }
            // context = P · V_h
            s.values.repack_codes(&s.v[at..], w, TIME, HEAD, false);
            row_sums(&s.probs, TIME, TIME, TIME, &mut s.row_sums);
            let acc = prefix(&mut s.acc, TIME * HEAD);
            gemm(&s.probs, TIME, TIME, &s.values, acc, HEAD);
            let (zp, cb) = (l.probs_q.zero, 128 - l.v_quant.zero);
            for ((row, ctx), &row_sum) in acc.chunks_exact(HEAD).zip(s.ctx.chunks_exact_mut(w)).zip(&s.row_sums) {
                let base = cb * row_sum - zp * cb * TIME as i32;
                for ((c, &sum), &col) in ctx[at..at + HEAD].iter_mut().zip(row).zip(&s.values.col_sums) {
                    *c = to_code((sum + base - zp * col) as f32 * ctx_requant, l.ctx_q.zero);
                }
            }
        }
        let acc = l.out.product(&s.ctx, w, TIME, &mut s.acc);
        l.out.values(acc, &mut s.codes, &mut s.floats);
        for (h, &v) in s.h.iter_mut().zip(&s.floats) {
            *h += v;
        }
        // feed-forward: fc1 → GELU (a table per column) → fc2
        l.norm2.run(&s.h, &mut s.normed);
        quantize(&s.normed, l.fc1.in_q, &mut s.a);
        let hidden = l.fc1.n();
        let acc = l.fc1.product(&s.a, w, TIME, &mut s.acc);
        l.fc1.codes(acc, &mut s.hidden);
        self.tables.fc1[index].apply(&mut s.hidden);
        let acc = l.fc2.product(&s.hidden, hidden, TIME, &mut s.acc);
        l.fc2.codes(acc, &mut s.codes);
        let (q, bias) = (l.fc2.out_q, &l.fc2.outer_bias[..w]);
        for (h, row) in s.h.chunks_exact_mut(w).zip(s.codes.chunks_exact(w)) {
            // the last residual sum is onnxruntime's SkipLayerNormalization's:
            // (stream + product) + bias; the others, stream + (product + bias)
            if last {
                for j in 0..w {
                    h[j] = (h[j] + q.value(row[j])) + bias[j];
                }
            } else {
                for j in 0..w {
                    h[j] += q.value(row[j]) + bias[j];
                }
            }
        }
    }
}

/// The first `n` elements of `v`, which grows to hold them and never shrinks: products
/// of different sizes take turns in one buffer without refilling it each time.
#[inline(always)]
fn prefix<T: Default + Clone>(v: &mut Vec<T>, n: usize) -> &mut [T] {
    if v.len() < n {
        v.resize(n, T::default());
    }
    &mut v[..n]
}

/// `v` at length `n` without refilling what it holds: every element is written next.
#[inline(always)]
fn sized<T: Default + Clone>(v: &mut Vec<T>, n: usize) {
    v.resize(n, T::default());
}

#[inline(always)]
fn quantize(x: &[f32], q: Quant, out: &mut Vec<u8>) {
    sized(out, x.len());
    for (o, &v) in out.iter_mut().zip(x) {
        *o = q.code(v);
    }
}

/// Rows of a kernel-3, padding-1 convolution with `stride` over `x` (`len` rows of
/// `channels`): output row t holds input rows t·stride − 1, t·stride, t·stride + 1
/// (`pad` outside), side by side.
#[inline(always)]
fn im2col(x: &[u8], len: usize, channels: usize, stride: usize, pad: u8, out: &mut Vec<u8>) {
    let rows = (len - 1) / stride + 1;
    out.clear();
    out.resize(rows * 3 * channels, pad);
    for (t, row) in out.chunks_exact_mut(3 * channels).enumerate() {
        for (tap, dst) in row.chunks_exact_mut(channels).enumerate() {
            if let Some(src) = (t * stride + tap).checked_sub(1).filter(|&p| p < len) {
                dst.copy_from_slice(&x[src * channels..(src + 1) * channels]);
            }
        }
    }
}

/// Smart Turn's input from a clip: its last 8 s, front-padded with zeros to 8 s, as
/// features (80 × 800).
pub fn features_of(clip: &[f32], mel: &mut MelScratch, out: &mut [f32]) {
    let samples = super::whisper_mel::SAMPLES;
    let clip = &clip[clip.len().saturating_sub(samples)..];
    let mut padded = std::mem::take(&mut mel.input);
    padded.clear();
    padded.resize(samples - clip.len(), 0.0);
    padded.extend(clip.iter().map(|&x| x.clamp(-super::SAMPLE_CLIP, super::SAMPLE_CLIP)));
    LogMel::shared().compute(&padded, mel, out);
    mel.input = padded;
}
