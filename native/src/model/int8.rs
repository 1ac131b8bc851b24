//! Integer matrix products for quantized models: `C[m][n] = Σₖ A[m][k] · B[k][n]`, A
//! unsigned bytes (activations), B signed bytes (weights, packed once), C i32.
//!
//! Kernels, chosen at run time from what the CPU has ([`Kernel::best`]):
//! - `Vnni512`: AVX-512 VNNI `vpdpbusd` on 16 columns, 4 k at a time (64 products per
//!   instruction);
//! - `AvxVnni`: the same instruction in its 256-bit AVX-VNNI form (8 columns);
//! - `Avx2`: `vpmaddubsw` for weights ([`Sums::SaturatedPairs`], as onnxruntime on
//!   such a CPU), bytes widened to 16 bits and `vpmaddwd` for exact sums;
//! - `Portable`: plain Rust, the reference the others are tested against.
//!
//! Exact sums ([`Sums::Exact`]) are i32 sums of at most [`MAX_K`] products of 255 · 128,
//! which cannot overflow: every kernel gives the same C bit for bit. Weights
//! ([`PackedB::weights`]) are summed as onnxruntime's u8 × s8 kernels sum them on the
//! same CPU: exactly where it has VNNI, in saturated pairs where it has only AVX2 or
//! AVX-512 without VNNI (MLAS multiplies there with `vpmaddubsw`, whose i16 pair sums
//! saturate, and converts no QLinearMatMul, QLinearConv or QGemm weight to avoid it).

/// Longest inner dimension: 2³¹ / (255 · 128) rounded down to a multiple of 4.
pub(crate) const MAX_K: usize = 65_536;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernel {
    Vnni512,
    AvxVnni,
    Avx2,
    Portable,
}

impl Kernel {
    /// Every kernel this CPU runs, fastest first.
    pub fn available() -> Vec<Kernel> {
        let mut kernels = Vec::new();
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            if has!("avx512f") && has!("avx512bw") && has!("avx512vnni") {
                kernels.push(Kernel::Vnni512);
            }
            if has!("avx2") && has!("avxvnni") {
                kernels.push(Kernel::AvxVnni);
            }
            if has!("avx2") {
                kernels.push(Kernel::Avx2);
            }
        }
        kernels.push(Kernel::Portable);
        kernels
    }

    pub fn name(self) -> &'static str {
        match self {
            Kernel::Vnni512 => "avx512-vnni",
            Kernel::AvxVnni => "avx-vnni",
            Kernel::Avx2 => "avx2",
            Kernel::Portable => "portable",
        }
    }

    /// Whether the kernel multiplies bytes in one instruction (VNNI).
    pub fn has_vnni(self) -> bool {
        matches!(self, Kernel::Vnni512 | Kernel::AvxVnni)
    }

    /// Columns per packed block.
    fn block(self) -> usize {
        match self {
            Kernel::Vnni512 => 16,
            Kernel::AvxVnni | Kernel::Avx2 => 8,
            Kernel::Portable => 1,
        }
    }
}

/// How the products of a row and a column are added up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sums {
    /// Every product added in i32.
    Exact,
    /// Each pair of products (k = 2j, 2j + 1) added into an i16 that saturates at
    /// ±2¹⁵ first (`vpmaddubsw`), the pairs then in i32.
    SaturatedPairs,
}

/// B (`k` × `n`, signed bytes) laid out for one kernel: blocks of [`Kernel::block`]
/// columns; within a block, for each group of 4 k, each column's 4 bytes together (the
/// `vpdpbusd` order); the AVX2 kernel reads the same bytes as 16-bit pairs. Columns
/// past `n` are zeros.
pub struct PackedB {
    kernel: Kernel,
    sums: Sums,
    data: Vec<i8>,
    k: usize,
    n: usize,
    /// Σₖ B[k][n], per column (for zero-point corrections).
    pub col_sums: Vec<i32>,
}

