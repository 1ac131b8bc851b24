//! Any bytes as a manifest through the C API: `rm_pipeline_new` either builds a
//! pipeline (which then runs once on a short chunk) or fails with a status and a
//! message. A crash, an abort, a leak or a hang is a finding.
#![no_main]

use std::ffi::CStr;
use std::ptr;

use libfuzzer_sys::fuzz_target;
use remotemedia::capi::error::rm_last_error_message;
use remotemedia::capi::{RmOutputs, RmStatus, rm_outputs_free, rm_pipeline_free, rm_pipeline_new, rm_pipeline_run};
use remotemedia_fuzz::runtime;

fuzz_target!(|data: &[u8]| {
    let mut pipeline = ptr::null_mut();
    let status = unsafe { rm_pipeline_new(runtime(), data.as_ptr().cast(), data.len(), &mut pipeline) };
    if status != RmStatus::Ok {
        assert!(pipeline.is_null(), "no pipeline on failure");
        let message = unsafe { CStr::from_ptr(rm_last_error_message()) };
        assert!(!message.to_bytes().is_empty(), "a failure says why ({status:?})");
        return;
    }
    let samples = [0.25f32; 96];
    for (channels, rate) in [(1, 16_000), (2, 48_000)] {
        let mut out: *mut RmOutputs = ptr::null_mut();
        let status = unsafe { rm_pipeline_run(pipeline, samples.as_ptr().cast(), samples.len(), 0, channels, rate, &mut out) };
        if status == RmStatus::Ok {
            unsafe { rm_outputs_free(out) };
        }
    }
    unsafe { rm_pipeline_free(pipeline) };
});
