//! Pipeline handles and one-shot runs.

use std::ffi::{c_char, c_void};
use std::sync::Arc;

use crate::caps::Caps;
use crate::error::Error;
use crate::executor::Pipeline;
use crate::ffi::into_raw_c_string;
use crate::manifest::MAX_MANIFEST_BYTES;
use crate::runtime::Runtime;
use crate::serial::{Serial, Turn};

use super::outputs::{Names, OwnedOutputs, RmInput, RmOutputs, borrow_input, borrow_inputs, fitting, refused, write_audio};
use super::runtime::RmRuntime;
use super::{RmStatus, free_boxed, guard};
use crate::ffi::{arg, arg_mut, c_string, optional_str_arg, str_len_arg};

/// A validated pipeline with its node instances. Opaque.
pub struct RmPipeline {
    runtime: Arc<Runtime>,
    pipeline: Serial<Pipeline>,
    /// The validated manifest, for sessions (read without waiting for a run).
    manifest: String,
    names: Arc<Names>,
}

/// The UTF-8 byte-order mark a manifest may start with.
const BOM: &str = "\u{feff}";

/// Parses and validates a JSON manifest and creates every node.
///
/// `manifest` points to `len` bytes of UTF-8 JSON (no NUL needed; a leading byte-order
/// mark is allowed; more than `RM_MAX_MANIFEST_BYTES` is refused unread); it is only read
/// during the call. On success `*out` receives a pipeline the caller owns and must
/// release with `rm_pipeline_free`. On failure the last error names the offending
/// field, node or cycle. Any thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rm_pipeline_new(
    runtime: *const RmRuntime,
    manifest: *const c_char,
    len: usize,
    out: *mut *mut RmPipeline,
) -> RmStatus {
    guard(|| {
        let runtime = unsafe { arg(runtime, "runtime") }?;
        // Refused before a byte is read: the limit bounds the work a manifest can cause.
        if len > MAX_MANIFEST_BYTES + BOM.len() {
            let message = format!("manifest is {len} bytes, more than the limit of {MAX_MANIFEST_BYTES}");
            return Err(Error::manifest("$", message));
        }
        let text = unsafe { str_len_arg(manifest, len, "manifest") }?;
        let out = unsafe { arg_mut(out, "out") }?;
        let pipeline = runtime.inner.pipeline(text)?;
        let ids = pipeline.graph().ids();
        let names = Names {
            ids: ids.iter().map(|id| c_string(id)).collect(),
            ports: (0..ids.len()).map(|i| pipeline.output_ports(i).iter().map(|p| c_string(p)).collect()).collect(),
        };
        let manifest = pipeline.manifest().to_json();
        let runtime = runtime.inner.clone();
        *out = Box::into_raw(Box::new(RmPipeline { runtime, pipeline: Serial::new(pipeline), manifest, names: Arc::new(names) }));
        Ok(())
    })
}

impl RmPipeline {
    /// The runtime, fresh instances of this pipeline's nodes, and its names (for sessions).
    pub(crate) fn fork(&self) -> crate::Result<(Arc<Runtime>, Pipeline, Arc<Names>)> {
        Ok((self.runtime.clone(), self.runtime.pipeline(&self.manifest)?, self.names.clone()))
    }

    /// Metrics of the one-shot runs; waits for a run in progress.
    pub(crate) fn metrics_json(&self) -> crate::Result<serde_json::Value> {
        Ok(self.lock()?.metrics_json())
    }

    fn lock(&self) -> crate::Result<Turn<'_, Pipeline>> {
        self.pipeline.lock("pipeline")
    }
}

/// Releases a pipeline and destroys its node instances. NULL is ignored. Outputs of
/// earlier runs stay valid. Any thread, but not while a call on this pipeline runs.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rm_pipeline_free(pipeline: *mut RmPipeline) {
    unsafe { free_boxed(pipeline) }
}

