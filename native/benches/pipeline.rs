//! Overhead of one pipeline run on a tiny (480-sample) input, against the node's own
//! work; and streaming VAD (30 ms per push and pull) against one run over the same audio.
//!
//! `cargo bench -p remotemedia --bench pipeline`

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use remotemedia::Runtime;
use remotemedia::capi::{
    RmOutputs, rm_outputs_free, rm_pipeline_new, rm_pipeline_run, rm_runtime_new, rm_session_flush, rm_session_free, rm_session_new,
    rm_session_pull, rm_session_push,
};
use remotemedia::data::{AudioBuffer, Data, SampleBuf, Samples};
use remotemedia::nodes::{Emitter, Registry};

fn manifest(node_type: &str) -> String {
    format!(r#"{{"version":"1","nodes":[{{"id":"n","node_type":"{node_type}","params":{{}}}}]}}"#)
}

fn input() -> Vec<f32> {
    (0..480).map(|i| (i as f32 * 0.01).sin()).collect()
}

fn bench(c: &mut Criterion) {
    let samples = input();
    let mut group = c.benchmark_group("run_480_samples");

    // The node's own work, called directly.
    let registry = Registry::builtin();
    for node_type in ["PassThrough", "Gain"] {
        let spec = registry.resolve(node_type, Default::default()).unwrap();
        let mut node = (spec.create)(&Default::default()).unwrap();
        let audio = Data::Audio(AudioBuffer::new(Samples::F32(SampleBuf::owned(samples.clone())), 1, 16000).unwrap());
        let mut emitter = Emitter::default();
        group.bench_function(format!("node_only/{node_type}"), |b| {
            b.iter(|| {
                node.process(black_box(&audio), &mut emitter).unwrap();
                black_box(emitter.take());
            })
        });
    }

    // A whole run through the Rust API, with metrics on (the default) and off.
    let rt = Runtime::new().unwrap();
    for node_type in ["PassThrough", "Gain"] {
        let mut off = rt.pipeline(&manifest(node_type)).unwrap();
        off.set_metrics(false);
        group.bench_function(format!("runtime_run_metrics_off/{node_type}"), |b| {
            b.iter(|| {
                let input = Data::Audio(AudioBuffer::new(Samples::F32(unsafe { SampleBuf::borrowed(&samples) }), 1, 16000).unwrap());
                black_box(rt.run(&mut off, input).unwrap());
            })
        });
        let mut pipeline = rt.pipeline(&manifest(node_type)).unwrap();
        group.bench_function(format!("runtime_run/{node_type}"), |b| {
            b.iter(|| {
                let input = Data::Audio(AudioBuffer::new(Samples::F32(unsafe { SampleBuf::borrowed(&samples) }), 1, 16000).unwrap());
                black_box(rt.run(&mut pipeline, input).unwrap());
            })
        });
    }

    // A whole run through the C ABI, including creating and freeing the outputs.
    unsafe {
        let mut crt = std::ptr::null_mut();
        rm_runtime_new(&mut crt);
        for node_type in ["PassThrough", "Gain"] {
            let m = manifest(node_type);
            let mut p = std::ptr::null_mut();
            rm_pipeline_new(crt, m.as_ptr().cast(), m.len(), &mut p);
            group.bench_function(format!("c_abi_run/{node_type}"), |b| {
                b.iter(|| {
                    let mut out: *mut RmOutputs = std::ptr::null_mut();
                    rm_pipeline_run(p, samples.as_ptr().cast(), samples.len(), 0, 1, 16000, &mut out);
                    rm_outputs_free(black_box(out));
                })
            });
        }
    }
    group.finish();

    // What metrics add to one node call: two clock reads, the histogram and the counters.
    let mut metrics = remotemedia::metrics::NodeMetrics::default();
    let item = Data::Audio(AudioBuffer::new(Samples::F32(SampleBuf::owned(samples.clone())), 1, 16000).unwrap());
    let outputs = [item.clone()];
    c.bench_function("metrics_per_node_call", |b| {
        b.iter(|| {
            let started = std::time::Instant::now();
            metrics.input(black_box(&item));
            metrics.time.record(started.elapsed());
            metrics.calls += 1;
            metrics.outputs(black_box(&outputs).iter());
        })
    });
}

/// VAD over 10 s of 16 kHz noise through the C ABI: one run, against a session fed
/// 480 samples (30 ms) per push with a pull after each. The ratio is the cost of
/// streaming in a native host, without any binding's per-call cost.
fn vad_streaming(c: &mut Criterion) {
    let mut state = 1u32;
    let audio: Vec<f32> = (0..160_000)
        .map(|_| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            ((state >> 8) as f32 / (1u32 << 24) as f32 - 0.5) * 0.2
        })
        .collect();
    let mut group = c.benchmark_group("vad_10s_16k");
    group.sample_size(20);
    unsafe {
        let mut rt = std::ptr::null_mut();
        rm_runtime_new(&mut rt);
        let m = manifest("VAD");
        let mut p = std::ptr::null_mut();
        rm_pipeline_new(rt, m.as_ptr().cast(), m.len(), &mut p);
        group.bench_function("one_shot", |b| {
            b.iter(|| {
                let mut out: *mut RmOutputs = std::ptr::null_mut();
                rm_pipeline_run(p, audio.as_ptr().cast(), audio.len(), 0, 1, 16000, &mut out);
                rm_outputs_free(black_box(out));
            })
        });
        group.bench_function("streamed_30ms", |b| {
            b.iter(|| {
                let mut s = std::ptr::null_mut();
                rm_session_new(p, std::ptr::null(), &mut s);
                let mut out: *mut RmOutputs = std::ptr::null_mut();
                for chunk in audio.chunks(480) {
                    rm_session_push(s, chunk.as_ptr().cast(), chunk.len(), 0, 1, 16000, 1000);
                    rm_session_pull(s, 0, 0, &mut out);
                    rm_outputs_free(black_box(out));
                }
                rm_session_flush(s);
                rm_session_pull(s, 0, 0, &mut out);
                rm_outputs_free(out);
                rm_session_free(s);
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench, vad_streaming);
criterion_main!(benches);
