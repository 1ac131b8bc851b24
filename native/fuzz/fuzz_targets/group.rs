//! Random sequences of C-API session-group calls (open, close, push of random
//! sessions, sizes, formats, channel counts and rates, push_block, flush, pull with
//! any flags, stats) on a few pipelines. Every call must return a status, unknown
//! sessions must be refused, and the counters must follow the calls.
#![no_main]

use std::ptr;
use std::sync::OnceLock;

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use remotemedia::capi::{
    RmDataView, RmGroup, RmGroupChunk, RmGroupOutputs, RmGroupStats, RmPipeline, RmStatus, rm_group_close, rm_group_flush, rm_group_free,
    rm_group_new, rm_group_open, rm_group_outputs_free, rm_group_pull, rm_group_push, rm_group_push_block, rm_group_stats,
};

/// Pipelines the sessions run: converters and the spectral VAD (whose frames a pull
/// may take as a table), a chain with a resampler, and two named inputs into a Mix.
const MANIFESTS: [&str; 3] = [
    r#"{"version":"1","nodes":[{"id":"c","node_type":"FormatConverter","params":{"format":"f32"}},{"id":"m","node_type":"Downmix"},{"id":"v","node_type":"VAD","params":{"frame_ms":10}}],"connections":[{"from":"c","to":"m"},{"from":"m","to":"v"}]}"#,
    r#"{"version":"1","nodes":[{"id":"r","node_type":"Resample","params":{"target_rate":8000,"quality":"fast"}},{"id":"k","node_type":"Rechunk","params":{"frame_samples":7}}],"connections":[{"from":"r","to":"k"}]}"#,
    r#"{"version":"1","inputs":[{"name":"mic"},{"name":"far","sample_rate":16000}],"nodes":[{"id":"m","node_type":"Mix","params":{"gains":[1.0,0.5]}}],"connections":[{"from":"$mic","to":"m.in0"},{"from":"$far","to":"m.in1"}]}"#,
];

#[derive(Arbitrary, Debug)]
struct Chunk {
    session: u8,
    input: u8,
    frames: u16,
    format: u8,
    channels: u8,
    rate: u32,
}

#[derive(Arbitrary, Debug)]
enum Call {
    Open,
    Close { session: u8 },
    Push { chunks: Vec<Chunk> },
    PushBlock { sessions: Vec<u8>, frames: u16, format: u8, channels: u8, rate: u32 },
    Flush { sessions: Vec<u8> },
    Pull { max: u8, flags: u8 },
}

#[derive(Arbitrary, Debug)]
struct Program {
    pipeline: u8,
    capacity: u8,
    workers: u8,
    calls: Vec<Call>,
}

fn pipelines() -> &'static [usize] {
    static PIPELINES: OnceLock<Vec<usize>> = OnceLock::new();
    remotemedia_fuzz::pipelines(&PIPELINES, &MANIFESTS)
}

fn stats(g: *const RmGroup) -> RmGroupStats {
    let mut out = RmGroupStats::default();
    assert_eq!(unsafe { rm_group_stats(g, &mut out) }, RmStatus::Ok);
    out
}

/// u64-aligned zeroed bytes for `samples` samples of format `format` (0..=4; 4 is not one).
fn samples(buffer: &mut Vec<u64>, samples: usize, format: u32) -> *const std::ffi::c_void {
    let width = [4, 2, 4, 8, 1][format as usize];
    buffer.clear();
    buffer.resize((samples * width).div_ceil(8) + 1, 0);
    buffer.as_ptr().cast()
}