/// Runs the pipeline once: every node starts fresh, the input goes to every source
/// node (nodes with no inbound connection), all nodes are flushed, and the items that
/// sink nodes emit are returned. A pipeline with several named inputs takes its
/// chunks through `rm_pipeline_run_inputs`; this call then fails with
/// `RM_STATUS_INVALID_ARGUMENT` naming them.
///
/// `data` points to `samples` interleaved samples (all channels) of `format` (an
/// `RmSampleFormat`), aligned for that type; it may be NULL only when `samples` is 0.
/// It is borrowed, not copied, and only read until this call returns. On success
/// `*out` receives outputs the caller owns and must release with `rm_outputs_free`;
/// read their items through `(*out)->items` and `(*out)->len`.
///
/// Threading: blocks the calling thread, on which the nodes run (host-node callbacks
/// included). Calls on one pipeline are serialized: a call from another thread waits
/// for the running one to finish; different pipelines run in parallel. A call from
/// inside one of this pipeline's own node callbacks fails with
/// `RM_STATUS_INVALID_ARGUMENT` instead of deadlocking.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rm_pipeline_run(
    pipeline: *mut RmPipeline,
    data: *const c_void,
    samples: usize,
    format: u32,
    channels: u32,
    sample_rate: u32,
    out: *mut *mut RmOutputs,
) -> RmStatus {
    guard(|| {
        let pipeline = unsafe { arg(pipeline, "pipeline") }?;
        let out = unsafe { arg_mut(out, "out") }?;
        // SAFETY: the caller keeps `data` valid for this call, and `Pipeline::run`
        // copies any output still viewing it before returning.
        let input = unsafe { borrow_input(data, samples, format, channels, sample_rate) }?;
        let outputs = pipeline.runtime.run(&mut *pipeline.lock()?, input)?;
        *out = OwnedOutputs::boxed(outputs, pipeline.names.clone());
        Ok(())
    })
}

/// Runs the pipeline once, like `rm_pipeline_run`, and writes the run's audio into
/// caller memory instead of returning outputs: the fast path for audio-to-audio
/// pipelines (no output allocation, nothing to free).
///
/// The input arguments are those of `rm_pipeline_run`. `out` points to caller memory
/// for `capacity` frames of `out_channels` interleaved samples of `out_format` (an
/// `RmSampleFormat`), aligned for that type; it may be NULL only when `capacity` is 0.
/// It is written during this call only, and never read. On success `*frames`
/// receives the number of frames written (the items the sinks emitted, one after
/// another; 0 when they emitted nothing).
///
/// Fails with `RM_STATUS_INVALID_ARGUMENT`, and writes nothing to `out`, when the
/// run's outputs are not all audio from one sink output (JSON events, or two sinks:
/// use `rm_pipeline_run`), are in another format or channel count than `out`'s, or do
/// not fit in `capacity` frames (the message says how many frames they have). The
/// run itself has then happened, and, like every run, depends only on its input: it
/// may be repeated with a fitting `out`.
///
/// Threading: as `rm_pipeline_run`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rm_pipeline_run_into(
    pipeline: *mut RmPipeline,
    data: *const c_void,
    samples: usize,
    format: u32,
    channels: u32,
    sample_rate: u32,
    out: *mut c_void,
    capacity: usize,
    out_format: u32,
    out_channels: u32,
    frames: *mut usize,
) -> RmStatus {
    guard(|| {
        let pipeline = unsafe { arg(pipeline, "pipeline") }?;
        let frames = unsafe { arg_mut(frames, "frames") }?;
        // SAFETY: the caller keeps `data` valid for this call, and the outputs, which
        // may view it, are dropped before it returns.
        let input = unsafe { borrow_input(data, samples, format, channels, sample_rate) }?;
        let outputs = pipeline.runtime.run_viewing(&mut *pipeline.lock()?, input)?;
        *frames = unsafe { into_caller(&outputs, &pipeline.names, out, capacity, out_format, out_channels) }?;
        Ok(())
    })
}

/// How many inputs the pipeline has: the manifest's named `inputs`, else 1. Any
/// thread; waits for a run in progress.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rm_pipeline_input_count(pipeline: *const RmPipeline, count: *mut usize) -> RmStatus {
    guard(|| {
        let pipeline = unsafe { arg(pipeline, "pipeline") }?;
        let count = unsafe { arg_mut(count, "count") }?;
        *count = pipeline.lock()?.input_names().len();
        Ok(())
    })
}

/// The index of the pipeline input called `name` (NUL-terminated UTF-8, read during
/// the call), for `RmInput::input`. A pipeline without named inputs has the one input
/// `"input"`, index 0. Fails with `RM_STATUS_INVALID_ARGUMENT`, naming the inputs it
/// has, when there is none of that name. Any thread; waits for a run in progress.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rm_pipeline_input_index(pipeline: *const RmPipeline, name: *const c_char, index: *mut usize) -> RmStatus {
    guard(|| {
        let pipeline = unsafe { arg(pipeline, "pipeline") }?;
        let name = unsafe { crate::ffi::str_arg(name, "name") }?;
        let index = unsafe { arg_mut(index, "index") }?;
        let p = pipeline.lock()?;
        *index = p.input_index(name).ok_or_else(|| {
            let names = p.input_names();
            let hint = crate::error::did_you_mean(name, names.iter().map(String::as_str));
            Error::InvalidArgument(format!("the pipeline has no input '{name}'{hint}; inputs: {}", names.join(", ")))
        })?;
        Ok(())
    })
}

