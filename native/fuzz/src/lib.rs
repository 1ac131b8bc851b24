//! What the fuzz targets share: one runtime for the whole run, as a host keeps one,
//! and building and running a pipeline through the C API.

use std::ffi::CStr;
use std::ptr;
use std::sync::OnceLock;

use remotemedia::capi::error::rm_last_error_message;
use remotemedia::capi::{
    RmDataView, RmInput, RmOutputs, RmRuntime, RmStatus, rm_outputs_free, rm_pipeline_free, rm_pipeline_input_count, rm_pipeline_new,
    rm_pipeline_run, rm_pipeline_run_inputs, rm_runtime_new,
};

/// The process's runtime, made on first use and never freed (reachable, so no leak).
pub fn runtime() -> *const RmRuntime {
    static RUNTIME: OnceLock<usize> = OnceLock::new();
    *RUNTIME.get_or_init(|| {
        let mut rt = ptr::null_mut();
        assert_eq!(unsafe { rm_runtime_new(&mut rt) }, RmStatus::Ok);
        rt as usize
    }) as *const RmRuntime
}

/// The pipelines of `manifests`, built once (in `cache`) through the C API and never
/// freed (reachable, so no leak), as addresses.
pub fn pipelines<'a>(cache: &'a OnceLock<Vec<usize>>, manifests: &[&str]) -> &'a [usize] {
    cache.get_or_init(|| {
        manifests
            .iter()
            .map(|m| {
                let mut p = ptr::null_mut();
                assert_eq!(unsafe { rm_pipeline_new(runtime(), m.as_ptr().cast(), m.len(), &mut p) }, RmStatus::Ok, "{m}");
                p as usize
            })
            .collect()
    })
}

/// Builds a pipeline from `manifest` through the C API and runs it once per
/// (channels, rate) on `samples` (f32), then once more with `samples` for every input
/// at once (its named inputs, if it has them), then frees it; or checks that the
/// failure left no pipeline and says why.
pub fn build_and_run(manifest: &[u8], samples: &[f32], layouts: &[(u32, u32)]) {
    let mut pipeline = ptr::null_mut();
    let status = unsafe { rm_pipeline_new(runtime(), manifest.as_ptr().cast(), manifest.len(), &mut pipeline) };
    if status != RmStatus::Ok {
        assert!(pipeline.is_null(), "no pipeline on failure");
        let message = unsafe { CStr::from_ptr(rm_last_error_message()) };
        assert!(!message.to_bytes().is_empty(), "a failure says why ({status:?})");
        return;
    }
    for &(channels, rate) in layouts {
        let mut out: *mut RmOutputs = ptr::null_mut();
        let status = unsafe { rm_pipeline_run(pipeline, samples.as_ptr().cast(), samples.len(), 0, channels, rate, &mut out) };
        if status == RmStatus::Ok {
            unsafe { rm_outputs_free(out) };
        }
    }
    let mut count = 0;
    assert_eq!(unsafe { rm_pipeline_input_count(pipeline, &mut count) }, RmStatus::Ok);
    let view = RmDataView { kind: 0, data: samples.as_ptr().cast(), len: samples.len(), format: 0, channels: 1, sample_rate: 16_000 };
    // every input once, and one index past them (refused)
    let inputs: Vec<RmInput> = (0..=count).map(|input| RmInput { input, data: view }).collect();
    for n in [count, count + 1] {
        let mut out: *mut RmOutputs = ptr::null_mut();
        let status = unsafe { rm_pipeline_run_inputs(pipeline, inputs.as_ptr(), n, &mut out) };
        if status == RmStatus::Ok {
            unsafe { rm_outputs_free(out) };
        }
        assert!(n == count || status != RmStatus::Ok, "an unknown input is refused");
    }
    unsafe { rm_pipeline_free(pipeline) };
}
