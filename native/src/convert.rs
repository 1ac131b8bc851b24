//! Sample-format conversion: the one home of the scaling convention in Rust.
//!
//! Full scale is ±1.0 for floats and `-2^(N-1) .. 2^(N-1)-1` for N-bit integers:
//! - int → float: `i / 2^(N-1)` (exact);
//! - float → int: `clip(round_half_even(f * 2^(N-1)))`; NaN → 0, ±inf → the extremes;
//! - int → int: through the same scale (a shift to widen; rounded, clipped to narrow);
//! - float → float: a plain cast (NaN and ±inf pass through).
//!
//! The loops are written so LLVM vectorizes them for plain SSE2: rounding uses the
//! add-and-subtract-1.5·2^mantissa trick instead of a libm call.

use crate::data::{Sample, SampleBuf, SampleFormat, Samples, pooled_vec};

const I16_SCALE: f32 = 32768.0;
const I32_SCALE: f64 = 2147483648.0;
/// Adding then subtracting this rounds an f32 of magnitude below 2^22 to the nearest
/// integer, ties to even (the default rounding mode).
const ROUND_F32: f32 = 12582912.0;
/// The same for f64 below 2^51.
const ROUND_F64: f64 = 6755399441055744.0;

// Each conversion: NaN → 0 (a select), clip with min/max (no NaN is left for their
// NaN rules to matter), round half to even, then an unchecked conversion, which is
// sound because the value is a whole number inside the target range. Written this way
// the loops compile to packed SSE2 code; `as` casts and `clamp` would not.

#[allow(clippy::manual_clamp)] // see above: `clamp` would not vectorize
fn f32_to_i16(x: f32) -> i16 {
    let y = if x.is_nan() { 0.0 } else { x * I16_SCALE };
    let y = y.max(-32768.0).min(32767.0);
    // SAFETY: y is finite and within i16's range, so also within i32's.
    unsafe { ((y + ROUND_F32) - ROUND_F32).to_int_unchecked::<i32>() as i16 }
}

#[allow(clippy::manual_clamp)] // see above: `clamp` would not vectorize
fn f64_to_i16(x: f64) -> i16 {
    let y = if x.is_nan() { 0.0 } else { x * 32768.0 };
    let y = y.max(-32768.0).min(32767.0);
    // SAFETY: as in `f32_to_i16`.
    unsafe { ((y + ROUND_F64) - ROUND_F64).to_int_unchecked::<i32>() as i16 }
}

#[allow(clippy::manual_clamp)] // see above: `clamp` would not vectorize
fn f64_to_i32(x: f64) -> i32 {
    let y = if x.is_nan() { 0.0 } else { x * I32_SCALE };
    let y = y.max(-I32_SCALE).min(I32_SCALE - 1.0);
    // SAFETY: y is finite and within i32's range.
    unsafe { ((y + ROUND_F64) - ROUND_F64).to_int_unchecked::<i32>() }
}

/// `f` over `src`, into a buffer from the pool.
fn map<A: Copy, B: Sample>(src: &[A], f: impl Fn(A) -> B) -> Vec<B> {
    let mut out = pooled_vec(src.len());
    out.extend(src.iter().map(|&x| f(x)));
    out
}

/// `f32_to_i16` over a slice, compiled for AVX2 when the CPU has it (the baseline
/// x86-64 target only allows SSE2).
fn f32s_to_i16(src: &[f32]) -> Vec<i16> {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        #[target_feature(enable = "avx2")]
        fn avx2(src: &[f32]) -> Vec<i16> {
            map(src, f32_to_i16)
        }
        // SAFETY: the CPU supports AVX2, checked just above.
        return unsafe { avx2(src) };
    }
    map(src, f32_to_i16)
}

