//! The anti-aliasing filter and block sizes of a rate pair and quality preset.
//!
//! The filter is a Kaiser-windowed sinc at the input rate. Its passband ends at
//! `passband` × the lower Nyquist, its stopband starts at that Nyquist, and its
//! stopband attenuation sets both the Kaiser β and the length (Kaiser's formula).
//! Its centre is placed on a whole output frame, so trimming the delay aligns output
//! with input exactly. Blocks of `hop_in` input frames are zero-padded to `n_in`
//! (a multiple of the rate unit, a power of two of them, and several filter lengths)
//! and filtered in the frequency domain; the twin in `py/remotemedia/nodes/resample.py`
//! computes the same design in numpy.

use std::f64::consts::PI;

use super::Quality;

/// Passband edge (× the lower Nyquist), stopband attenuation (dB), and the least
/// number of rate units of new input a block takes per unit of padding (more costs
/// latency and buys fewer FFTs per second of audio) of a preset.
pub fn preset(quality: Quality) -> (f64, f64, usize) {
    match quality {
        Quality::Fast => (0.80, 96.0, 7),
        Quality::Balanced => (0.90, 120.0, 3),
        Quality::High => (0.91, 140.0, 3),
    }
}

/// Everything the engine needs for one rate pair and preset.
#[derive(Debug, Clone, PartialEq)]
pub struct Design {
    /// FFT length at the input rate.
    pub n_in: usize,
    /// FFT length at the output rate (`n_in × output_rate / input_rate`).
    pub n_out: usize,
    /// New input frames per block.
    pub hop_in: usize,
    /// Output frames per block.
    pub hop_out: usize,
    /// The filter's delay, in output frames.
    pub delay: usize,
    /// The filter taps at the input rate, summing to 1.
    pub taps: Vec<f64>,
}

/// The design for `input_rate` → `output_rate` (different rates) at `quality`.
impl Design {
    /// Worst-case lag of output behind input, in output frames: a block plus the delay.
    pub fn latency(&self) -> usize {
        self.hop_out + self.delay
    }
}

pub fn design(input_rate: u32, output_rate: u32, quality: Quality) -> Design {
    let (passband, attenuation, hop_per_pad) = preset(quality);
    let g = gcd(input_rate, output_rate);
    let (unit_in, unit_out) = ((input_rate / g) as usize, (output_rate / g) as usize);
    let (fi, fo) = (f64::from(input_rate), f64::from(output_rate));
    let nyquist = fi.min(fo) / 2.0;
    let cutoff = (passband + 1.0) / 2.0 * nyquist / fi;
    let width = (1.0 - passband) * nyquist / fi;
    let min_taps = (attenuation - 7.95) / (2.285 * 2.0 * PI * width) + 1.0;
    let delay = ((min_taps - 1.0) / 2.0 * fo / fi).ceil() as usize;
    let centre = delay as f64 * fi / fo;
    let taps = kaiser_sinc((2.0 * centre).floor() as usize + 1, centre, cutoff, 0.1102 * (attenuation - 8.7));
    let pad_units = (taps.len() - 1).div_ceil(unit_in);
    let mut m = 1;
    while m - pad_units.min(m) < (hop_per_pad * pad_units).max(1) {
        m *= 2;
    }
    let hop_units = m - pad_units;
    Design { n_in: m * unit_in, n_out: m * unit_out, hop_in: hop_units * unit_in, hop_out: hop_units * unit_out, delay, taps }
}

/// `len` taps of a low-pass at `cutoff` cycles per sample, centred at `centre`, with a
/// Kaiser window of shape `beta` spanning `centre` either side; normalised to sum 1.
fn kaiser_sinc(len: usize, centre: f64, cutoff: f64, beta: f64) -> Vec<f64> {
    let norm = bessel_i0(beta);
    let mut taps: Vec<f64> = (0..len)
        .map(|n| {
            let t = n as f64 - centre;
            let r = (1.0 - (t / centre).powi(2)).max(0.0);
            2.0 * cutoff * sinc(2.0 * cutoff * t) * bessel_i0(beta * r.sqrt()) / norm
        })
        .collect();
    let sum: f64 = taps.iter().sum();
    taps.iter_mut().for_each(|t| *t /= sum);
    taps
}

fn sinc(x: f64) -> f64 {
    if x == 0.0 { 1.0 } else { (PI * x).sin() / (PI * x) }
}

/// The modified Bessel function of the first kind, order 0 (power series).
fn bessel_i0(x: f64) -> f64 {
    let (mut sum, mut term, q) = (1.0, 1.0, x * x / 4.0);
    for k in 1..200 {
        term *= q / (k * k) as f64;
        sum += term;
        if term < sum * 1e-17 {
            break;
        }
    }
    sum
}

fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_follow_the_ratio_and_leave_room_for_the_filter() {
        for (fi, fo) in [(48_000, 16_000), (44_100, 16_000), (16_000, 48_000), (44_100, 48_000), (48_000, 8_000), (8_009, 192_000)] {
            for q in [Quality::Fast, Quality::Balanced, Quality::High] {
                let d = design(fi, fo, q);
                assert_eq!(d.n_in as u64 * u64::from(fo), d.n_out as u64 * u64::from(fi), "{fi}->{fo} {q:?}");
                assert_eq!(d.hop_in as u64 * u64::from(fo), d.hop_out as u64 * u64::from(fi));
                assert!(d.hop_in + d.taps.len() - 1 <= d.n_in, "no wrap-around");
                assert!(d.hop_in >= preset(q).2 * (d.n_in - d.hop_in), "the padding is at most a quarter of a block");
                assert!((d.taps.iter().sum::<f64>() - 1.0).abs() < 1e-12);
            }
        }
        let d = design(48_000, 16_000, Quality::High);
        assert_eq!((d.n_in, d.hop_in, d.taps.len()), (3072, 2454, 619));
    }

    #[test]
    fn fast_costs_less_than_balanced_costs_less_than_high() {
        // FFT work per input frame, n·log2(n) at both rates per block.
        let cost = |d: &Design| {
            let work = |n: usize| n as f64 * (n as f64).log2();
            (work(d.n_in) + work(d.n_out)) / d.hop_in as f64
        };
        for (fi, fo) in [(48_000, 16_000), (44_100, 16_000), (16_000, 48_000), (44_100, 48_000), (48_000, 8_000), (22_050, 16_000)] {
            let d = |q| design(fi, fo, q);
            assert!(d(Quality::Fast).taps.len() < d(Quality::Balanced).taps.len(), "{fi}->{fo}");
            assert!(d(Quality::Balanced).taps.len() < d(Quality::High).taps.len(), "{fi}->{fo}");
            assert!(cost(&d(Quality::Fast)) < 0.95 * cost(&d(Quality::Balanced)), "{fi}->{fo}");
            assert!(cost(&d(Quality::Balanced)) <= cost(&d(Quality::High)), "{fi}->{fo}");
        }
    }

    #[test]
    fn bessel_matches_known_values() {
        assert!((bessel_i0(0.0) - 1.0).abs() < 1e-15);
        assert!((bessel_i0(1.0) - 1.266_065_877_752_008_4).abs() < 1e-14);
        assert!((bessel_i0(10.0) / 2_815.716_628_466_254 - 1.0).abs() < 1e-13);
    }
}
