//! Trivial nodes that make the core testable on its own: `PassThrough` and `Gain`.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::json;

use crate::data::{Data, SampleBuf, Samples};
use crate::error::NodeFailure;

use super::{Emitter, Implementation, Node, NodeSpec, ParamError, no_latency, parse_params};

/// The built-in specs of this module.
pub fn specs() -> Vec<NodeSpec> {
    vec![
        NodeSpec {
            node_type: "PassThrough".into(),
            description: "Emits every input unchanged (no copy).".into(),
            params_schema: json!({"type": "object", "properties": {}, "additionalProperties": false}),
            outputs: vec!["out".into()],
            implementation: Implementation::Native,
            prefers_isolation: false,
            caps: Some(json!({"input": {"kind": "any"}, "outputs": {"out": {}}})),
            latency: no_latency(),
            create: Arc::new(|params| {
                parse_params::<NoParams>(params)?;
                Ok(Box::new(PassThrough))
            }),
        },
        NodeSpec {
            node_type: "Gain".into(),
            description: "Scales audio by gain_db decibels; integers are rounded half to even and clipped.".into(),
            params_schema: json!({
                "type": "object",
                "properties": {"gain_db": {"type": "number", "minimum": MIN_GAIN_DB, "maximum": MAX_GAIN_DB, "default": DEFAULT_GAIN_DB}},
                "additionalProperties": false
            }),
            outputs: vec!["out".into()],
            implementation: Implementation::Native,
            prefers_isolation: false,
            caps: Some(json!({"input": {"kind": "audio"}, "outputs": {"out": {}}})),
            latency: no_latency(),
            create: Arc::new(|params| Ok(Box::new(Gain::from_params(parse_params(params)?)?))),
        },
    ]
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoParams {}

/// Emits its input as it came.
pub struct PassThrough;

impl Node for PassThrough {
    fn process(&mut self, input: &Data, out: &mut Emitter) -> Result<(), NodeFailure> {
        out.emit(input.clone());
        Ok(())
    }
}

const DEFAULT_GAIN_DB: f64 = 0.0;
const MIN_GAIN_DB: f64 = -120.0;
const MAX_GAIN_DB: f64 = 120.0;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct GainParams {
    gain_db: f64,
}

impl Default for GainParams {
    fn default() -> Self {
        Self { gain_db: DEFAULT_GAIN_DB }
    }
}

/// Multiplies samples by a fixed linear factor.
pub struct Gain {
    factor: f64,
}

impl Gain {
    fn from_params(p: GainParams) -> Result<Self, ParamError> {
        if !(MIN_GAIN_DB..=MAX_GAIN_DB).contains(&p.gain_db) {
            return Err(ParamError::new("gain_db", format!("{} is outside {MIN_GAIN_DB}..={MAX_GAIN_DB} dB", p.gain_db)));
        }
        Ok(Self { factor: 10f64.powf(p.gain_db / 20.0) })
    }

    fn apply(&self, samples: &Samples) -> Samples {
        let f = self.factor;
        let f32_factor = f as f32;
        match samples {
            Samples::F32(b) => Samples::F32(SampleBuf::owned(b.iter().map(|&s| s * f32_factor).collect())),
            Samples::F64(b) => Samples::F64(SampleBuf::owned(b.iter().map(|&s| s * f).collect())),
            Samples::I16(b) => Samples::I16(SampleBuf::owned(
                b.iter().map(|&s| (s as f64 * f).round_ties_even().clamp(i16::MIN as f64, i16::MAX as f64) as i16).collect(),
            )),
            Samples::I32(b) => Samples::I32(SampleBuf::owned(
                b.iter().map(|&s| (s as f64 * f).round_ties_even().clamp(i32::MIN as f64, i32::MAX as f64) as i32).collect(),
            )),
        }
    }
}

impl Node for Gain {
    fn process(&mut self, input: &Data, out: &mut Emitter) -> Result<(), NodeFailure> {
        match input {
            Data::Audio(audio) => {
                let scaled = audio.with_samples(self.apply(audio.samples())).map_err(|e| NodeFailure::new(e.to_string()))?;
                out.emit(Data::Audio(scaled));
            }
            Data::Json(_) => return Err(NodeFailure::new("Gain takes audio, got a JSON event")),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::AudioBuffer;

    fn mono_f32(samples: Vec<f32>, sample_rate: u32) -> AudioBuffer {
        AudioBuffer::new(Samples::F32(SampleBuf::owned(samples)), 1, sample_rate).unwrap()
    }

    fn run(node: &mut dyn Node, input: Data) -> Vec<Data> {
        let mut e = Emitter::default();
        node.process(&input, &mut e).unwrap();
        e.take().into_iter().map(|(_, d)| d).collect()
    }

    #[test]
    fn gain_scales_and_clips_integers() {
        let mut g = Gain::from_params(GainParams { gain_db: 20.0 }).unwrap();
        let input = AudioBuffer::new(Samples::I16(SampleBuf::owned(vec![100, -100, 5000, -5000])), 1, 8000).unwrap();
        let out = run(&mut g, Data::Audio(input));
        let Data::Audio(a) = &out[0] else { panic!() };
        let Samples::I16(s) = a.samples() else { panic!() };
        assert_eq!(&s[..], &[1000, -1000, 32767, -32768]);
    }

    #[test]
    fn gain_rejects_out_of_range() {
        assert_eq!(Gain::from_params(GainParams { gain_db: 500.0 }).err().unwrap().param, "gain_db");
    }

    #[test]
    fn pass_through_does_not_copy() {
        let a = mono_f32(vec![1.0, 2.0], 16000);
        let ptr = a.samples().as_ptr();
        let out = run(&mut PassThrough, Data::Audio(a));
        let Data::Audio(b) = &out[0] else { panic!() };
        assert_eq!(b.samples().as_ptr(), ptr);
    }
}
