//! The one error type of the runtime, shared by the executor, the C ABI and (through it) Python.

use remotemedia_plugin::abi::RmStatus;
use thiserror::Error;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What a node was doing when it failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Create,
    Configure,
    Process,
    Flush,
    Reset,
}

impl Operation {
    /// Stable lower-case name, as shown to C and Python.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "create",
            Operation::Configure => "configure",
            Operation::Process => "process",
            Operation::Flush => "flush",
            Operation::Reset => "reset",
        }
    }
}

impl std::fmt::Display for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What kind of failure a node reported; it decides retry, breaker and poisoning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// Repeating the call will fail again.
    Permanent,
    /// Retrying the same call may succeed.
    Transient,
    /// The instance is unusable (a panic, say): the executor poisons it and never calls
    /// it again.
    Broken,
    /// The input is unusable for this node (a non-finite sample, a frame over the
    /// memory budget): the call is refused before it changes the node's state, the
    /// caller gets `InvalidInput` naming the node, and the breaker does not count it.
    InvalidInput,
    /// The call ran past the node's `timeout_ms` and was stopped (an isolated node's
    /// process was killed): the executor reports it as [`Error::Timeout`].
    TimedOut,
    /// The process the node ran in died (an isolated node: a signal, an abort); retrying
    /// starts a new process.
    Crashed,
}

/// A failure reported by a node's own code, before the executor adds where it happened.
#[derive(Debug, Clone, Error)]
#[error("{message}")]
pub struct NodeFailure {
    pub message: String,
    pub kind: FailureKind,
}

impl NodeFailure {
    /// A permanent failure.
    pub fn new(message: impl Into<String>) -> Self {
        Self { message: message.into(), kind: FailureKind::Permanent }
    }
    /// A failure worth retrying.
    pub fn transient(message: impl Into<String>) -> Self {
        Self { message: message.into(), kind: FailureKind::Transient }
    }
    /// A failure that leaves the instance unusable.
    pub fn broken(message: impl Into<String>) -> Self {
        Self { message: message.into(), kind: FailureKind::Broken }
    }
    /// A call stopped at its deadline.
    pub fn timed_out(message: impl Into<String>) -> Self {
        Self { message: message.into(), kind: FailureKind::TimedOut }
    }
    /// The node's process died during the call.
    pub fn crashed(message: impl Into<String>) -> Self {
        Self { message: message.into(), kind: FailureKind::Crashed }
    }
    /// Input this node refuses; its state is as before the call.
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self { message: message.into(), kind: FailureKind::InvalidInput }
    }
    /// The failure of a call that panicked: the instance may be inconsistent, so it is
    /// broken. The one place a caught panic becomes a node failure.
    pub fn panicked(payload: &(dyn std::any::Any + Send)) -> Self {
        Self::broken(format!("panicked: {}", panic_message(payload)))
    }
}

/// Every error the runtime reports.
#[derive(Debug, Error)]
pub enum Error {
    /// The manifest is malformed; `path` points at the offending field (`nodes[2].params.gain_db`).
    #[error("manifest error at {path}: {message}")]
    Manifest { path: String, message: String },
    /// The graph is not runnable (e.g. no source node).
    #[error("graph error: {0}")]
    Graph(String),
    /// The graph has a cycle; `nodes` lists it in order, first node repeated at the end.
    #[error("graph has a cycle: {}", nodes.join(" -> "))]
    Cycle { nodes: Vec<String> },
    /// A node failed while doing `operation` (status `NODE`; `INVALID_ARGUMENT` when
    /// the node refused its input, [`FailureKind::InvalidInput`]).
    #[error("node '{node_id}' failed in {operation}: {failure}")]
    Node { node_id: String, operation: Operation, failure: NodeFailure },
    /// An argument given to the runtime is unusable (null, wrong length, wrong type).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A node call ran past its `timeout_ms`; the instance is poisoned.
    #[error("node '{node_id}' timed out in {operation} after {after_ms} ms")]
    Timeout { node_id: String, operation: Operation, after_ms: u64 },
    /// The node's circuit breaker is open: it failed too often and is not called.
    #[error("node '{node_id}' is not called: its circuit breaker is open after repeated failures")]
    CircuitOpen { node_id: String },
    /// A session's output queue stayed full for the whole push timeout (policy `block`).
    #[error("output queue is full ({0} items); pull outputs or use a longer timeout")]
    QueueFull(usize),
    /// The session was closed.
    #[error("session is closed")]
    Closed,
    /// A call waiting inside the runtime was interrupted (a blocked push, by `close`);
    /// its chunk was not processed.
    #[error("cancelled: {0}")]
    Cancelled(String),
    /// A plugin library could not be loaded, or a plugin node could not be created;
    /// `file` is the library's path, `path` the node's params in the manifest
    /// (`nodes[2].params`) when its `create` refused them.
    #[error("plugin {file}: {message}")]
    Plugin { file: String, message: String, path: Option<String> },
    /// A bug or broken invariant inside the runtime, including caught panics outside nodes.
    #[error("internal error: {0}")]
    Internal(String),
    /// Sessions of a group failed in one call: `message` has a line per session
    /// (`session <id>: <why>`); status, node and operation are the first failure's.
    #[error("{message}")]
    Sessions { message: String, first: Box<Error> },
}

impl Error {
    /// Shorthand for a manifest error.
    pub fn manifest(path: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Manifest { path: path.into(), message: message.into() }
    }

