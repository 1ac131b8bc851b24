//! Any bytes as a model file: a pipeline whose `Model` node, or whose VAD with the
//! silero engine, names the file either builds (and then runs once on a short chunk)
//! or fails with a status and a message. A crash, an abort, a leak or a hang is a
//! finding. Seeds are small ONNX models made by tests/fuzz.sh.
#![no_main]

use libfuzzer_sys::fuzz_target;
use remotemedia_fuzz::build_and_run;

fuzz_target!(|data: &[u8]| {
    let path = std::env::temp_dir().join(format!("remotemedia-fuzz-model-{}.onnx", std::process::id()));
    std::fs::write(&path, data).expect("the temporary directory is writable");
    let path = path.to_str().expect("a UTF-8 temporary path");
    let nodes = [
        format!(r#"{{"id":"m","node_type":"Model","params":{{"model_path":"{path}","window":16}}}}"#),
        format!(r#"{{"id":"v","node_type":"VAD","params":{{"engine":"silero","model_path":"{path}"}}}}"#),
    ];
    for node in nodes {
        build_and_run(format!(r#"{{"version":"1","nodes":[{node}]}}"#).as_bytes(), &[0.25f32; 600], &[(1, 16_000)]);
    }
});