impl PackedB {
    /// Packs `b(k, n)` for `kernel`, summed exactly; `k` must be a multiple of 4, at
    /// most [`MAX_K`].
    pub fn new(kernel: Kernel, k: usize, n: usize, b: impl Fn(usize, usize) -> i8) -> Self {
        Self::with_sums(kernel, Sums::Exact, k, n, b)
    }

    /// Packs a model's constant weights `b(k, n)`, summed as onnxruntime sums them on a
    /// CPU with `kernel` (see the module's notes).
    pub fn weights(kernel: Kernel, k: usize, n: usize, b: impl Fn(usize, usize) -> i8) -> Self {
        let sums = if kernel == Kernel::Avx2 { Sums::SaturatedPairs } else { Sums::Exact };
        Self::with_sums(kernel, sums, k, n, b)
    }

    /// Packs `b(k, n)` for `kernel`, its products added up as `sums` says (saturated
    /// pairs on the AVX2 and portable kernels only).
    fn with_sums(kernel: Kernel, sums: Sums, k: usize, n: usize, b: impl Fn(usize, usize) -> i8) -> Self {
        assert!(sums == Sums::Exact || !kernel.has_vnni(), "saturated pairs on {}", kernel.name());
        let mut packed = Self { kernel, sums, data: Vec::new(), k, n, col_sums: Vec::new() };
        packed.repack(k, n, b);
        packed
    }

    /// Packs `b` into the buffers.
    fn repack(&mut self, k: usize, n: usize, b: impl Fn(usize, usize) -> i8) {
        let width = self.reshape(k, n);
        let mut quads = self.data.chunks_exact_mut(4);
        for block in 0..n.div_ceil(width) {
            // this block's column sums, in a fixed-size array (no bounds check per byte)
            let mut sums = [0i32; 16];
            let cols = block * width..((block + 1) * width).min(n);
            for group in (0..k).step_by(4) {
                for (col, sum) in (block * width..(block + 1) * width).zip(&mut sums) {
                    let quad = quads.next().expect("blocks · width · k bytes");
                    if cols.contains(&col) {
                        for (kk, v) in quad.iter_mut().enumerate() {
                            *v = b(group + kk, col);
                            *sum += i32::from(*v);
                        }
                    } else {
                        quad.fill(0);
                    }
                }
            }
            self.col_sums[block * width..(block + 1) * width].copy_from_slice(&sums[..width]);
        }
        self.col_sums.truncate(n);
    }

    /// Packs codes of zero point 128 as signed bytes (`code − 128`) from `src`, rows `ld`
    /// apart: `B[kk][j] = src[j·ld + kk]` when `by_column` (each column of B is a row of
    /// `src`: an attention's keys), else `src[kk·ld + j]` (its values). The fast form of
    /// [`Self::repack`] for B made per evaluation.
    pub fn repack_codes(&mut self, src: &[u8], ld: usize, k: usize, n: usize, by_column: bool) {
        let width = self.reshape(k, n);
        let (rows, cols) = if by_column { (n, k) } else { (k, n) };
        assert!(rows > 0 && src.len() >= (rows - 1) * ld + cols && ld >= cols, "repack_codes: src too short");
        let signed = |x: u8| (x ^ 0x80) as i8;
        for (block, packed) in self.data.chunks_exact_mut(width * k).enumerate() {
            for (group, quads) in packed.chunks_exact_mut(4 * width).enumerate() {
                let kk = group * 4;
                for (c, quad) in quads.chunks_exact_mut(4).enumerate() {
                    let col = block * width + c;
                    let bytes: [u8; 4] = if col >= n {
                        [0x80; 4]
                    } else if by_column {
                        src[col * ld + kk..col * ld + kk + 4].try_into().expect("4 bytes")
                    } else {
                        [src[kk * ld + col], src[(kk + 1) * ld + col], src[(kk + 2) * ld + col], src[(kk + 3) * ld + col]]
                    };
                    for (v, x) in quad.iter_mut().zip(bytes) {
                        *v = signed(x);
                    }
                }
            }
        }
        self.col_sums.truncate(n);
        let bias = 128 * k as i32;
        if by_column {
            for (col, sum) in self.col_sums.iter_mut().enumerate() {
                *sum = src[col * ld..col * ld + k].iter().map(|&x| i32::from(x)).sum::<i32>() - bias;
            }
        } else {
            self.col_sums.fill(-bias);
            for row in src.chunks(ld).take(k) {
                for (sum, &x) in self.col_sums.iter_mut().zip(&row[..n]) {
                    *sum += i32::from(x);
                }
            }
        }
    }