    /// The C status that reports this error.
    pub fn status(&self) -> RmStatus {
        match self {
            Error::Manifest { .. } => RmStatus::Manifest,
            Error::Graph(_) => RmStatus::Graph,
            Error::Cycle { .. } => RmStatus::Cycle,
            Error::Node { failure, .. } if failure.kind == FailureKind::InvalidInput => RmStatus::InvalidArgument,
            Error::Node { .. } => RmStatus::Node,
            Error::InvalidArgument(_) => RmStatus::InvalidArgument,
            Error::Internal(_) => RmStatus::Internal,
            Error::QueueFull(_) => RmStatus::QueueFull,
            Error::Closed => RmStatus::Closed,
            Error::CircuitOpen { .. } => RmStatus::CircuitOpen,
            Error::Timeout { .. } => RmStatus::Timeout,
            Error::Cancelled(_) => RmStatus::Cancelled,
            Error::Plugin { .. } => RmStatus::Plugin,
            Error::Sessions { first, .. } => first.status(),
        }
    }

    /// True when the same call may succeed if repeated: transient node failures, crashes
    /// of an isolated node's process, and timeouts.
    pub fn is_retryable(&self) -> bool {
        if let Error::Sessions { first, .. } = self {
            return first.is_retryable();
        }
        matches!(self, Error::Node { failure, .. } if matches!(failure.kind, FailureKind::Transient | FailureKind::Crashed))
            || matches!(self, Error::Timeout { .. })
    }

    /// The node the error belongs to, if any.
    pub fn node_id(&self) -> Option<&str> {
        match self {
            Error::Node { node_id, .. } | Error::CircuitOpen { node_id } | Error::Timeout { node_id, .. } => Some(node_id),
            Error::Sessions { first, .. } => first.node_id(),
            _ => None,
        }
    }

    /// The node operation the error belongs to, if any.
    pub fn operation(&self) -> Option<Operation> {
        match self {
            Error::Node { operation, .. } | Error::Timeout { operation, .. } => Some(*operation),
            Error::Sessions { first, .. } => first.operation(),
            _ => None,
        }
    }

    /// The manifest path of a manifest error (e.g. `nodes[0].params.gain_db`), or of
    /// the params a plugin node refused, if any.
    pub fn path(&self) -> Option<&str> {
        match self {
            Error::Manifest { path, .. } => Some(path),
            Error::Plugin { path, .. } => path.as_deref(),
            Error::Sessions { first, .. } => first.path(),
            _ => None,
        }
    }
}

thread_local! {
    /// How many [`catch`] calls are running on this thread.
    static CATCHING: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// "; did you mean 'X'?" when one of `known` is close to `name` (edit distance, case
/// ignored, of at most a third of its length and at least 2; the nearest, the first on
/// ties), else "". Names over [`SUGGEST_MAX_CHARS`] get no suggestion, which keeps a
/// hostile manifest cheap. The Python runtime's `errors.did_you_mean` gives the same text.
pub fn did_you_mean<'a>(name: &str, known: impl IntoIterator<Item = &'a str>) -> String {
    let chars = name.chars().count();
    if chars > SUGGEST_MAX_CHARS {
        return String::new();
    }
    let (name, limit) = (name.to_lowercase(), (chars / 3).max(2));
    let nearest = known
        .into_iter()
        .filter(|k| k.chars().count().abs_diff(chars) <= limit)
        .map(|k| (edit_distance(&name, &k.to_lowercase()), k))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d);
    nearest.map_or_else(String::new, |(_, k)| format!("; did you mean '{k}'?"))
}

/// Longest name [`did_you_mean`] looks for a match of.
pub(crate) const SUGGEST_MAX_CHARS: usize = 100;

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1).min(row[j] + 1).min(diagonal + usize::from(ca != cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

/// Runs `f` with panics caught (`catch_unwind`). The caller turns a panic into an error,
/// so its report goes to the log (target `remotemedia::panic`, level error) instead of
/// the host's stderr; panics outside any `catch` keep the default report.
pub fn catch<R>(f: impl FnOnce() -> R) -> std::thread::Result<R> {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if CATCHING.try_with(std::cell::Cell::get).unwrap_or(0) == 0 {
                return default(info);
            }
            let at = info.location().map(|l| format!("{}:{}", l.file(), l.line())).unwrap_or_default();
            tracing::error!(target: "remotemedia::panic", at, "caught panic: {}", panic_message(info.payload()));
        }));
    });
    let _ = CATCHING.try_with(|c| c.set(c.get() + 1));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    let _ = CATCHING.try_with(|c| c.set(c.get() - 1));
    result
}

/// Text of a caught panic payload.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn did_you_mean_names_the_nearest_close_name() {
        let known = ["Downmix", "Resample", "Rechunk", "VAD"];
        assert_eq!(did_you_mean("Resampel", known), "; did you mean 'Resample'?");
        assert_eq!(did_you_mean("resample", known), "; did you mean 'Resample'?");
        assert_eq!(did_you_mean("vda", known), "; did you mean 'VAD'?");
        assert_eq!(did_you_mean("Nope", known), "");
        assert_eq!(did_you_mean(&"R".repeat(SUGGEST_MAX_CHARS + 1), known), "");
        assert_eq!(did_you_mean("Rechunks", ["Rechunk", "Rechunkz"]), "; did you mean 'Rechunk'?", "the first on ties");
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
    }
}
