//! onnxruntime, loaded at run time (the `ort` crate with `load-dynamic`, nothing
//! downloaded or linked at build time), for the graphs the built-in engines do not run.
//!
//! The library is found when a node first needs it: the path given to [`set_library`]
//! (`rm_onnxruntime_set_path`; the Python package gives the installed onnxruntime
//! wheel's), else `REMOTEMEDIA_ONNXRUNTIME`, else `libonnxruntime.so` on the dynamic
//! loader's path. It must be onnxruntime [`MIN_VERSION`] or newer. Once loaded, it stays
//! for the process, with one environment.
//!
//! One session per model file, shared by every node, pipeline and stream that names it
//! (weights once). Sessions run on the calling thread: one intra-op thread, one inter-op
//! thread, spinning off, so onnxruntime starts no threads and uses no CPU between calls.
//! Streams share a session and call `Run` at once from their threads, which onnxruntime
//! guarantees safe (microsoft/onnxruntime#19301: "InferenceSession::Run() is
//! guaranteed to be thread-safe"); the `ort` crate's `run` takes `&mut` to be careful
//! about execution providers this project does not use, so `Run` is called through
//! `ort::api()` here.

use std::ffi::{CStr, CString, c_char};
use std::path::PathBuf;
use std::ptr::{self, NonNull};
use std::sync::{Arc, Mutex};

use ort::AsPointer;
use ort::environment::Environment;
use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use ort::value::{DynValue, DynValueRef, TensorElementType, TensorRef, ValueType};

use super::tensor::{Elem, Tensor, Values, each};

/// The environment variable naming the library.
pub const ENV: &str = "REMOTEMEDIA_ONNXRUNTIME";
/// The oldest onnxruntime the engine runs on (the C API version `ort` is built for).
pub const MIN_VERSION: &str = "1.17";
const DEFAULT_LIBRARY: &str = "libonnxruntime.so";

/// The library loaded for the process, and where from.
struct Loaded {
    environment: Environment,
    path: PathBuf,
}

static CHOSEN: Mutex<Option<PathBuf>> = Mutex::new(None);
static LOADED: Mutex<Option<Arc<Loaded>>> = Mutex::new(None);

/// Where to load onnxruntime from when a node first needs it. Refused once a library
/// is loaded from another path (one per process).
pub fn set_library(path: &str) -> Result<(), String> {
    let path = PathBuf::from(path);
    if let Some(loaded) = LOADED.lock().unwrap_or_else(|p| p.into_inner()).as_ref().filter(|l| l.path != path) {
        return Err(format!("onnxruntime is already loaded from '{}'; a process loads it once", loaded.path.display()));
    }
    *CHOSEN.lock().unwrap_or_else(|p| p.into_inner()) = Some(path);
    Ok(())
}

/// The library path named by [`set_library`], if any: what a child process of an
/// isolated node is given in [`ENV`], so that it loads the same library.
pub fn chosen_library() -> Option<PathBuf> {
    CHOSEN.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

/// The path onnxruntime is (or would be) loaded from.
fn library_path() -> PathBuf {
    chosen_library()
        .or_else(|| std::env::var_os(ENV).filter(|v| !v.is_empty()).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_LIBRARY))
}

/// The process's onnxruntime, loaded on first use; or what to install.
fn load() -> Result<Arc<Loaded>, String> {
    let mut loaded = LOADED.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(l) = loaded.as_ref() {
        return Ok(l.clone());
    }
    let path = library_path();
    let hint = format!(
        "install onnxruntime {MIN_VERSION} or newer (pip install onnxruntime), or name its libonnxruntime.so in {ENV} (C: rm_onnxruntime_set_path)"
    );
    let builder = ort::init_from(&path).map_err(|e| {
        let why = match e {
            ort::LoadDynamicError::Dlopen { error, path } => {
                let detail = std::error::Error::source(&error).map_or_else(|| error.to_string(), ToString::to_string);
                format!("cannot open '{}': {detail}", path.display())
            }
            ort::LoadDynamicError::MissingApi { path } => format!("'{}' is not onnxruntime (it has no OrtGetApiBase)", path.display()),
            ort::LoadDynamicError::BadVersion { version_str, path } => {
                format!("'{}' is onnxruntime {version_str}, older than {MIN_VERSION}", path.display())
            }
            other => other.to_string(),
        };
        format!("onnxruntime cannot be loaded ({why}); {hint}")
    })?;
    let environment =
        builder.with_name("remotemedia").with_telemetry(false).build().map_err(|e| format!("onnxruntime cannot start: {e}"))?;
    let l = Arc::new(Loaded { environment, path });
    *loaded = Some(l.clone());
    Ok(l)
}