fuzz_target!(|program: Program| {
    let all = pipelines();
    let pipeline = all[program.pipeline as usize % all.len()] as *const RmPipeline;
    let mut g = ptr::null_mut();
    let workers = u32::from(program.workers % 4);
    assert_eq!(unsafe { rm_group_new(pipeline, usize::from(program.capacity), workers, &mut g) }, RmStatus::Ok);
    let mut open: Vec<u64> = Vec::new();
    let mut ticks = 0;
    let mut buffer: Vec<u64> = Vec::new();
    // a session named by the program: one of the open ones, or (past them) an unknown id
    let pick = |open: &[u64], k: u8| open.get(usize::from(k) % (open.len() + 1)).copied().unwrap_or(1000 + u64::from(k));
    for call in program.calls.into_iter().take(48) {
        match call {
            Call::Open => {
                let mut id = 0;
                assert_eq!(unsafe { rm_group_open(g, &mut id) }, RmStatus::Ok);
                open.push(id);
            }
            Call::Close { session } => {
                let id = pick(&open, session);
                let status = unsafe { rm_group_close(g, id) };
                assert_eq!(status == RmStatus::Ok, open.contains(&id), "close of {id}");
                open.retain(|&s| s != id);
            }
            Call::Push { chunks } => {
                let chunks: Vec<_> = chunks.into_iter().take(8).collect();
                let mut buffers: Vec<Vec<u64>> = vec![Vec::new(); chunks.len()];
                let views: Vec<RmGroupChunk> = chunks
                    .iter()
                    .zip(&mut buffers)
                    .map(|(c, buffer)| {
                        let channels = u32::from(c.channels % 4);
                        let n = usize::from(c.frames % 2048) * channels.max(1) as usize;
                        let format = u32::from(c.format % 5);
                        let data = samples(buffer, n, format);
                        let view = RmDataView { kind: 0, data, len: n, format, channels, sample_rate: c.rate % 200_000 };
                        RmGroupChunk { session: pick(&open, c.session), input: usize::from(c.input % 3), data: view }
                    })
                    .collect();
                let mut statuses = vec![RmStatus::Internal; views.len()];
                let status = unsafe { rm_group_push(g, views.as_ptr(), views.len(), statuses.as_mut_ptr()) };
                ticks += 1;
                assert_eq!(status == RmStatus::Ok, statuses.iter().all(|&s| s == RmStatus::Ok), "{statuses:?}");
                for (view, s) in views.iter().zip(&statuses) {
                    if !open.contains(&view.session) {
                        assert_ne!(*s, RmStatus::Ok, "an unknown session's chunk is refused");
                    }
                }
            }
            Call::PushBlock { sessions, frames, format, channels, rate } => {
                let ids: Vec<u64> = sessions.into_iter().take(8).map(|k| pick(&open, k)).collect();
                let channels = u32::from(channels % 4);
                let per = usize::from(frames % 1024) * channels.max(1) as usize;
                let format = u32::from(format % 5);
                let data = samples(&mut buffer, per * ids.len(), format);
                let mut statuses = vec![RmStatus::Internal; ids.len()];
                let status = unsafe {
                    rm_group_push_block(g, ids.as_ptr(), ids.len(), data, per, format, channels, rate % 200_000, statuses.as_mut_ptr())
                };
                // a format that is none is refused before the tick
                ticks += u64::from(format < 4);
                if status == RmStatus::Ok {
                    assert!(statuses.iter().all(|&s| s == RmStatus::Ok));
                }
            }
            Call::Flush { sessions } => {
                let ids: Vec<u64> = sessions.into_iter().take(8).map(|k| pick(&open, k)).collect();
                let status = unsafe { rm_group_flush(g, ids.as_ptr(), ids.len(), ptr::null_mut()) };
                if ids.iter().any(|id| !open.contains(id)) {
                    assert_ne!(status, RmStatus::Ok, "an unknown session's flush is refused");
                }
            }
            Call::Pull { max, flags } => {
                let mut out: *mut RmGroupOutputs = ptr::null_mut();
                let status = unsafe { rm_group_pull(g, usize::from(max), u32::from(flags % 4), &mut out) };
                assert_eq!(status == RmStatus::Ok, flags % 4 < 2, "pull flags {flags}");
                unsafe { rm_group_outputs_free(out) };
            }
        }
        let s = stats(g);
        assert_eq!((s.sessions, s.ticks), (open.len(), ticks), "the counters follow the calls");
    }
    unsafe { rm_group_free(g) };
});
