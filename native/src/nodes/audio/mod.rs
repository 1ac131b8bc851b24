//! Native audio nodes. Each has a numpy twin under the same `node_type` in
//! `py/remotemedia/nodes/`.

mod downmix;
mod format;
mod rechunk;
mod resample;
mod vad;

use crate::data::{AudioBuffer, Data, SampleBuf, Samples};
use crate::error::NodeFailure;

use super::NodeSpec;

/// The built-in specs of this module.
pub fn specs() -> Vec<NodeSpec> {
    vec![format::spec(), downmix::spec(), rechunk::spec(), resample::spec(), vad::spec()]
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
            "{node_type} takes f32 audio, got {:?}; put a FormatConverter with format \"f32\" before it",
            other.format()
        ))),
    }
}