/// A model input or output: its name, element type (`None`: one the engine does not
/// handle) and declared dimensions (`None`: symbolic or unknown).
#[derive(Debug, Clone)]
pub struct Port {
    pub name: String,
    pub elem: Option<Elem>,
    pub dims: Vec<Option<i64>>,
}

/// A value fed to one input of a run: the window (f32 samples, borrowed), or a typed
/// tensor (state, constants, a converted window).
pub enum Feed<'a> {
    F32(&'a [i64], &'a [f32]),
    Typed(&'a Tensor),
}

/// A model on onnxruntime: one session, shared.
pub struct OrtModel {
    session: Session,
    pub inputs: Vec<Port>,
    pub outputs: Vec<Port>,
    input_names: Vec<CString>,
    output_names: Vec<CString>,
    _loaded: Arc<Loaded>,
}

fn elem(t: TensorElementType) -> Option<Elem> {
    Some(match t {
        TensorElementType::Float32 => Elem::F32,
        TensorElementType::Float16 => Elem::F16,
        TensorElementType::Float64 => Elem::F64,
        TensorElementType::Int64 => Elem::I64,
        TensorElementType::Int32 => Elem::I32,
        TensorElementType::Int8 => Elem::I8,
        TensorElementType::Uint8 => Elem::U8,
        TensorElementType::Bool => Elem::Bool,
        _ => return None,
    })
}

fn port(name: &str, ty: &ValueType) -> Port {
    let (elem, dims) = match ty {
        ValueType::Tensor { ty, shape, .. } => (elem(*ty), shape.iter().map(|&d| (d >= 0).then_some(d)).collect()),
        _ => (None, Vec::new()),
    };
    Port { name: name.to_string(), elem, dims }
}

impl OrtModel {
    /// The model in `bytes` (the file `shown`) on a new session; or why not (the
    /// library, or the file: onnxruntime's own message).
    pub fn load(bytes: &[u8], shown: &str) -> Result<Self, LoadError> {
        let loaded = load().map_err(LoadError::Library)?;
        let build = || -> Result<Session, String> {
            let show = |e: &dyn std::fmt::Display| e.to_string();
            let b = Session::builder(&loaded.environment).map_err(|e| show(&e))?;
            let b = b.with_optimization_level(GraphOptimizationLevel::Level3).map_err(|e| show(&e))?;
            let b = b.with_intra_threads(1).map_err(|e| show(&e))?;
            let b = b.with_inter_threads(1).map_err(|e| show(&e))?;
            let b = b.with_intra_op_spinning(false).map_err(|e| show(&e))?;
            let mut b = b.with_inter_op_spinning(false).map_err(|e| show(&e))?;
            b.commit_from_memory(bytes).map_err(|e| show(&e))
        };
        let session = build().map_err(|e| LoadError::File(format!("'{shown}' is not a usable ONNX file: onnxruntime says: {e}")))?;
        let inputs: Vec<Port> = session.inputs().iter().map(|o| port(o.name(), o.dtype())).collect();
        let outputs: Vec<Port> = session.outputs().iter().map(|o| port(o.name(), o.dtype())).collect();
        let cstrings = |ports: &[Port]| ports.iter().map(|p| CString::new(p.name.as_str()).unwrap_or_default()).collect();
        Ok(Self { input_names: cstrings(&inputs), output_names: cstrings(&outputs), inputs, outputs, session, _loaded: loaded })
    }

