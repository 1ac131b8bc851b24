//! EchoCanceller: removes from the microphone (port `in`) the echo of what the
//! loudspeaker played (port `far`), with WebRTC's AEC3 from sonora, on 10 ms frames
//! (`apm/mod.rs`). Both ports take mono f32 at the same rate (16, 32 or 48 kHz).
//!
//! Alignment. Far-end samples wait in a queue whose front is what the loudspeaker
//! plays during the microphone's next frame: before each microphone frame, one frame
//! is taken from the queue (zeros where it runs short) and given to AEC3 as played.
//! Far-end audio that arrives while the queue is empty starts at the next microphone
//! frame (late or resumed playback is taken as playing now); AEC3 estimates the
//! acoustic delay between the two itself. The microphone never waits for the far end:
//! a frame whose far end has not arrived is cancelled against silence. When the far
//! end runs ahead of the microphone by more than `max_far_ms`, its oldest samples are
//! dropped (a warning once per stream), so memory stays bounded when the microphone
//! stops.
//!
//! In a one-shot run both inputs come whole, in the order the call gives them: give
//! `far` before `in`, or the microphone is processed before any far end has arrived.
//!
//! AEC3's high-pass filter is off: it distorts speech (issue 28's probe), and the
//! microphone passes through unchanged when the far end is silent.

use std::collections::VecDeque;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::json;
use sonora::Config;
use sonora::config::EchoCanceller as AecConfig;

use super::{RATES, Stream, Webrtc, lag, latency_of, mono_caps, stream_chunk, webrtc_delay};
use crate::budget;
use crate::data::Data;
use crate::error::NodeFailure;
use crate::nodes::{Emitter, Implementation, Node, NodeSpec, parse_params};

const NODE: &str = super::NODE_TYPES[0];
/// How refusals of a far-end chunk name it.
pub(super) const FAR: &str = "EchoCanceller input far";
const PORT_FAR: usize = 1;
const DEFAULT_MAX_FAR_MS: u64 = 60_000;
const MAX_MAX_FAR_MS: u64 = 600_000;

pub fn spec() -> NodeSpec {
    NodeSpec {
        node_type: NODE.into(),
        description: "Acoustic echo cancellation (WebRTC's AEC3): the microphone on `in`, what the loudspeaker played on `far` (mono f32, same rate: 16, 32 or 48 kHz); output: the microphone without the echo, as many samples. The far end waits in a queue (at most max_far_ms); the microphone never waits for it.".into(),
        params_schema: json!({
            "type": "object",
            "properties": {
                "max_far_ms": {"type": "integer", "minimum": 10, "maximum": MAX_MAX_FAR_MS, "default": DEFAULT_MAX_FAR_MS, "description": "most far-end audio held ahead of the microphone; beyond, the oldest is dropped"}
            },
            "additionalProperties": false
        }),
        outputs: vec!["out".into()],
        implementation: Implementation::Native,
        prefers_isolation: false,
        caps: Some(json!({
            "inputs": {"in": mono_caps(json!(RATES)), "far": mono_caps(json!(RATES))},
            "aligned": true,
            "outputs": {"out": {}}
        })),
        latency: latency_of(|_, rate| delay(rate)),
        create: Arc::new(|params| {
            let p: Params = parse_params(params)?;
            Ok(Box::new(Canceller { max_far_ms: p.max_far_ms, stream: None, far: VecDeque::new(), warned: false, played: Vec::new() }))
        }),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    #[serde(default = "default_max_far_ms")]
    max_far_ms: u64,
}

fn default_max_far_ms() -> u64 {
    DEFAULT_MAX_FAR_MS
}

struct Canceller {
    max_far_ms: u64,
    /// The stream, started by the first chunk on either port: both are at its rate.
    stream: Option<Stream<Box<Webrtc>>>,
    /// Far-end samples not yet played: the front plays during the next microphone frame.
    far: VecDeque<f32>,
    /// Whether this stream has warned of far-end samples dropped.
    warned: bool,
    /// The far-end frame given to AEC3 (scratch).
    played: Vec<f32>,
}

/// AEC3's own delay at `rate`, in samples: 8 ms at 16 kHz.
fn delay(rate: u32) -> usize {
    webrtc_delay(128, rate)
}

fn engine(rate: u32) -> Result<Box<Webrtc>, NodeFailure> {
    let aec = AecConfig { enforce_high_pass_filtering: false, ..Default::default() };
    Ok(Box::new(Webrtc::new(Config { echo_canceller: Some(aec), ..Default::default() }, rate)))
}

/// Gives AEC3 the next frame of the far end (zeros where the queue runs short), then
/// cancels one microphone frame.
fn cancel(
    engine: &mut Webrtc,
    far: &mut VecDeque<f32>,
    played: &mut Vec<f32>,
    input: &[f32],
    output: &mut [f32],
) -> Result<(), NodeFailure> {
    played.clear();
    played.extend(far.drain(..input.len().min(far.len())));
    played.resize(input.len(), 0.0);
    engine.render(played)?;
    engine.capture(input, output)
}

impl Canceller {
    fn take_far(&mut self, input: &Data) -> Result<(), NodeFailure> {
        let (samples, stream) = stream_chunk(input, &mut self.stream, FAR, engine)?;
        let rate = stream.framer.rate();
        let bound =
            usize::try_from(self.max_far_ms * u64::from(rate) / 1000).unwrap_or(budget::MAX_BUFFER_SAMPLES).min(budget::MAX_BUFFER_SAMPLES);
        let keep = samples.len().min(bound);
        let over = (self.far.len() + keep).saturating_sub(bound);
        if over > 0 {
            if !std::mem::replace(&mut self.warned, true) {
                tracing::warn!(
                    "{NODE}: the far end runs more than {} ms ahead of the microphone; its oldest samples are dropped",
                    self.max_far_ms
                );
            }
            self.far.drain(..over);
        }
        self.far.extend(&samples[samples.len() - keep..]);
        Ok(())
    }
}

impl Node for Canceller {
    fn process(&mut self, input: &Data, out: &mut Emitter) -> Result<(), NodeFailure> {
        self.process_port(0, input, out)
    }

    fn process_port(&mut self, port: usize, input: &Data, out: &mut Emitter) -> Result<(), NodeFailure> {
        if port == PORT_FAR {
            return self.take_far(input);
        }
        let (samples, Stream { framer, engine }) = stream_chunk(input, &mut self.stream, NODE, engine)?;
        let (far, played) = (&mut self.far, &mut self.played);
        framer.run(samples, out, |i, o| cancel(engine, far, played, i, o))
    }

    fn flush(&mut self, out: &mut Emitter) -> Result<(), NodeFailure> {
        if let Some(Stream { mut framer, mut engine }) = self.stream.take() {
            let (far, played) = (&mut self.far, &mut self.played);
            framer.finish(out, |i, o| cancel(&mut engine, far, played, i, o))?;
        }
        self.reset()
    }

    fn latency(&self) -> usize {
        self.stream.as_ref().map_or(0, |s| lag(s.framer.rate(), delay(s.framer.rate())))
    }

    fn reset(&mut self) -> Result<(), NodeFailure> {
        self.stream = None;
        self.far.clear();
        self.warned = false;
        Ok(())
    }
}
