//! Any bytes as a manifest through the C API: `rm_pipeline_new` either builds a
//! pipeline (which then runs once on a short chunk) or fails with a status and a
//! message. A crash, an abort, a leak or a hang is a finding.
#![no_main]

use libfuzzer_sys::fuzz_target;
use remotemedia_fuzz::build_and_run;

fuzz_target!(|data: &[u8]| {
    build_and_run(data, &[0.25f32; 96], &[(1, 16_000), (2, 48_000)]);
});