    /// Runs the model on `feeds` (by input index) and returns the outputs `wanted` (by
    /// output index), within the process's inference budget.
    pub fn run(&self, feeds: &[(usize, Feed<'_>)], wanted: &[usize]) -> Result<Vec<Tensor>, String> {
        let values: Vec<DynValueRef<'_>> = feeds
            .iter()
            .map(|(_, feed)| match feed {
                Feed::F32(shape, data) => TensorRef::from_array_view((shape.to_vec(), *data)).map(|t| t.into_dyn()),
                Feed::Typed(t) => each!(&t.values, v => TensorRef::from_array_view((t.shape.clone(), &v[..])).map(|t| t.into_dyn())),
            })
            .collect::<Result<_, _>>()
            .map_err(|e| e.to_string())?;
        let input_names: Vec<*const c_char> = feeds.iter().map(|(i, _)| self.input_names[*i].as_ptr()).collect();
        let input_values: Vec<*const ort::sys::OrtValue> = values.iter().map(|v| v.ptr()).collect();
        let output_names: Vec<*const c_char> = wanted.iter().map(|&o| self.output_names[o].as_ptr()).collect();
        let mut outputs: Vec<*mut ort::sys::OrtValue> = vec![ptr::null_mut(); wanted.len()];
        let status = super::budget::run(|| unsafe {
            // SAFETY: names and values are alive for the call and as many as their lengths
            // say; Run is thread-safe on one session (module doc); outputs are written
            // by Run and owned below.
            (ort::api().Run)(
                self.session.ptr().cast_mut(),
                ptr::null(),
                input_names.as_ptr(),
                input_values.as_ptr(),
                input_values.len(),
                output_names.as_ptr(),
                output_names.len(),
                outputs.as_mut_ptr(),
            )
        });
        // own what Run wrote even when it failed, so nothing leaks
        let owned: Vec<Option<DynValue>> = outputs
            .into_iter()
            .map(|p| NonNull::new(p).map(|p| unsafe { DynValue::from_ptr(p, Some(self.session.allocator())) }))
            .collect();
        check(status)?;
        owned.iter().map(|v| v.as_ref().ok_or_else(|| "onnxruntime gave no output".to_string()).and_then(extract)).collect()
    }
}

/// Why a model cannot be loaded on onnxruntime.
#[derive(Debug)]
pub enum LoadError {
    /// The library is missing, too old or does not start.
    Library(String),
    /// The file is not a model onnxruntime runs.
    File(String),
}

fn check(status: ort::sys::OrtStatusPtr) -> Result<(), String> {
    if status.0.is_null() {
        return Ok(());
    }
    // SAFETY: a non-null status from the API, read then released once
    let message = unsafe { CStr::from_ptr((ort::api().GetErrorMessage)(status.0)) }.to_string_lossy().into_owned();
    unsafe { (ort::api().ReleaseStatus)(status.0) };
    Err(message)
}

/// A tensor output as a [`Tensor`].
fn extract(value: &DynValue) -> Result<Tensor, String> {
    let ValueType::Tensor { ty, .. } = value.dtype() else { return Err("an output is not a tensor".into()) };
    let elem = elem(*ty).ok_or_else(|| format!("an output is of type {ty}, which the Model node does not take"))?;
    macro_rules! take {
        ($t:ty, $variant:ident) => {{
            let (shape, data) = value.try_extract_tensor::<$t>().map_err(|e| e.to_string())?;
            Tensor { shape: shape.to_vec(), values: Values::$variant(data.to_vec()) }
        }};
    }
    Ok(match elem {
        Elem::F32 => take!(f32, F32),
        Elem::F16 => take!(half::f16, F16),
        Elem::F64 => take!(f64, F64),
        Elem::I64 => take!(i64, I64),
        Elem::I32 => take!(i32, I32),
        Elem::I8 => take!(i8, I8),
        Elem::U8 => take!(u8, U8),
        Elem::Bool => take!(bool, Bool),
    })
}
