//! Zero copy in steady state, proven with the library's counting allocator: streaming
//! 20 ms chunks of 48 kHz int16 through FormatConverter → Resample → VAD makes no
//! payload-sized (>= 1 KiB) allocation per chunk, in any node or in the executor, once
//! warmed up (buffers come from the pool).

use std::time::Duration;

use remotemedia::Runtime;
use remotemedia::alloc::LARGE;
use remotemedia::data::{AudioBuffer, Data, SampleBuf, Samples};
use remotemedia::executor::{Overflow, Session};

fn large_allocations(session: &Session) -> u64 {
    let m = session.with_pipeline(|p| p.metrics_json()).unwrap();
    let nodes: u64 = m["nodes"].as_array().unwrap().iter().map(|n| n["memory"]["large_allocations"].as_u64().unwrap()).sum();
    nodes + m["pipeline"]["memory"]["large_allocations"].as_u64().unwrap()
}

#[test]
fn no_payload_sized_allocation_per_chunk() {
    let rt = Runtime::new().unwrap();
    let pipeline = rt
        .pipeline(
            r#"{"version":"1","nodes":[
                {"id":"f32","node_type":"FormatConverter","params":{"format":"f32"}},
                {"id":"rs","node_type":"Resample","params":{"target_rate":16000}},
                {"id":"vad","node_type":"VAD"}],
              "connections":[{"from":"f32","to":"rs"},{"from":"rs","to":"vad"}]}"#,
        )
        .unwrap();
    let session = Session::new(rt.tokio(), pipeline, 64, Overflow::Block);
    let audio: Vec<i16> = (0..48_000 * 30).map(|i| ((i as f32 * 0.03).sin() * 8000.0) as i16).collect();
    let mut chunks = audio.chunks_exact(960).cycle();
    let mut step = || {
        let chunk = chunks.next().unwrap();
        // The caller's memory is borrowed, as through the C ABI.
        let input = Data::Audio(AudioBuffer::new(Samples::I16(unsafe { SampleBuf::borrowed(chunk) }), 1, 48_000).unwrap());
        session.push(input, Duration::ZERO).unwrap();
        drop(session.pull(usize::MAX, Duration::ZERO));
    };
    for _ in 0..500 {
        step();
    }
    let warm = large_allocations(&session);
    assert!(warm > 0, "warm-up allocates the pooled buffers, so the counters do see large allocations");
    for _ in 0..1000 {
        step();
    }
    let steady = large_allocations(&session) - warm;
    assert_eq!(steady, 0, "{steady} allocations of >= {LARGE} bytes over 1000 steady-state chunks");
}
