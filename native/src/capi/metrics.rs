//! Metrics export: JSON (see docs/metrics.schema.json) or Prometheus text.

use std::ffi::c_char;

use serde_json::Value;

use crate::error::Error;
use crate::ffi::into_raw_c_string;
use crate::metrics::to_prometheus;

use super::pipeline::RmPipeline;
use super::session::RmSession;
use super::{RmStatus, guard};
use crate::ffi::{arg, arg_mut, str_len_arg};

/// Output formats of the metrics functions.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RmMetricsFormat {
    /// JSON as described by docs/metrics.schema.json.
    Json = 0,
    /// Prometheus text exposition format.
    Prometheus = 1,
}

fn render(metrics: &Value, format: u32) -> crate::Result<*mut c_char> {
    let text = match format {
        f if f == RmMetricsFormat::Json as u32 => metrics.to_string(),
        f if f == RmMetricsFormat::Prometheus as u32 => to_prometheus(metrics),
        other => return Err(Error::InvalidArgument(format!("unknown metrics format {other}"))),
    };
    Ok(into_raw_c_string(&text))
}

/// The metrics of a pipeline's one-shot runs, in `format` (an `RmMetricsFormat`).
///
/// On success `*out` receives a NUL-terminated string the caller owns and must release
/// with `rm_string_free`. Any thread; it waits for a run in progress to finish.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rm_pipeline_metrics(pipeline: *const RmPipeline, format: u32, out: *mut *mut c_char) -> RmStatus {
    guard(|| {
        let pipeline = unsafe { arg(pipeline, "pipeline") }?;
        let out = unsafe { arg_mut(out, "out") }?;
        *out = render(&pipeline.metrics_json()?, format)?;
        Ok(())
    })
}

/// The metrics of a session (its nodes, plus a "session" object with the queue
/// counters), in `format` (an `RmMetricsFormat`). Readable at any time, from any
/// thread, while other threads push and pull.
///
/// On success `*out` receives a NUL-terminated string the caller owns and must release
/// with `rm_string_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rm_session_metrics(session: *const RmSession, format: u32, out: *mut *mut c_char) -> RmStatus {
    guard(|| {
        let session = unsafe { arg(session, "session") }?;
        let out = unsafe { arg_mut(out, "out") }?;
        *out = render(&session.metrics_json()?, format)?;
        Ok(())
    })
}

/// Converts metrics JSON (`len` bytes, borrowed for the call; shaped as
/// `rm_pipeline_metrics` gives it, else `RM_STATUS_INVALID_ARGUMENT`) to Prometheus text.
/// On success `*out` receives a string the caller releases with `rm_string_free`.
/// Any thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rm_metrics_to_prometheus(json: *const c_char, len: usize, out: *mut *mut c_char) -> RmStatus {
    guard(|| {
        let text = unsafe { str_len_arg(json, len, "json") }?;
        let out = unsafe { arg_mut(out, "out") }?;
        let value: Value = serde_json::from_str(text).map_err(|e| Error::InvalidArgument(format!("metrics JSON: {e}")))?;
        if !(value["pipeline"].is_object() && value["nodes"].is_array()) {
            return Err(Error::InvalidArgument(
                "metrics JSON must be an object with a \"pipeline\" object and a \"nodes\" array, as rm_pipeline_metrics gives".into(),
            ));
        }
        *out = render(&value, RmMetricsFormat::Prometheus as u32)?;
        Ok(())
    })
}
