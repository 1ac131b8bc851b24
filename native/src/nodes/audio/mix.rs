//! Mix: the weighted sum of N inputs, sample-aligned.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::json;

use crate::budget;
use crate::data::{AudioBuffer, Data, SampleBuf, Samples, pooled_vec};
use crate::error::NodeFailure;
use crate::nodes::{Emitter, Implementation, Node, NodeSpec, ParamError, no_latency, parse_params};

/// Fewest and most inputs (gains).
const MIN_INPUTS: usize = 2;
const MAX_INPUTS: usize = 16;
/// Bound of each linear gain.
const MAX_GAIN: f64 = 1000.0;

pub fn spec() -> NodeSpec {
    NodeSpec {
        node_type: "Mix".into(),
        description: "Sums its inputs in0 … in{N-1} sample by sample, input i scaled by gains[i] (linear; N = len(gains)). In a stream it holds samples until every input has them; flush emits the rest, missing samples counted as zeros.".into(),
        params_schema: json!({
            "type": "object",
            "properties": {"gains": {"type": "array", "items": {"type": "number", "minimum": -MAX_GAIN, "maximum": MAX_GAIN},
                                     "minItems": MIN_INPUTS, "maxItems": MAX_INPUTS, "default": [1.0, 1.0]}},
            "additionalProperties": false
        }),
        outputs: vec!["out".into()],
        implementation: Implementation::Native,
        prefers_isolation: false,
        caps: Some(json!({
            "input_ports": {"param": "gains", "prefix": "in"},
            "input": {"kind": "audio", "format": ["f32"]},
            "aligned": true,
            "outputs": {"out": {}}
        })),
        latency: no_latency(),
        create: Arc::new(|params| {
            let p: Params = parse_params(params)?;
            if !(MIN_INPUTS..=MAX_INPUTS).contains(&p.gains.len()) {
                return Err(ParamError::new("gains", format!("gains must list {MIN_INPUTS} to {MAX_INPUTS} gains, one per input")));
            }
            if let Some(g) = p.gains.iter().find(|g| !(-MAX_GAIN..=MAX_GAIN).contains(*g)) {
                return Err(ParamError::new("gains", format!("{g} is outside -{MAX_GAIN}..={MAX_GAIN}")));
            }
            let n = p.gains.len();
            Ok(Box::new(Mix { gains: p.gains.iter().map(|&g| g as f32).collect(), pending: vec![Vec::new(); n], layout: None }))
        }),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    #[serde(default = "default_gains")]
    gains: Vec<f64>,
}

fn default_gains() -> Vec<f64> {
    vec![1.0; MIN_INPUTS]
}

struct Mix {
    gains: Vec<f32>,
    /// Per input, interleaved samples not yet mixed (waiting for the other inputs).
    pending: Vec<Vec<f32>>,
    /// Channels and rate of the stream, from its first chunk.
    layout: Option<(u16, u32)>,
}

impl Mix {
    /// Mixes the first `frames` frames of every input (missing samples as zeros) and
    /// takes them out of `pending`.
    fn take(&mut self, frames: usize, out: &mut Emitter) -> Result<(), NodeFailure> {
        let Some((channels, rate)) = self.layout.filter(|_| frames > 0) else { return Ok(()) };
        let n = frames * usize::from(channels);
        let mut mixed = pooled_vec::<f32>(n);
        let at = |x: &[f32], k: usize| x.get(k).copied().unwrap_or(0.0);
        let (first, rest) = self.pending.split_first().expect("at least two inputs");
        mixed.extend((0..n).map(|k| self.gains[0] * at(first, k)));
        for (gain, x) in self.gains[1..].iter().zip(rest) {
            for (k, m) in mixed.iter_mut().enumerate() {
                *m += gain * at(x, k);
            }
        }
        for x in &mut self.pending {
            x.drain(..n.min(x.len()));
        }
        let audio = AudioBuffer::new(Samples::F32(SampleBuf::owned(mixed)), channels, rate).map_err(|e| NodeFailure::new(e.to_string()))?;
        out.emit(Data::Audio(audio));
        Ok(())
    }
}

impl Node for Mix {
    fn process(&mut self, input: &Data, out: &mut Emitter) -> Result<(), NodeFailure> {
        self.process_port(0, input, out)
    }

    fn process_port(&mut self, port: usize, input: &Data, out: &mut Emitter) -> Result<(), NodeFailure> {
        let audio = super::audio(input, "Mix")?;
        let samples = super::f32_samples(audio, "Mix")?;
        let layout = (audio.channels(), audio.sample_rate());
        match self.layout {
            None => self.layout = Some(layout),
            Some((channels, rate)) if (channels, rate) != layout => {
                return Err(NodeFailure::invalid_input(format!(
                    "Mix input in{port} brings {} ch at {} Hz, the stream's first chunk {channels} ch at {rate} Hz; its inputs must agree",
                    layout.0, layout.1
                )));
            }
            Some(_) => {}
        }
        let held = &mut self.pending[port];
        if held.len() + samples.len() > budget::MAX_BUFFER_SAMPLES {
            return Err(NodeFailure::invalid_input(format!(
                "Mix input in{port} holds {} samples waiting for the other inputs, over the budget of {}",
                held.len() + samples.len(),
                budget::MAX_BUFFER_SAMPLES
            )));
        }
        budget::reserve(held, samples.len(), "Mix pending samples")?;
        held.extend_from_slice(samples);
        let ready = self.pending.iter().map(Vec::len).min().unwrap_or(0) / usize::from(layout.0);
        self.take(ready, out)
    }

    fn flush(&mut self, out: &mut Emitter) -> Result<(), NodeFailure> {
        let Some((channels, _)) = self.layout else { return Ok(()) };
        let frames = self.pending.iter().map(Vec::len).max().unwrap_or(0).div_ceil(usize::from(channels));
        self.take(frames, out)
    }

    fn reset(&mut self) -> Result<(), NodeFailure> {
        self.pending.iter_mut().for_each(Vec::clear);
        self.layout = None;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nodes::audio::testing::{emitted, mono};

    fn mix(gains: &[f64]) -> Box<dyn Node> {
        let params = json!({"gains": gains});
        (spec().create)(params.as_object().unwrap()).unwrap_or_else(|e| panic!("{}", e.message))
    }

    fn chunk(samples: &[f32]) -> Data {
        mono(samples, 16000)
    }

    #[test]
    fn holds_samples_until_every_input_has_them_and_flush_pads_with_zeros() {
        let mut m = mix(&[1.0, 0.5]);
        let mut out = Emitter::default();
        m.process_port(0, &chunk(&[1.0, 2.0, 3.0]), &mut out).unwrap();
        assert!(emitted(&mut out).is_empty(), "in1 has nothing yet");
        m.process_port(1, &chunk(&[2.0, 2.0]), &mut out).unwrap();
        assert_eq!(emitted(&mut out), [2.0, 3.0]);
        m.process_port(1, &chunk(&[4.0, 4.0, 4.0]), &mut out).unwrap();
        assert_eq!(emitted(&mut out), [5.0]);
        m.flush(&mut out).unwrap();
        assert_eq!(emitted(&mut out), [2.0, 2.0], "in0's missing samples are zeros");
        m.reset().unwrap();
        m.flush(&mut out).unwrap();
        assert!(emitted(&mut out).is_empty());
    }

    #[test]
    fn inputs_that_disagree_are_refused_and_params_are_checked() {
        let mut m = mix(&[1.0, 1.0]);
        let mut out = Emitter::default();
        m.process_port(0, &chunk(&[1.0]), &mut out).unwrap();
        let stereo = Data::Audio(AudioBuffer::new(Samples::F32(SampleBuf::owned(vec![0.0; 4])), 2, 16000).unwrap());
        let e = m.process_port(1, &stereo, &mut out).unwrap_err();
        assert_eq!(e.kind, crate::error::FailureKind::InvalidInput);
        assert!(e.message.contains("Mix input in1 brings 2 ch at 16000 Hz"), "{}", e.message);
        for bad in [json!({"gains": [1.0]}), json!({"gains": vec![1.0; 17]}), json!({"gains": [1.0, 1e9]})] {
            assert!((spec().create)(bad.as_object().unwrap()).is_err(), "{bad}");
        }
    }
}
