//! Native audio nodes. Each has a numpy twin under the same `node_type` in
//! `py/remotemedia/nodes/`, except the native-only ones ([`NATIVE_ONLY`]).

mod apm;
mod downmix;
mod format;
mod mix;
mod model;
mod rechunk;
mod resample;
mod turn;
mod vad;

pub(crate) use apm::NODE_TYPES as NATIVE_ONLY;
pub(crate) use vad::vad_frames;

use crate::data::{AudioBuffer, Data, SampleBuf, Samples};
use crate::error::NodeFailure;

use super::NodeSpec;

/// The built-in specs of this module.
pub fn specs() -> Vec<NodeSpec> {
    let mut specs =
        vec![format::spec(), downmix::spec(), mix::spec(), rechunk::spec(), resample::spec(), vad::spec(), model::spec(), turn::spec()];
    specs.extend(apm::specs());
    specs
}

/// The audio of an item, or a failure naming the node type that wanted audio.
pub(crate) fn audio<'a>(input: &'a Data, node_type: &str) -> Result<&'a AudioBuffer, NodeFailure> {
    match input {
        Data::Audio(a) => Ok(a),
        Data::Json(_) => Err(NodeFailure::new(format!("{node_type} takes audio, got a JSON event"))),
    }
}

/// The f32 samples of `audio`, or a failure telling the user to convert first.
pub(crate) fn f32_samples<'a>(audio: &'a AudioBuffer, node_type: &str) -> Result<&'a SampleBuf<f32>, NodeFailure> {
    match audio.samples() {
        Samples::F32(b) => Ok(b),
        other => Err(NodeFailure::new(format!(
            "{node_type} takes f32 audio, got {}; put a FormatConverter with format \"f32\" before it",
            other.format().name()
        ))),
    }
}

/// The mono f32 audio of an item with only finite samples (what VAD and Model take),
/// or the failure naming `node_type` and what to put before it.
pub(crate) fn mono_f32<'a>(input: &'a Data, node_type: &str) -> Result<(&'a AudioBuffer, &'a [f32]), NodeFailure> {
    let audio = audio(input, node_type)?;
    let samples = f32_samples(audio, node_type)?;
    finite(samples, node_type)?;
    if audio.channels() != 1 {
        return Err(NodeFailure::new(format!("{node_type} takes mono audio, got {} channels; put a Downmix before it", audio.channels())));
    }
    Ok((audio, samples))
}

/// Refuses samples with a NaN or an infinity (an invalid-input failure naming the node
/// type and the first such sample), for nodes whose state a non-finite value would spoil.
pub(crate) fn finite(samples: &[f32], node_type: &str) -> Result<(), NodeFailure> {
    // `x * 0` is 0 for a finite x and NaN otherwise; eight lanes let this vectorise.
    let mut lanes = [0.0f32; 8];
    let blocks = samples.chunks_exact(8);
    let rest = blocks.remainder();
    for block in blocks {
        for (lane, &x) in lanes.iter_mut().zip(block) {
            *lane += x * 0.0;
        }
    }
    if lanes.iter().chain(rest).all(|x| x.is_finite()) {
        return Ok(());
    }
    let at = samples.iter().position(|x| !x.is_finite()).expect("one sample is not finite");
    Err(NodeFailure::invalid_input(format!(
        "{node_type} refuses non-finite samples (NaN or infinity; the first is sample {at}); the chunk was not processed"
    )))
}

/// What the audio nodes' unit tests share.
#[cfg(test)]
pub(crate) mod testing {
    use crate::data::{AudioBuffer, Data, SampleBuf, Samples};
    use crate::nodes::Emitter;

    /// A mono f32 chunk of `samples` at `rate`.
    pub(crate) fn mono(samples: &[f32], rate: u32) -> Data {
        Data::Audio(AudioBuffer::new(Samples::F32(SampleBuf::owned(samples.to_vec())), 1, rate).expect("a buffer"))
    }

    /// Takes what `out` holds: f32 audio on the first output port, one run of samples.
    pub(crate) fn emitted(out: &mut Emitter) -> Vec<f32> {
        out.take()
            .into_iter()
            .flat_map(|(port, d)| {
                assert_eq!(port, 0, "audio on the first port");
                match d {
                    Data::Audio(a) => match a.samples() {
                        Samples::F32(b) => b.to_vec(),
                        _ => panic!("f32 out"),
                    },
                    Data::Json(_) => panic!("audio out"),
                }
            })
            .collect()
    }
}
