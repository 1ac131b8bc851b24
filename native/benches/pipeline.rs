//! Overhead of one pipeline run on a tiny (480-sample) input, against the node's own work.
//!
//! `cargo bench -p remotemedia --bench pipeline`

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use remotemedia::Runtime;
use remotemedia::capi::{RmOutputs, rm_outputs_free, rm_pipeline_new, rm_pipeline_run, rm_runtime_new};
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

criterion_group!(benches, bench);
criterion_main!(benches);