/// `samples` in `to`. Returns the same (shared) buffer when the format already matches.
pub fn convert(samples: &Samples, to: SampleFormat) -> Samples {
    use Samples::*;
    match (samples, to) {
        (s, to) if s.format() == to => s.clone(),
        (F32(b), SampleFormat::I16) => I16(SampleBuf::owned(f32s_to_i16(b))),
        (F32(b), SampleFormat::I32) => I32(SampleBuf::owned(map(b, |x| f64_to_i32(f64::from(x))))),
        (F32(b), SampleFormat::F64) => F64(SampleBuf::owned(map(b, f64::from))),
        (F64(b), SampleFormat::I16) => I16(SampleBuf::owned(map(b, f64_to_i16))),
        (F64(b), SampleFormat::I32) => I32(SampleBuf::owned(map(b, f64_to_i32))),
        (F64(b), SampleFormat::F32) => F32(SampleBuf::owned(map(b, |x| x as f32))),
        (I16(b), SampleFormat::F32) => F32(SampleBuf::owned(map(b, |x| f32::from(x) * (1.0 / I16_SCALE)))),
        (I16(b), SampleFormat::F64) => F64(SampleBuf::owned(map(b, |x| f64::from(x) / 32768.0))),
        (I16(b), SampleFormat::I32) => I32(SampleBuf::owned(map(b, |x| i32::from(x) << 16))),
        (I32(b), SampleFormat::F32) => F32(SampleBuf::owned(map(b, |x| x as f32 * (1.0 / I32_SCALE as f32)))),
        (I32(b), SampleFormat::F64) => F64(SampleBuf::owned(map(b, |x| f64::from(x) / I32_SCALE))),
        (I32(b), SampleFormat::I16) => I16(SampleBuf::owned(map(b, |x| f64_to_i16(f64::from(x) / I32_SCALE)))),
        _ => unreachable!("every (format, format) pair is handled above"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f32s(v: &[f32]) -> Samples {
        Samples::F32(SampleBuf::owned(v.to_vec()))
    }

    #[test]
    fn float_to_i16_rounds_half_even_clips_and_zeroes_nan() {
        let x = f32s(&[0.0, 0.5 / 32768.0, 1.5 / 32768.0, -0.5 / 32768.0, 1.0, -1.0, 2.0, f32::NAN, f32::INFINITY, f32::NEG_INFINITY]);
        let Samples::I16(y) = convert(&x, SampleFormat::I16) else { panic!() };
        assert_eq!(&y[..], &[0, 0, 2, 0, 32767, -32768, 32767, 0, 32767, -32768]);
    }

    #[test]
    fn int_to_float_is_exact_and_round_trips() {
        let x = Samples::I16(SampleBuf::owned((i16::MIN..=i16::MAX).collect()));
        let f = convert(&x, SampleFormat::F32);
        let Samples::F32(fb) = &f else { panic!() };
        assert_eq!(fb[0], -1.0);
        let back = convert(&f, SampleFormat::I16);
        let (Samples::I16(a), Samples::I16(b)) = (&x, &back) else { panic!() };
        assert_eq!(&a[..], &b[..]);
    }

    #[test]
    fn i32_paths() {
        let x = Samples::I32(SampleBuf::owned(vec![i32::MIN, -65536, 32768, 98304, i32::MAX]));
        let Samples::I16(y) = convert(&x, SampleFormat::I16) else { panic!() };
        // 32768/65536 = 0.5 → 0 (even), 98304/65536 = 1.5 → 2 (even), MAX → 32767 (rounds up, clipped)
        assert_eq!(&y[..], &[-32768, -1, 0, 2, 32767]);
        let f = Samples::F32(SampleBuf::owned(vec![1.0, -1.0, 0.25]));
        let Samples::I32(z) = convert(&f, SampleFormat::I32) else { panic!() };
        assert_eq!(&z[..], &[i32::MAX, i32::MIN, 1 << 29]);
    }

    #[test]
    fn same_format_is_not_copied() {
        let x = f32s(&[1.0, 2.0]);
        assert_eq!(convert(&x, SampleFormat::F32).as_ptr(), x.as_ptr());
    }
}
