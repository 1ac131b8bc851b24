//! A noise gate as a remotemedia plugin: audio whose level stays below a threshold is
//! attenuated, with smooth attack and release so the gate never clicks.
//!
//! Per frame: the envelope follows the loudest channel's magnitude (one-pole, attack
//! time when rising, release time when falling); the gain moves toward 1 while the
//! envelope is at or above the threshold and toward the floor otherwise, with the same
//! time constants. Everything is per sample, so output does not depend on chunking.

use remotemedia_plugin::{Audio, Error, Input, Node, NodeInfo, Output, Params, Samples, deny_unknown, param_f64};

const PARAMS_SCHEMA: &str = r#"{
  "type": "object",
  "properties": {
    "threshold_db": {"type": "number", "maximum": 0, "default": -40, "description": "level (dBFS) at which the gate opens"},
    "floor_db": {"type": "number", "maximum": 0, "default": -30, "description": "gain (dB) while the gate is closed"},
    "attack_ms": {"type": "number", "exclusiveMinimum": 0, "default": 5},
    "release_ms": {"type": "number", "exclusiveMinimum": 0, "default": 50}
  },
  "additionalProperties": false
}"#;

struct NoiseGate {
    threshold: f32,
    floor: f32,
    attack_ms: f64,
    release_ms: f64,
    /// `(sample_rate, attack coefficient, release coefficient)` for the current rate.
    coefs: Option<(u32, f32, f32)>,
    envelope: f32,
    gain: f32,
    scratch: Vec<f32>,
}

fn db_to_linear(db: f64) -> f32 {
    10f64.powf(db / 20.0) as f32
}

/// One-pole smoothing coefficient for a time constant of `ms` at `rate`.
fn coefficient(ms: f64, rate: u32) -> f32 {
    (-1.0 / (ms * 1e-3 * f64::from(rate))).exp() as f32
}

impl NoiseGate {
    fn process_f32(&mut self, samples: &[f32], channels: usize, rate: u32) -> &[f32] {
        let (attack, release) = match self.coefs {
            Some((r, a, rel)) if r == rate => (a, rel),
            _ => {
                let c = (coefficient(self.attack_ms, rate), coefficient(self.release_ms, rate));
                self.coefs = Some((rate, c.0, c.1));
                c
            }
        };
        self.scratch.clear();
        for frame in samples.chunks_exact(channels) {
            let peak = frame.iter().fold(0f32, |m, x| m.max(x.abs()));
            let c = if peak > self.envelope { attack } else { release };
            self.envelope = peak + c * (self.envelope - peak);
            let target = if self.envelope >= self.threshold { 1.0 } else { self.floor };
            let c = if target > self.gain { attack } else { release };
            self.gain = target + c * (self.gain - target);
            self.scratch.extend(frame.iter().map(|x| x * self.gain));
        }
        &self.scratch
    }
}

impl Node for NoiseGate {
    fn info() -> NodeInfo {
        NodeInfo::new("NoiseGate", "Attenuates f32 audio while its level stays below threshold_db, with smooth attack and release.")
            .params_schema(PARAMS_SCHEMA)
    }

    fn create(params: &Params) -> Result<Self, Error> {
        deny_unknown(params, &["threshold_db", "floor_db", "attack_ms", "release_ms"])?;
        let threshold_db = param_f64(params, "threshold_db", -40.0)?;
        let floor_db = param_f64(params, "floor_db", -30.0)?;
        let attack_ms = param_f64(params, "attack_ms", 5.0)?;
        let release_ms = param_f64(params, "release_ms", 50.0)?;
        for (name, db) in [("threshold_db", threshold_db), ("floor_db", floor_db)] {
            if db > 0.0 {
                return Err(Error::new(format!("params.{name}: must be at most 0 dB, got {db}")));
            }
        }
        for (name, ms) in [("attack_ms", attack_ms), ("release_ms", release_ms)] {
            if !(ms > 0.0 && ms.is_finite()) {
                return Err(Error::new(format!("params.{name}: must be a positive number of milliseconds, got {ms}")));
            }
        }
        let floor = db_to_linear(floor_db);
        Ok(NoiseGate {
            threshold: db_to_linear(threshold_db),
            floor,
            attack_ms,
            release_ms,
            coefs: None,
            envelope: 0.0,
            gain: floor,
            scratch: Vec::new(),
        })
    }

    fn process(&mut self, input: Input<'_>, out: &mut Output<'_>) -> Result<(), Error> {
        let Input::Audio(audio) = input else { return Err(Error::new("NoiseGate takes audio")) };
        let Samples::F32(samples) = audio.samples else {
            return Err(Error::new("NoiseGate needs f32 samples; put a FormatConverter (to f32) before it"));
        };
        if audio.channels == 0 || audio.sample_rate == 0 {
            return Err(Error::new("audio has no channels or no sample rate"));
        }
        let (channels, rate) = (audio.channels, audio.sample_rate);
        let gated = self.process_f32(samples, channels as usize, rate);
        out.audio(0, Audio { samples: Samples::F32(gated), channels, sample_rate: rate })
    }

    fn reset(&mut self) -> Result<(), Error> {
        self.envelope = 0.0;
        self.gain = self.floor;
        Ok(())
    }
}

remotemedia_plugin::export_plugin!(
    name: "noise-gate",
    version: env!("CARGO_PKG_VERSION"),
    license: "Apache-2.0",
    description: "Example Rust plugin: a noise gate",
    nodes: [NoiseGate],
);
