//! Test plugin: `Panicky` passes audio through, panics on a chunk of exactly
//! `panic_frames` frames, and logs each instance it creates through the host.

use remotemedia_plugin::abi::{RM_KIND_AUDIO, RmLogLevel};
use remotemedia_plugin::{Error, Input, Node, NodeInfo, Output, Params, log, param_f64};

struct Panicky {
    panic_frames: usize,
}

impl Node for Panicky {
    fn info() -> NodeInfo {
        NodeInfo::new("Panicky", "Passes audio through; panics on a chunk of panic_frames frames.")
            .params_schema(r#"{"type":"object","properties":{"panic_frames":{"type":"integer","minimum":1,"default":13}}}"#)
            .kinds(RM_KIND_AUDIO, RM_KIND_AUDIO)
    }

    fn create(params: &Params) -> Result<Self, Error> {
        let panic_frames = param_f64(params, "panic_frames", 13.0)?;
        if panic_frames < 1.0 {
            return Err(Error::new("params.panic_frames: must be at least 1"));
        }
        log(RmLogLevel::Info, &format!("Panicky created, panics on {panic_frames} frames"));
        Ok(Panicky { panic_frames: panic_frames as usize })
    }

    fn process(&mut self, input: Input<'_>, out: &mut Output<'_>) -> Result<(), Error> {
        let Input::Audio(audio) = input else { return Err(Error::new("audio only")) };
        if audio.frames() == self.panic_frames {
            panic!("asked to panic on {} frames", self.panic_frames);
        }
        out.audio(0, audio)
    }
}

remotemedia_plugin::export_plugin!(
    name: "test-panicky",
    version: "0.0.1",
    license: "Apache-2.0",
    description: "Test plugin that panics",
    nodes: [Panicky],
);
