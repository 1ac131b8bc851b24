//! Inference staged by one stream and run batched with other streams' (a session
//! group's tick): each stream hands over its state and inputs, one forward pass per
//! model and step serves every stream that has an input for it, and each stream gets
//! its state back with its results, equal to the bit to what it would get alone.

use std::sync::Arc;

use super::{Silero, SileroState};
use crate::model::SILERO_WINDOW;

/// The streams one forward pass takes together (a session group gives each of its
/// threads at least this many).
pub const LANES: usize = super::silero::BATCH_LANES;

/// One stream's pending inference: the model, the stream's state (moved in and back),
/// its inputs and, once run, its results.
pub enum Inference {
    /// Silero windows of `SILERO_WINDOW` samples, in stream order; one probability each.
    Silero { model: Arc<Silero>, state: Box<SileroState>, windows: Vec<f32>, probs: Vec<f32> },
}

impl Inference {
    /// Runs this stream's inference alone (what [`run_all`] gives it, to the bit).
    pub fn run(&mut self) {
        let Inference::Silero { model, state, windows, probs } = self;
        super::budget::run(|| probs.extend(windows.chunks_exact(SILERO_WINDOW).map(|w| model.forward(state, w))));
    }
}

/// Runs every stream's inference: streams of one model share each step's forward pass
/// (their first windows together, then their second ones, ...). Returns the forward
/// passes run and the inputs they took.
pub fn run_all(work: &mut [&mut Inference]) -> (u64, u64) {
    let mut ran = (0, 0);
    let mut done = vec![false; work.len()];
    for first in 0..work.len() {
        if done[first] {
            continue;
        }
        let Inference::Silero { model, .. } = &*work[first];
        let model = model.clone();
        let mut lanes: Vec<&mut Inference> = Vec::new();
        for (w, d) in work.iter_mut().zip(&mut done) {
            let Inference::Silero { model: m, .. } = &**w;
            if !*d && Arc::ptr_eq(m, &model) {
                *d = true;
                lanes.push(&mut **w);
            }
        }
        let (passes, windows) = super::budget::run(|| silero_steps(&model, &mut lanes));
        ran = (ran.0 + passes, ran.1 + windows);
    }
    ran
}

/// Silero lanes step by step: step `t` runs window `t` of every lane that has one.
/// Returns the steps and the windows run.
fn silero_steps(model: &Silero, lanes: &mut [&mut Inference]) -> (u64, u64) {
    let mut ran = (0, 0);
    let mut probs = Vec::with_capacity(lanes.len());
    for t in 0.. {
        let mut batch: Vec<(&mut SileroState, &[f32])> = Vec::with_capacity(lanes.len());
        let mut outs: Vec<&mut Vec<f32>> = Vec::with_capacity(lanes.len());
        for lane in lanes.iter_mut() {
            let Inference::Silero { state, windows, probs, .. } = &mut **lane;
            if let Some(window) = windows.get(t * SILERO_WINDOW..(t + 1) * SILERO_WINDOW) {
                batch.push((&mut **state, window));
                outs.push(probs);
            }
        }
        if batch.is_empty() {
            break;
        }
        ran = (ran.0 + 1, ran.1 + batch.len() as u64);
        probs.clear();
        probs.resize(batch.len(), 0.0);
        model.forward_batch(&mut batch, &mut probs);
        for (out, &p) in outs.into_iter().zip(&probs) {
            out.push(p);
        }
    }
    ran
}