/// Runs the pipeline once, like `rm_pipeline_run`, on chunks of several of its inputs
/// at once: `inputs` points to `n` `RmInput`s (any of the pipeline's inputs, each at
/// most once, at least one); each goes where the manifest's connections from
/// `$name` take it. The chunks are borrowed and read only during the call; NULL only
/// when `n` is 0 (which fails: no input). An unknown or repeated input index fails with
/// `RM_STATUS_INVALID_ARGUMENT`, and nothing runs.
///
/// Ownership of `*out` and threading: as `rm_pipeline_run`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rm_pipeline_run_inputs(
    pipeline: *mut RmPipeline,
    inputs: *const RmInput,
    n: usize,
    out: *mut *mut RmOutputs,
) -> RmStatus {
    guard(|| {
        let pipeline = unsafe { arg(pipeline, "pipeline") }?;
        let out = unsafe { arg_mut(out, "out") }?;
        // SAFETY: the caller keeps the chunks valid for this call; outputs viewing them are copied.
        let inputs = unsafe { borrow_inputs(inputs, n) }?;
        let outputs = pipeline.runtime.run_inputs(&mut *pipeline.lock()?, inputs)?;
        *out = OwnedOutputs::boxed(outputs, pipeline.names.clone());
        Ok(())
    })
}

/// `rm_pipeline_run_into` on chunks of several inputs: the inputs as
/// `rm_pipeline_run_inputs` takes them, the output as `rm_pipeline_run_into` writes it.
///
/// Threading: as `rm_pipeline_run`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rm_pipeline_run_inputs_into(
    pipeline: *mut RmPipeline,
    inputs: *const RmInput,
    n: usize,
    out: *mut c_void,
    capacity: usize,
    out_format: u32,
    out_channels: u32,
    frames: *mut usize,
) -> RmStatus {
    guard(|| {
        let pipeline = unsafe { arg(pipeline, "pipeline") }?;
        let frames = unsafe { arg_mut(frames, "frames") }?;
        // SAFETY: the caller keeps the chunks valid for this call, and the outputs,
        // which may view them, are dropped before it returns.
        let inputs = unsafe { borrow_inputs(inputs, n) }?;
        let outputs = pipeline.runtime.block_on(pipeline.lock()?.run_inputs_viewing(inputs))?;
        *frames = unsafe { into_caller(&outputs, &pipeline.names, out, capacity, out_format, out_channels) }?;
        Ok(())
    })
}

/// Writes a run's `outputs` into the caller's `out` as `rm_pipeline_run_into` says;
/// returns the frames written, or refuses and writes nothing.
///
/// # Safety
/// `out` must be writable for `capacity` frames of `out_channels` samples of `out_format`.
unsafe fn into_caller(
    outputs: &[crate::executor::Output],
    names: &Names,
    out: *mut c_void,
    capacity: usize,
    out_format: u32,
    out_channels: u32,
) -> crate::Result<usize> {
    let (_, fit, why) = fitting(outputs.iter(), names, out, capacity, out_format, out_channels)?;
    if let Some(why) = why {
        return Err(refused("run_into", &why, "nothing was written (run returns outputs of any kind)"));
    }
    // SAFETY: the caller provides `capacity` frames at `out`, and `fit` of them are written.
    unsafe { write_audio(outputs.iter(), out) };
    Ok(fit)
}

