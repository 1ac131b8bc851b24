//! Memory budgets: every allocation whose size comes from params, input shape or graph
//! shape is bounded here or reserved fallibly, so a size too large for the machine is
//! a clean error naming the node, never an aborted process.
//!
//! The budgets, the same on both runtimes (they are in the contract):
//! - a buffer a node makes, or the state a node keeps for a stream, holds at most
//!   [`MAX_BUFFER_SAMPLES`] samples (frames × channels); checked when the numbers are
//!   known (the first chunk), failing with `InvalidInput` naming the node;
//! - one run or push queues at most [`MAX_ITEMS_PER_STEP`] items between nodes;
//! - each input item reaches a node at most [`MAX_PATHS`] times (once per path from a
//!   source); checked when the pipeline is built, failing with a manifest error;
//! - at most [`MAX_NODE_PROCESSES`] isolated nodes' processes run at once.

use crate::error::NodeFailure;

/// The most samples (frames × channels, any format) in one buffer a node makes or in one
/// node's state for a stream: 2^28, i.e. 1 GiB of f32.
pub const MAX_BUFFER_SAMPLES: usize = 1 << 28;

/// The most channels a buffer may have (an `AudioBuffer` counts them in a `u16`); the
/// Python `Audio` refuses more with the same words.
pub const MAX_CHANNELS: u32 = u16::MAX as u32;

/// The most items one run, push or flush may queue between nodes and as outputs.
pub const MAX_ITEMS_PER_STEP: usize = 1 << 22;

/// The most paths from the sources to one node, i.e. copies of each input item it gets.
pub const MAX_PATHS: u64 = 1 << 12;

/// The most calls of one node (of one pipeline) that may have timed out and still be
/// running on their abandoned threads; past it, that node's timed calls fail at once
/// until one returns. Other nodes and pipelines, of the same type or not, are not
/// touched, so a hung node cannot starve healthy ones.
pub const MAX_HUNG_CALLS: usize = 2;

/// The most threads the runtime's blocking pool (timed calls run there) may start: room
/// for the hung calls of thousands of nodes plus the healthy calls running beside them,
/// below what a process may start.
pub(crate) const MAX_BLOCKING_THREADS: usize = 4096;

/// The most child processes of isolated nodes alive at once, process-wide; past it,
/// starting another fails (the node's create, or its restart), so a manifest of many
/// isolated nodes cannot exhaust the machine's processes or memory.
pub const MAX_NODE_PROCESSES: usize = 64;

/// `frames × channels`, or an invalid-input failure when it exceeds
/// [`MAX_BUFFER_SAMPLES`]; `what` names the buffer in the message.
pub fn samples(what: &str, frames: usize, channels: usize) -> Result<usize, NodeFailure> {
    match frames.checked_mul(channels) {
        Some(n) if n <= MAX_BUFFER_SAMPLES => Ok(n),
        _ => Err(NodeFailure::invalid_input(format!(
            "{what} of {frames} frames x {channels} channels is over the budget of {MAX_BUFFER_SAMPLES} samples"
        ))),
    }
}

/// Makes room in `v` for `additional` more elements, or fails with an invalid-input
/// failure when the allocator refuses; `what` names the buffer in the message.
pub fn reserve<T>(v: &mut Vec<T>, additional: usize, what: &str) -> Result<(), NodeFailure> {
    v.try_reserve(additional).map_err(|e| NodeFailure::invalid_input(format!("{what}: cannot allocate {additional} more samples ({e})")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::FailureKind;

    #[test]
    fn samples_over_the_budget_or_overflowing_are_refused() {
        assert_eq!(samples("frame", 1 << 20, 256).unwrap(), MAX_BUFFER_SAMPLES);
        for (frames, channels) in [((1 << 20) + 1, 256), (usize::MAX, 2)] {
            let e = samples("frame", frames, channels).unwrap_err();
            assert_eq!(e.kind, FailureKind::InvalidInput);
            assert!(e.message.starts_with("frame of"), "{}", e.message);
        }
    }

    #[test]
    fn a_reservation_the_allocator_refuses_is_an_error() {
        let mut v: Vec<f64> = Vec::new();
        assert!(reserve(&mut v, 16, "pending").is_ok());
        let e = reserve(&mut v, usize::MAX / 4, "pending").unwrap_err();
        assert_eq!(e.kind, FailureKind::InvalidInput);
    }
}