    /// Sizes the buffers for `k` × `n` (column sums zeroed); returns the block width.
    fn reshape(&mut self, k: usize, n: usize) -> usize {
        assert!(k.is_multiple_of(4) && k <= MAX_K, "k = {k}: a multiple of 4 up to {MAX_K}");
        let width = self.kernel.block();
        let blocks = n.div_ceil(width);
        (self.k, self.n) = (k, n);
        self.data.resize(blocks * width * k, 0);
        self.col_sums.clear();
        self.col_sums.resize(blocks * width, 0);
        width
    }

    pub fn k(&self) -> usize {
        self.k
    }

    pub fn n(&self) -> usize {
        self.n
    }
}

/// `c[i·ldc + j] = Σₖ a[i·lda + k] · b[k][j]` for i < m, j < b.n.
pub fn gemm(a: &[u8], lda: usize, m: usize, b: &PackedB, c: &mut [i32], ldc: usize) {
    let (k, n) = (b.k, b.n);
    if m == 0 || n == 0 {
        return;
    }
    assert!(lda >= k && ldc >= n && a.len() >= (m - 1) * lda + k && c.len() >= (m - 1) * ldc + n, "gemm shapes");
    match (b.kernel, b.sums) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: a PackedB for this kernel is only made where Kernel::available lists
        // it (the CPU has the features); the shapes were checked above. vpdpbusd sums
        // exactly; weights on VNNI kernels are exact (PackedB::weights).
        (Kernel::Vnni512, Sums::Exact) => unsafe { x86::vnni512::run(a, lda, m, b, c, ldc) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        (Kernel::AvxVnni, Sums::Exact) => unsafe { x86::avx_vnni::run(a, lda, m, b, c, ldc) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        (Kernel::Avx2, Sums::Exact) => unsafe { x86::avx2::run(a, lda, m, b, c, ldc) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        (Kernel::Avx2, Sums::SaturatedPairs) => unsafe { x86::avx2_pairs::run(a, lda, m, b, c, ldc) },
        // with_sums makes no other pair
        _ => portable(a, lda, m, b, c, ldc),
    }
}

/// The reference for both kinds of [`Sums`]: portable blocks are one column wide, so
/// column j's k bytes are contiguous.
fn portable(a: &[u8], lda: usize, m: usize, b: &PackedB, c: &mut [i32], ldc: usize) {
    debug_assert!(b.kernel == Kernel::Portable || !cfg!(target_arch = "x86_64"), "a {} B on the portable kernel", b.kernel.name());
    let k = b.k;
    let product = |x: u8, w: i8| i32::from(x) * i32::from(w);
    for i in 0..m {
        let row = &a[i * lda..i * lda + k];
        for (j, out) in c[i * ldc..i * ldc + b.n].iter_mut().enumerate() {
            let col = &b.data[j * k..(j + 1) * k];
            *out = match b.sums {
                Sums::Exact => row.iter().zip(col).map(|(&x, &w)| product(x, w)).sum(),
                Sums::SaturatedPairs => row
                    .chunks_exact(2)
                    .zip(col.chunks_exact(2))
                    .map(|(x, w)| (product(x[0], w[0]) + product(x[1], w[1])).clamp(i16::MIN.into(), i16::MAX.into()))
                    .sum(),
            };
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::PackedB;

    /// Writes one row's lanes of `NB` column blocks to C from column `col`, only the
    /// columns below `n`.
    #[inline(always)]
    fn store<const W: usize, const NB: usize>(c: &mut [i32], at: usize, col: usize, n: usize, lanes: &[[i32; W]; NB]) {
        for (j, block) in lanes.iter().enumerate() {
            let first = col + j * W;
            if first + W <= n {
                // a whole block: a copy of known size (vector moves, not a memcpy call)
                let whole: &mut [i32; W] = (&mut c[at + first..at + first + W]).try_into().expect("W lanes");
                *whole = *block;
            } else {
                let take = n - first;
                c[at + first..at + first + take].copy_from_slice(&block[..take]);
            }
        }
    }

    /// Generates a kernel: `$rows` rows × `$blocks` blocks of `$width` columns per tile,
    /// accumulators in registers along k (4 at a time).
    macro_rules! dpbusd_kernel {
        ($name:ident, $features:literal, $vec:ty, $width:literal, $rows:literal, $blocks:literal,
         $zero:expr, $load:expr, $bcast:expr, $dot:expr, $store:expr) => {
            pub mod $name {
                use super::*;

                /// One tile: `R` rows of A from `a` times `NB` blocks of B from `b`.
                ///
                /// # Safety
                /// The CPU has the features; `a` has `R` rows of `k` bytes `lda` apart;
                /// `b` has `NB` packed blocks of `k · width` bytes.
                #[target_feature(enable = $features)]
                #[allow(clippy::needless_range_loop)] // acc[r][j]: indices read clearer
                unsafe fn tile<const R: usize, const NB: usize>(
                    a: *const u8,
                    lda: usize,
                    b: *const i8,
                    k: usize,
                    lanes: &mut [[[i32; $width]; NB]; R],
                ) {
                    // SAFETY: offsets stay within the rows and blocks the contract names.
                    unsafe {
                        let mut acc: [[$vec; NB]; R] = [[$zero; NB]; R];
                        for group in (0..k).step_by(4) {
                            let mut w: [$vec; NB] = [$zero; NB];
                            for j in 0..NB {
                                w[j] = $load(b.add(j * $width * k + group * $width));
                            }
                            for r in 0..R {
                                let x = $bcast(a.add(r * lda + group).cast::<i32>().read_unaligned());
                                for j in 0..NB {
                                    acc[r][j] = $dot(acc[r][j], x, w[j]);
                                }
                            }
                        }
                        for r in 0..R {
                            for j in 0..NB {
                                $store(lanes[r][j].as_mut_ptr(), acc[r][j]);
                            }
                        }
                    }
                }

                /// Every row of A times `NB` blocks of B starting at block `block`.
                ///
                /// # Safety
                /// As [`run`], and blocks `block..block + NB` exist.
                #[target_feature(enable = $features)]
                unsafe fn panel<const NB: usize>(a: &[u8], lda: usize, m: usize, b: &PackedB, block: usize, c: &mut [i32], ldc: usize) {
                    let k = b.k;
                    let bp = b.data.as_ptr().wrapping_add(block * $width * k);
                    let mut i = 0;
                    // SAFETY: rows i..i + R < m are inside A (gemm checked its length);
                    // the blocks exist (caller).
                    unsafe {
                        while i + $rows <= m {
                            let mut lanes = [[[0i32; $width]; NB]; $rows];
                            tile::<$rows, NB>(a.as_ptr().add(i * lda), lda, bp, k, &mut lanes);
                            for (r, row) in lanes.iter().enumerate() {
                                store(c, (i + r) * ldc, block * $width, b.n, row);
                            }
                            i += $rows;
                        }
                        while i < m {
                            let mut lanes = [[[0i32; $width]; NB]; 1];
                            tile::<1, NB>(a.as_ptr().add(i * lda), lda, bp, k, &mut lanes);
                            store(c, i * ldc, block * $width, b.n, &lanes[0]);
                            i += 1;
                        }
                    }
                }

                /// # Safety
                /// The CPU has the features; shapes as `gemm` checks them.
                #[target_feature(enable = $features)]
                pub unsafe fn run(a: &[u8], lda: usize, m: usize, b: &PackedB, c: &mut [i32], ldc: usize) {
                    let blocks = b.n.div_ceil($width);
                    let mut block = 0;
                    // SAFETY: every block passed exists.
                    unsafe {
                        while block + $blocks <= blocks {
                            panel::<$blocks>(a, lda, m, b, block, c, ldc);
                            block += $blocks;
                        }
                        while block < blocks {
                            panel::<1>(a, lda, m, b, block, c, ldc);
                            block += 1;
                        }
                    }
                }
            }
        };
    }

    dpbusd_kernel!(
        vnni512,
        "avx512f,avx512bw,avx512vnni",
        __m512i,
        16,
        8,
        2,
        _mm512_setzero_si512(),
        load512,
        _mm512_set1_epi32,
        _mm512_dpbusd_epi32,
        store512
    );

    dpbusd_kernel!(
        avx_vnni,
        "avx2,avxvnni",
        __m256i,
        8,
        4,
        2,
        _mm256_setzero_si256(),
        load256,
        _mm256_set1_epi32,
        _mm256_dpbusd_avx_epi32,
        store256
    );

    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn load512(p: *const i8) -> __m512i {
        // SAFETY: the caller reads 64 bytes at p.
        unsafe { _mm512_loadu_si512(p.cast()) }
    }

    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn store512(p: *mut i32, v: __m512i) {
        // SAFETY: the caller writes 16 lanes at p.
        unsafe { _mm512_storeu_si512(p.cast(), v) }
    }

    #[target_feature(enable = "avx")]
    #[inline]
    unsafe fn load256(p: *const i8) -> __m256i {
        // SAFETY: the caller reads 32 bytes at p.
        unsafe { _mm256_loadu_si256(p.cast()) }
    }

    #[target_feature(enable = "avx")]
    #[inline]
    unsafe fn store256(p: *mut i32, v: __m256i) {
        // SAFETY: the caller writes 8 lanes at p.
        unsafe { _mm256_storeu_si256(p.cast(), v) }
    }

    /// `vpdpbusd` on AVX2: the 4 unsigned bytes of `x` (in every lane) times each lane's
    /// 4 signed bytes of `w`, summed into `acc` — as two 16-bit pair products.
    #[target_feature(enable = "avx2")]
    #[inline]
    fn dot_avx2(acc: __m256i, x: __m256i, w: __m256i) -> __m256i {
        let x_lo = _mm256_and_si256(x, _mm256_set1_epi16(0xff)); // bytes 0, 2 as i16
        let x_hi = _mm256_srli_epi16(x, 8); // bytes 1, 3
        let w_lo = _mm256_srai_epi16(_mm256_slli_epi16(w, 8), 8); // sign-extended 0, 2
        let w_hi = _mm256_srai_epi16(w, 8); // 1, 3
        let sum = _mm256_add_epi32(_mm256_madd_epi16(x_lo, w_lo), _mm256_madd_epi16(x_hi, w_hi));
        _mm256_add_epi32(acc, sum)
    }

    dpbusd_kernel!(avx2, "avx2", __m256i, 8, 4, 2, _mm256_setzero_si256(), load256, _mm256_set1_epi32, dot_avx2, store256);

    /// `vpmaddubsw` (pairs of u8 × s8 products added into saturating i16), then the two
    /// pairs of each lane added into `acc` (`vpmaddwd` by ones).
    #[target_feature(enable = "avx2")]
    #[inline]
    fn dot_avx2_pairs(acc: __m256i, x: __m256i, w: __m256i) -> __m256i {
        _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(x, w), _mm256_set1_epi16(1)))
    }

    dpbusd_kernel!(avx2_pairs, "avx2", __m256i, 8, 4, 2, _mm256_setzero_si256(), load256, _mm256_set1_epi32, dot_avx2_pairs, store256);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn random(seed: &mut u64) -> u32 {
        *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (*seed >> 33) as u32
    }

    #[test]
    fn every_kernel_this_cpu_has_equals_the_portable_one() {
        let mut seed = 7;
        for &(m, k, n) in &[(1, 4, 1), (5, 12, 17), (9, 64, 40), (13, 400, 33), (3, 1152, 48)] {
            let a: Vec<u8> = (0..m * (k + 3)).map(|_| random(&mut seed) as u8).collect();
            let b: Vec<i8> = (0..k * n).map(|_| random(&mut seed) as i8).collect();
            for sums in [Sums::Exact, Sums::SaturatedPairs] {
                let kernels = Kernel::available().into_iter().filter(|&k| sums == Sums::Exact || !k.has_vnni());
                let reference = {
                    let packed = PackedB::with_sums(Kernel::Portable, sums, k, n, |kk, j| b[kk * n + j]);
                    let mut c = vec![0; m * (n + 1)];
                    gemm(&a, k + 3, m, &packed, &mut c, n + 1);
                    c
                };
                // C[0][0] by hand
                let product = |kk: usize| i32::from(a[kk]) * i32::from(b[kk * n]);
                let expected00: i32 = match sums {
                    Sums::Exact => (0..k).map(product).sum(),
                    Sums::SaturatedPairs => (0..k / 2).map(|p| (product(2 * p) + product(2 * p + 1)).clamp(-32768, 32767)).sum(),
                };
                assert_eq!(reference[0], expected00);
                for kernel in kernels {
                    let packed = PackedB::with_sums(kernel, sums, k, n, |kk, j| b[kk * n + j]);
                    let mut c = vec![0; m * (n + 1)];
                    gemm(&a, k + 3, m, &packed, &mut c, n + 1);
                    assert_eq!(c, reference, "{} {sums:?} at {m}×{k}×{n}", kernel.name());
                }
            }
        }
    }

    #[test]
    fn codes_pack_as_their_closure_would() {
        let mut seed = 3;
        let (ld, k, n) = (40, 12, 21);
        let src: Vec<u8> = (0..ld * 24).map(|_| random(&mut seed) as u8).collect();
        for kernel in Kernel::available() {
            for by_column in [true, false] {
                let at = |kk: usize, j: usize| if by_column { j * ld + kk } else { kk * ld + j };
                let expected = PackedB::new(kernel, k, n, |kk, j| (i32::from(src[at(kk, j)]) - 128) as i8);
                let mut packed = PackedB::new(kernel, 4, 1, |_, _| 0);
                packed.repack_codes(&src, ld, k, n, by_column);
                assert_eq!((&packed.data, &packed.col_sums), (&expected.data, &expected.col_sums), "{} {by_column}", kernel.name());
            }
        }
    }

    #[test]
    fn exact_sums_do_not_saturate_and_pairs_do() {
        let (m, k, n) = (2, 1024, 3);
        let a = vec![255u8; m * k];
        for kernel in Kernel::available() {
            for (sums, w, expected) in [(Sums::Exact, -128, -255 * 128 * k as i32), (Sums::SaturatedPairs, 127, 32_767 * (k / 2) as i32)] {
                if kernel.has_vnni() && sums == Sums::SaturatedPairs {
                    continue;
                }
                let packed = PackedB::with_sums(kernel, sums, k, n, |_, _| w);
                let mut c = vec![0; m * n];
                gemm(&a, k, m, &packed, &mut c, n);
                assert!(c.iter().all(|&v| v == expected), "{} {sums:?}", kernel.name());
            }
        }
    }

    #[test]
    fn weights_saturate_in_pairs_only_on_the_avx2_kernel() {
        for kernel in [Kernel::Vnni512, Kernel::AvxVnni, Kernel::Avx2, Kernel::Portable] {
            let expected = if kernel == Kernel::Avx2 { Sums::SaturatedPairs } else { Sums::Exact };
            assert_eq!(PackedB::weights(kernel, 4, 1, |_, _| 0).sums, expected);
        }
    }
}