/// The pipeline's caps plan as JSON: `{"input": CAPS, "nodes": [{"id", "node_type",
/// "inserted", "input": CAPS, "outputs": {port: CAPS}, "params" (inserted nodes
/// only)}], "edges": [{"from", "port", "to", "caps": CAPS}]}`, where CAPS is
/// `{"kind": "audio", "format", "channels", "sample_rate"}` (`null` where not known
/// before data flows) or `{"kind": "json"}`. Nodes come in manifest order, then the
/// converters negotiation inserted (ids like `input→vad.resample`).
///
/// `input_caps` is NULL for the plan in use (made when the pipeline was created, for the
/// manifest's `input`, and remade whenever a chunk's caps differ from those it was made
/// for), or a NUL-terminated JSON object `{"format", "channels", "sample_rate"}` (each
/// optional; for a manifest with named `inputs`, an object of such objects keyed by input
/// name, an input left out taking its declared caps), read during the call: the plan the
/// pipeline would make for such input; the pipeline keeps its own. Fails with
/// `RM_STATUS_MANIFEST` when no plan fits that input (the message names the
/// connection), `RM_STATUS_INVALID_ARGUMENT` for caps that are not such an object or
/// contradict the manifest's `input` or `inputs`.
///
/// On success `*out` receives a NUL-terminated string the caller owns and must release
/// with `rm_string_free`. Any thread; waits for a run in progress.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rm_pipeline_plan(pipeline: *const RmPipeline, input_caps: *const c_char, out: *mut *mut c_char) -> RmStatus {
    guard(|| {
        let pipeline = unsafe { arg(pipeline, "pipeline") }?;
        let caps = unsafe { optional_str_arg(input_caps, "input_caps") }?;
        let out = unsafe { arg_mut(out, "out") }?;
        let p = pipeline.lock()?;
        let plan = match caps {
            None => p.plan_json(),
            Some(text) => {
                let value: serde_json::Value =
                    serde_json::from_str(&text).map_err(|e| Error::InvalidArgument(format!("input_caps: not JSON: {e}")))?;
                let read = |v: &serde_json::Value, at: &str| {
                    Caps::from_json(v).map_err(|(field, m)| Error::InvalidArgument(format!("{at}.{field}: {m}").replace(". :", ":")))
                };
                let caps = match p.manifest().inputs {
                    None => vec![read(&value, "input_caps")?],
                    Some(_) => {
                        let by_name = value
                            .as_object()
                            .ok_or_else(|| Error::InvalidArgument("input_caps: expected an object keyed by input name".into()))?;
                        if let Some(unknown) = by_name.keys().find(|k| p.input_index(k).is_none()) {
                            return Err(Error::InvalidArgument(format!(
                                "input_caps: no input '{unknown}'; inputs: {}",
                                p.input_names().join(", ")
                            )));
                        }
                        let empty = serde_json::json!({});
                        (p.input_names().iter())
                            .map(|n| read(by_name.get(n).unwrap_or(&empty), &format!("input_caps.{n}")))
                            .collect::<crate::error::Result<_>>()?
                    }
                };
                p.plan_for(&caps)?
            }
        };
        *out = into_raw_c_string(&plan.to_string());
        Ok(())
    })
}

/// Describes the pipeline as JSON: `{"runtime": "native"|"mixed", "inputs": [name,
/// ...] (the pipeline inputs, in index order), "nodes": [{"id",
/// "node_type", "runtime", "outputs", "latency", "inserted"}], "manifest": {...}}`, where each
/// node's `runtime` is the implementation that was chosen for it ("native" or
/// "python"), `outputs` its output port names (default port first) and `latency` its
/// worst-case output lag in frames at its output rate, as of its last chunk. A node
/// whose type comes from a plugin also has `plugin`, the plugin's name. `inserted` is
/// true for a converter the plan inserted (see `rm_pipeline_plan`); they follow the
/// manifest's nodes.
///
/// On success `*out` receives a NUL-terminated string the caller owns and must
/// release with `rm_string_free`. Any thread; waits for a run in progress.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rm_pipeline_describe(pipeline: *const RmPipeline, out: *mut *mut c_char) -> RmStatus {
    guard(|| {
        let pipeline = unsafe { arg(pipeline, "pipeline") }?;
        let out = unsafe { arg_mut(out, "out") }?;
        let p = pipeline.lock()?;
        let nodes: Vec<_> = (0..p.graph().ids().len())
            .map(|i| {
                let spec = p.spec(i);
                let mut node = serde_json::json!({
                    "id": p.graph().ids()[i],
                    "node_type": spec.node_type,
                    "runtime": spec.implementation.as_str(),
                    "outputs": p.output_ports(i),
                    "latency": p.latency(i),
                    "inserted": i >= p.declared_nodes(),
                });
                if let Some(plugin) = spec.implementation.plugin() {
                    node["plugin"] = plugin.name.clone().into();
                }
                node
            })
            .collect();
        let manifest = serde_json::to_value(p.manifest()).map_err(|e| Error::Internal(e.to_string()))?;
        let doc = serde_json::json!({"runtime": p.runtime(), "inputs": p.input_names(), "nodes": nodes, "manifest": manifest});
        *out = into_raw_c_string(&doc.to_string());
        Ok(())
    })
}
