//! Random sequences of C-API session calls (push of random sizes, formats, channel
//! counts and rates; pull; flush; close; stats; a fresh session) on a few pipelines.
//! Every call must return a status; the counters must account for every chunk.
#![no_main]

use std::ptr;
use std::sync::OnceLock;

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use remotemedia::capi::{
    RmDataView, RmInput, RmOutputs, RmPipeline, RmSession, RmSessionOptions, RmSessionStats, RmStatus, rm_outputs_free, rm_session_close,
    rm_session_flush, rm_session_free, rm_session_new, rm_session_pull, rm_session_push, rm_session_push_inputs, rm_session_stats,
};

/// Pipelines the sessions run: every built-in audio node, alone and chained.
const MANIFESTS: [&str; 5] = [
    r#"{"version":"1","nodes":[{"id":"c","node_type":"FormatConverter","params":{"format":"f32"}},{"id":"m","node_type":"Downmix"},{"id":"r","node_type":"Resample","params":{"target_rate":16000}},{"id":"f","node_type":"Rechunk","params":{"frame_ms":30}},{"id":"v","node_type":"VAD","params":{"frame_ms":30}}],"connections":[{"from":"c","to":"m"},{"from":"m","to":"r"},{"from":"r","to":"f"},{"from":"f","to":"v"}]}"#,
    r#"{"version":"1","nodes":[{"id":"r","node_type":"Resample","params":{"target_rate":8000,"quality":"fast"}},{"id":"k","node_type":"Rechunk","params":{"frame_samples":7}}],"connections":[{"from":"r","to":"k"}]}"#,
    r#"{"version":"1","nodes":[{"id":"g","node_type":"Gain","params":{"gain_db":-6}},{"id":"i","node_type":"FormatConverter","params":{"format":"i16"}},{"id":"p","node_type":"PassThrough"}],"connections":[{"from":"g","to":"i"},{"from":"g","to":"p"}]}"#,
    r#"{"version":"1","nodes":[{"id":"v","node_type":"VAD","params":{"frame_ms":10}}]}"#,
    r#"{"version":"1","inputs":[{"name":"mic"},{"name":"far","sample_rate":16000}],"nodes":[{"id":"g","node_type":"Gain"},{"id":"m","node_type":"Mix","params":{"gains":[1.0,0.5,0.25]}}],"connections":[{"from":"$mic","to":"g"},{"from":"g","to":"m.in0"},{"from":"$far","to":"m.in1"},{"from":"$mic","to":"m.in2"}]}"#,
];

#[derive(Arbitrary, Debug)]
enum Call {
    Push { frames: u16, format: u8, channels: u8, rate: u32, fill: f32, input: Option<u8> },
    Pull { max_items: u8 },
    Flush,
    Close,
    Stats,
    Renew { capacity: u16, drop_oldest: bool },
}

#[derive(Arbitrary, Debug)]
struct Program {
    pipeline: u8,
    calls: Vec<Call>,
}

fn pipelines() -> &'static [usize] {
    static PIPELINES: OnceLock<Vec<usize>> = OnceLock::new();
    remotemedia_fuzz::pipelines(&PIPELINES, &MANIFESTS)
}

fn session(pipeline: *const RmPipeline, options: Option<&RmSessionOptions>) -> *mut RmSession {
    let mut s = ptr::null_mut();
    let status = unsafe { rm_session_new(pipeline, options.map_or(ptr::null(), |o| o as *const _), &mut s) };
    assert_eq!(status == RmStatus::Ok, !s.is_null());
    s
}

fn stats(s: *const RmSession) -> RmSessionStats {
    let mut out = RmSessionStats::default();
    assert_eq!(unsafe { rm_session_stats(s, &mut out) }, RmStatus::Ok);
    out
}

fn drain(s: *const RmSession, max_items: usize) {
    let mut out: *mut RmOutputs = ptr::null_mut();
    assert_eq!(unsafe { rm_session_pull(s, 0, max_items, &mut out) }, RmStatus::Ok);
    unsafe { rm_outputs_free(out) };
}

fuzz_target!(|program: Program| {
    let all = pipelines();
    let pipeline = all[program.pipeline as usize % all.len()] as *const RmPipeline;
    let mut s = session(pipeline, None);
    let (mut pushed_ok, mut closed) = (0u64, false);
    let mut buffer: Vec<u8> = Vec::new();
    for call in program.calls.into_iter().take(64) {
        match call {
            Call::Push { frames, format, channels, rate, fill, input } => {
                let channels = u32::from(channels % 9);
                let samples = usize::from(frames % 4096) * channels.max(1) as usize;
                let width = [4, 2, 4, 8, 1][usize::from(format % 5)];
                // u64-aligned storage; a wrong format number must be refused, not read.
                buffer.clear();
                buffer.resize(samples * width + 8, 0);
                let offset = buffer.as_ptr().align_offset(8);
                let data = &mut buffer[offset..offset + samples * width];
                if format % 5 == 0 {
                    for chunk in data.chunks_exact_mut(4) {
                        chunk.copy_from_slice(&fill.to_ne_bytes());
                    }
                }
                let (format, rate) = (u32::from(format % 5), rate % 400_000);
                let status = match input {
                    // a named input (of the pipelines that have them; others have input 0 only)
                    Some(input) => {
                        let view = RmDataView { kind: 0, data: data.as_ptr().cast(), len: samples, format, channels, sample_rate: rate };
                        let one = RmInput { input: usize::from(input % 4), data: view };
                        unsafe { rm_session_push_inputs(s, &one, 1, 0) }
                    }
                    None => unsafe { rm_session_push(s, data.as_ptr().cast(), samples, format, channels, rate, 0) },
                };
                pushed_ok += u64::from(status == RmStatus::Ok);
                if closed {
                    assert_ne!(status, RmStatus::Ok, "a closed session takes no push");
                }
            }
            Call::Pull { max_items } => drain(s, usize::from(max_items)),
            Call::Flush => {
                let _ = unsafe { rm_session_flush(s) };
            }
            Call::Close => {
                assert_eq!(unsafe { rm_session_close(s) }, RmStatus::Ok);
                closed = true;
            }
            Call::Stats => assert_eq!(stats(s).chunks_in, pushed_ok, "every accepted push is counted"),
            Call::Renew { capacity, drop_oldest } => {
                unsafe { rm_session_free(s) };
                let options = RmSessionOptions { capacity: usize::from(capacity), overflow: u32::from(drop_oldest) };
                s = session(pipeline, Some(&options));
                if s.is_null() {
                    s = session(pipeline, None);
                }
                (pushed_ok, closed) = (0, false);
            }
        }
    }
    drain(s, 0);
    assert_eq!(stats(s).queue_depth, 0, "a full pull empties the queue");
    unsafe { rm_session_free(s) };
});
