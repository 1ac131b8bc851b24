//! Fault: a fault-injection node for testing retries, breakers and panic handling.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::data::Data;
use crate::error::NodeFailure;

use super::{Emitter, Implementation, Node, NodeSpec, ParamError, no_latency, parse_params};

pub fn spec() -> NodeSpec {
    NodeSpec {
        node_type: "Fault".into(),
        description: "Fault injection: its first fail_first process calls (over its whole life, across runs) fail transiently, permanently, by panicking, hang for hang_ms, or end the process by abort or by a segmentation fault (those two only under isolation 'process'); later calls pass input through.".into(),
        params_schema: json!({
            "type": "object",
            "properties": {
                "fail_first": {"type": "integer", "minimum": 0, "maximum": u64::MAX, "default": DEFAULT_FAIL_FIRST},
                "mode": {"enum": [Mode::Transient, Mode::Permanent, Mode::Panic, Mode::Hang, Mode::Abort, Mode::Segfault], "default": Mode::default()},
                "hang_ms": {"type": "integer", "minimum": 0, "maximum": u64::MAX, "default": DEFAULT_HANG_MS}
            },
            "additionalProperties": false
        }),
        outputs: vec!["out".into()],
        implementation: Implementation::Native,
        prefers_isolation: false,
        caps: Some(json!({"input": {"kind": "any"}, "outputs": {"out": {}}})),
        latency: no_latency(),
        create: Arc::new(|params| {
            let p: Params = parse_params(params)?;
            if matches!(p.mode, Mode::Abort | Mode::Segfault) && !PROCESS_FAULTS.load(Ordering::Relaxed) {
                return Err(ParamError::new("mode", "modes 'abort' and 'segfault' end the process, so they run only under isolation 'process'"));
            }
            Ok(Box::new(Fault { params: p, calls: 0 }))
        }),
    }
}

/// Set in a node's own process (isolation), where modes that end the process may run.
static PROCESS_FAULTS: AtomicBool = AtomicBool::new(false);

/// Lets Fault nodes created from now on end the process (`abort`, `segfault`).
pub fn allow_process_faults() {
    PROCESS_FAULTS.store(true, Ordering::Relaxed);
}

const DEFAULT_FAIL_FIRST: u64 = 0;
const DEFAULT_HANG_MS: u64 = 60_000;

#[derive(Serialize, Deserialize, Clone, Copy, Default, PartialEq)]
#[serde(rename_all = "lowercase")]
enum Mode {
    #[default]
    Transient,
    Permanent,
    Panic,
    Hang,
    Abort,
    Segfault,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Params {
    fail_first: u64,
    mode: Mode,
    hang_ms: u64,
}

impl Default for Params {
    fn default() -> Self {
        Self { fail_first: DEFAULT_FAIL_FIRST, mode: Mode::default(), hang_ms: DEFAULT_HANG_MS }
    }
}

struct Fault {
    params: Params,
    /// Process calls so far; not cleared by `reset`, so faults can span runs.
    calls: u64,
}

impl Node for Fault {
    fn process(&mut self, input: &Data, out: &mut Emitter) -> Result<(), NodeFailure> {
        self.calls += 1;
        if self.calls <= self.params.fail_first {
            let message = format!("injected fault {} of {}", self.calls, self.params.fail_first);
            match self.params.mode {
                Mode::Transient => return Err(NodeFailure::transient(message)),
                Mode::Permanent => return Err(NodeFailure::new(message)),
                Mode::Panic => panic!("{message}"),
                Mode::Hang => std::thread::sleep(std::time::Duration::from_millis(self.params.hang_ms)),
                Mode::Abort => std::process::abort(),
                // SAFETY: the default action (std's handler would return from a raised
                // SIGSEGV), then the signal: it ends this (child) process.
                Mode::Segfault => unsafe {
                    libc::signal(libc::SIGSEGV, libc::SIG_DFL);
                    libc::raise(libc::SIGSEGV);
                },
            }
        }
        out.emit(input.clone());
        Ok(())
    }
}
