//! Any bytes as a model file: a pipeline whose `Model` node, or whose VAD with the
//! silero engine, names the file either builds (and then runs once on a short chunk)
//! or fails with a status and a message. A crash, an abort, a leak or a hang is a
//! finding. Seeds are small ONNX models made by tests/fuzz.sh.
#![no_main]

use std::ffi::CStr;
use std::ptr;

use libfuzzer_sys::fuzz_target;
use remotemedia::capi::error::rm_last_error_message;
use remotemedia::capi::{RmOutputs, RmStatus, rm_outputs_free, rm_pipeline_free, rm_pipeline_new, rm_pipeline_run};
use remotemedia_fuzz::runtime;

fuzz_target!(|data: &[u8]| {
    let path = std::env::temp_dir().join(format!("remotemedia-fuzz-model-{}.onnx", std::process::id()));
    std::fs::write(&path, data).expect("the temporary directory is writable");
    let path = path.to_str().expect("a UTF-8 temporary path");
    let nodes = [
        format!(r#"{{"id":"m","node_type":"Model","params":{{"model_path":"{path}","window":16}}}}"#),
        format!(r#"{{"id":"v","node_type":"VAD","params":{{"engine":"silero","model_path":"{path}"}}}}"#),
    ];
    for node in nodes {
        let manifest = format!(r#"{{"version":"1","nodes":[{node}]}}"#);
        let mut pipeline = ptr::null_mut();
        let status = unsafe { rm_pipeline_new(runtime(), manifest.as_ptr().cast(), manifest.len(), &mut pipeline) };
        if status != RmStatus::Ok {
            assert!(pipeline.is_null(), "no pipeline on failure");
            let message = unsafe { CStr::from_ptr(rm_last_error_message()) };
            assert!(!message.to_bytes().is_empty(), "a failure says why ({status:?})");
            continue;
        }
        let samples = [0.25f32; 600];
        let mut out: *mut RmOutputs = ptr::null_mut();
        let status = unsafe { rm_pipeline_run(pipeline, samples.as_ptr().cast(), samples.len(), 0, 1, 16_000, &mut out) };
        if status == RmStatus::Ok {
            unsafe { rm_outputs_free(out) };
        }
        unsafe { rm_pipeline_free(pipeline) };
    }
});
