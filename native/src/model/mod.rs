//! The model engines: models read from ONNX files at run time, loaded once per process
//! and shared. Three engines: a dedicated forward for the silero VAD network
//! (`silero.rs`), a generic one for small graphs of float tensors (`graph.rs`), and
//! onnxruntime loaded at run time for every other graph (`onnxruntime.rs`).
//!
//! A loaded model is immutable behind an `Arc`; every node, pipeline and session that
//! names the same file (after resolving links) gets the same one while any of them
//! holds it, so weights are in memory once. Each stream keeps only its own state.
//! Inference runs on the calling thread, single-threaded, within the process-wide
//! inference thread budget (`budget.rs`): no engine starts threads.

pub mod batch;
pub mod budget;
mod graph;
pub mod int8;
mod onnx;
pub mod onnxruntime;
mod silero;
pub mod smart_turn;
pub mod tensor;
pub mod whisper_mel;

use std::collections::HashMap;
use std::hash::Hash;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};

pub use graph::{Array, Graph, OPS};
pub use onnxruntime::OrtModel;
pub(crate) use silero::WINDOW as SILERO_WINDOW;
pub use silero::{Silero, SileroState};
pub use smart_turn::SmartTurn;

/// Samples are clipped to ± this (120 dB above full scale) before a VAD analyses them
/// (the silero forward, the spectral engine), so finite but huge samples cannot
/// overflow f32 arithmetic; the Python twins clip alike.
pub(crate) const SAMPLE_CLIP: f32 = 1e6;

/// The error function (Abramowitz and Stegun 7.1.26, error below 1.5e-7).
pub(crate) fn erf(x: f32) -> f32 {
    let t = 1.0 / (1.0 + 0.327_591_1 * x.abs());
    let y = 1.0 - (((((1.061_405_4 * t - 1.453_152_1) * t) + 1.421_413_7) * t - 0.284_496_74) * t + 0.254_829_6) * t * (-x * x).exp();
    y.copysign(x)
}

/// GELU with the error function: x · Φ(x).
pub(crate) fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x / std::f32::consts::SQRT_2))
}

/// Largest model file read, in bytes (`RM_MAX_MODEL_BYTES` in the C header).
pub const MAX_MODEL_BYTES: u64 = 256 << 20;

/// Loaded models of one kind by key, alive while some node holds them.
struct Cache<K, T>(Mutex<Option<HashMap<K, Weak<T>>>>);

impl<K: Eq + Hash, T> Cache<K, T> {
    const fn new() -> Self {
        Self(Mutex::new(None))
    }

    /// The model under `key`, or `load()` stored under it.
    fn get<E>(&self, key: K, load: impl FnOnce() -> Result<T, E>) -> Result<Arc<T>, E> {
        let mut cache = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let cache = cache.get_or_insert_with(HashMap::new);
        if let Some(model) = cache.get(&key).and_then(Weak::upgrade) {
            return Ok(model);
        }
        let model = Arc::new(load()?);
        cache.retain(|_, weak| weak.strong_count() > 0);
        cache.insert(key, Arc::downgrade(&model));
        Ok(model)
    }
}

static SILERO: Cache<PathBuf, Silero> = Cache::new();
static GRAPHS: Cache<(PathBuf, Option<String>, Option<String>), Graph> = Cache::new();
static SESSIONS: Cache<PathBuf, OrtModel> = Cache::new();
static SMART_TURN: Cache<(PathBuf, &'static str), SmartTurn> = Cache::new();

/// Environment variable naming the int8 kernel quantized models use (`avx512-vnni`,
/// `avx-vnni`, `avx2`, `portable`), for benchmarks and tests; unset: the fastest the
/// CPU runs.
pub(crate) const INT8_KERNEL_ENV: &str = "REMOTEMEDIA_INT8_KERNEL";

/// The int8 kernel [`INT8_KERNEL_ENV`] names, or the CPU's fastest.
pub fn int8_kernel() -> Result<int8::Kernel, String> {
    let available = int8::Kernel::available();
    match std::env::var(INT8_KERNEL_ENV) {
        Ok(name) if !name.is_empty() => available.iter().copied().find(|k| k.name() == name).ok_or_else(|| {
            let names: Vec<&str> = available.iter().map(|k| k.name()).collect();
            format!("{INT8_KERNEL_ENV}={name}: this CPU runs {}", names.join(", "))
        }),
        _ => Ok(available[0]),
    }
}

fn canonical(path: &str) -> Result<PathBuf, String> {
    Path::new(path).canonicalize().map_err(|e| format!("cannot open '{path}': {e}"))
}

/// The ONNX graph at `path` for the generic engine, from `input` to `output` (defaults:
/// the first of each), loaded once per process and shared.
pub fn graph(path: &str, input: Option<&str>, output: Option<&str>) -> Result<Arc<Graph>, String> {
    let canonical = canonical(path)?;
    GRAPHS.get((canonical.clone(), input.map(String::from), output.map(String::from)), || {
        let onnx = onnx::parse(&read(&canonical)?).map_err(|e| format!("'{path}' is not a usable ONNX file: {e}"))?;
        Graph::new(onnx, input, output).map_err(|e| format!("'{path}': {e}"))
    })
}

/// The operator types of the ONNX file at `path` the generic engine does not run
/// (sorted, once each); or why the file cannot be read.
pub fn unsupported_ops(path: &str) -> Result<Vec<String>, String> {
    let onnx = onnx::parse(&read(&canonical(path)?)?).map_err(|e| format!("'{path}' is not a usable ONNX file: {e}"))?;
    let mut ops: Vec<String> = onnx.nodes.into_iter().map(|n| n.op_type).filter(|op| !OPS.contains(&op.as_str())).collect();
    ops.sort();
    ops.dedup();
    Ok(ops)
}

/// The model at `path` on onnxruntime, loaded once per process and shared. (Not inlined:
/// tests/valgrind.supp names the model caches by this module's frames.)
#[inline(never)]
pub fn onnxruntime(path: &str) -> Result<Arc<OrtModel>, onnxruntime::LoadError> {
    let canonical = canonical(path).map_err(onnxruntime::LoadError::File)?;
    SESSIONS.get(canonical.clone(), || OrtModel::load(&read(&canonical).map_err(onnxruntime::LoadError::File)?, path))
}

/// The silero VAD model in the ONNX file at `path`, loaded once per process and shared;
/// or why it cannot be used (missing, unreadable, not ONNX, not silero-shaped).
pub fn silero(path: &str) -> Result<Arc<Silero>, String> {
    let canonical = canonical(path)?;
    SILERO.get(canonical.clone(), || {
        let graph = onnx::parse(&read(&canonical)?).map_err(|e| format!("'{path}' is not a usable ONNX file: {e}"))?;
        Silero::from_graph(&graph).map_err(|e| format!("'{path}': {e}"))
    })
}

/// The Smart Turn v3 model in the ONNX file at `path`, loaded once per process (per
/// int8 kernel) and shared; or why it cannot be used. (Not inlined: tests/valgrind.supp
/// names the model caches by this module's frames.)
#[inline(never)]
pub fn smart_turn(path: &str) -> Result<Arc<SmartTurn>, String> {
    let canonical = canonical(path)?;
    let kernel = int8_kernel()?;
    SMART_TURN.get((canonical.clone(), kernel.name()), || {
        let graph = onnx::parse(&read(&canonical)?).map_err(|e| format!("'{path}' is not a usable ONNX file: {e}"))?;
        SmartTurn::from_graph(&graph, kernel).map_err(|e| format!("'{path}': {e}"))
    })
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
