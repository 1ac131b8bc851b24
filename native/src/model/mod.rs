//! The model engine: models read from ONNX files at run time, loaded once per process
//! and shared. Two engines: a dedicated forward for the silero VAD network
//! (`silero.rs`), and a generic one for other graphs of float tensors (`graph.rs`).
//!
//! A loaded model is immutable behind an `Arc`; every node, pipeline and session that
//! names the same file (after resolving links) gets the same one while any of them
//! holds it, so weights are in memory once. Each stream keeps only its own state.
//! Inference runs on the calling thread, single-threaded: the engine starts no threads.

mod graph;
mod onnx;
mod silero;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};

pub use graph::{Array, Graph, OPS};
pub(crate) use silero::WINDOW as SILERO_WINDOW;
pub use silero::{Silero, SileroState};

/// Largest model file read, in bytes (`RM_MAX_MODEL_BYTES` in the C header).
pub const MAX_MODEL_BYTES: u64 = 256 << 20;

/// Loaded silero models by canonical path, alive while some node holds them.
static SILERO: Mutex<Option<HashMap<PathBuf, Weak<Silero>>>> = Mutex::new(None);

/// Loaded generic graphs by (canonical path, input, output).
type GraphKey = (PathBuf, Option<String>, Option<String>);
static GRAPHS: Mutex<Option<HashMap<GraphKey, Weak<Graph>>>> = Mutex::new(None);

/// The ONNX graph at `path` for the generic engine, from `input` to `output` (defaults:
/// the first of each), loaded once per process and shared.
pub fn graph(path: &str, input: Option<&str>, output: Option<&str>) -> Result<Arc<Graph>, String> {
    let canonical = Path::new(path).canonicalize().map_err(|e| format!("cannot open '{path}': {e}"))?;
    let key = (canonical.clone(), input.map(String::from), output.map(String::from));
    let mut cache = GRAPHS.lock().unwrap_or_else(|p| p.into_inner());
    let cache = cache.get_or_insert_with(HashMap::new);
    if let Some(model) = cache.get(&key).and_then(Weak::upgrade) {
        return Ok(model);
    }
    let onnx = onnx::parse(&read(&canonical)?).map_err(|e| format!("'{path}' is not a usable ONNX file: {e}"))?;
    let model = Arc::new(Graph::new(onnx, input, output).map_err(|e| format!("'{path}': {e}"))?);
    cache.retain(|_, weak| weak.strong_count() > 0);
    cache.insert(key, Arc::downgrade(&model));
    Ok(model)
}

/// The silero VAD model in the ONNX file at `path`, loaded once per process and shared;
/// or why it cannot be used (missing, unreadable, not ONNX, not silero-shaped).
pub fn silero(path: &str) -> Result<Arc<Silero>, String> {
    let canonical = Path::new(path).canonicalize().map_err(|e| format!("cannot open '{path}': {e}"))?;
    let mut cache = SILERO.lock().unwrap_or_else(|p| p.into_inner());
    let cache = cache.get_or_insert_with(HashMap::new);
    if let Some(model) = cache.get(&canonical).and_then(Weak::upgrade) {
        return Ok(model);
    }
    let graph = onnx::parse(&read(&canonical)?).map_err(|e| format!("'{path}' is not a usable ONNX file: {e}"))?;
    let model = Arc::new(Silero::from_graph(&graph).map_err(|e| format!("'{path}': {e}"))?);
    cache.retain(|_, weak| weak.strong_count() > 0);
    cache.insert(canonical, Arc::downgrade(&model));
    Ok(model)
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot open '{shown}': {e}"))?;
    if !meta.is_file() {
        return Err(format!("'{shown}' is not a file"));
    }
    if meta.len() > MAX_MODEL_BYTES {
        return Err(format!("'{shown}' is {} bytes, more than the {MAX_MODEL_BYTES} a model may have", meta.len()));
    }
    std::fs::read(path).map_err(|e| format!("cannot read '{shown}': {e}"))
}
