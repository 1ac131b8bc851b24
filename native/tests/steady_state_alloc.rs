//! Zero copy in steady state, proven with a counting allocator: streaming 20 ms chunks
//! of 48 kHz int16 through FormatConverter → Resample → VAD makes no payload-sized
//! allocation per chunk once warmed up (buffers come from the pool).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use remotemedia::Runtime;
use remotemedia::data::{AudioBuffer, Data, SampleBuf, Samples};
use remotemedia::executor::{Overflow, Session};

/// Smallest allocation counted: below a 20 ms chunk of any format (1920 bytes of i16).
const PAYLOAD: usize = 1024;

struct Counting;
static COUNTING: AtomicBool = AtomicBool::new(false);
static LARGE: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() >= PAYLOAD && COUNTING.load(Ordering::Relaxed) {
            LARGE.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size >= PAYLOAD && COUNTING.load(Ordering::Relaxed) {
            LARGE.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

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
    let session = Session::new(rt, pipeline, 64, Overflow::Block);
    let audio: Vec<i16> = (0..48_000 * 30).map(|i| ((i as f32 * 0.03).sin() * 8000.0) as i16).collect();
    let mut chunks = audio.chunks_exact(960).cycle();
    let mut step = |counting: bool| {
        let chunk = chunks.next().unwrap();
        // The caller's memory is borrowed, as through the C ABI.
        let input = Data::Audio(AudioBuffer::new(Samples::I16(unsafe { SampleBuf::borrowed(chunk) }), 1, 48_000).unwrap());
        COUNTING.store(counting, Ordering::Relaxed);
        session.push(input, Duration::ZERO).unwrap();
        let outputs = session.pull(usize::MAX, Duration::ZERO);
        drop(outputs);
        COUNTING.store(false, Ordering::Relaxed);
    };
    for _ in 0..500 {
        step(false);
    }
    for _ in 0..1000 {
        step(true);
    }
    let large = LARGE.load(Ordering::Relaxed);
    assert_eq!(large, 0, "{large} allocations of >= {PAYLOAD} bytes over 1000 steady-state chunks");
}
