//! The audio nodes' own work, called directly (no executor, no FFI).
//!
//! `cargo bench -p remotemedia --bench audio_nodes`

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use remotemedia::data::{AudioBuffer, Data, SampleBuf, Samples};
use remotemedia::nodes::{Emitter, Node, Registry};
use serde_json::{Map, Value, json};

fn node(node_type: &str, params: Value) -> Box<dyn Node> {
    let spec = Registry::builtin().resolve(node_type, Default::default()).unwrap();
    let params: Map<String, Value> = params.as_object().unwrap().clone();
    (spec.create)(&params).unwrap_or_else(|e| panic!("{node_type}: {e:?}"))
}

fn f32_audio(samples: Vec<f32>, rate: u32) -> Data {
    Data::Audio(AudioBuffer::new(Samples::F32(SampleBuf::owned(samples)), 1, rate).unwrap())
}

/// Deterministic speech-band noise in [-0.5, 0.5).
fn signal(n: usize) -> Vec<f32> {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let mut e = Emitter::default();

    let mut group = c.benchmark_group("format_converter");
    let n = 1 << 20;
    let x = f32_audio(signal(n), 48_000);
    let xi = {
        let mut conv = node("FormatConverter", json!({"format": "i16"}));
        conv.process(&x, &mut e).unwrap();
        e.take().pop().unwrap().1
    };
    group.throughput(Throughput::Elements(n as u64));
    let mut to_i16 = node("FormatConverter", json!({"format": "i16"}));
    group.bench_function("f32_to_i16", |b| {
        b.iter(|| {
            to_i16.process(black_box(&x), &mut e).unwrap();
            black_box(e.take())
        })
    });
    let mut to_f32 = node("FormatConverter", json!({"format": "f32"}));
    group.bench_function("i16_to_f32", |b| {
        b.iter(|| {
            to_f32.process(black_box(&xi), &mut e).unwrap();
            black_box(e.take())
        })
    });
    let src = signal(n);
    let mut dst = vec![0f32; n];
    group.bench_function("memcpy_f32", |b| b.iter(|| dst.copy_from_slice(black_box(&src))));
    group.bench_function("memcpy_f32_into_new_vec", |b| b.iter(|| black_box(black_box(&src).to_vec())));
    group.finish();

    let mut group = c.benchmark_group("resample_48k_to_16k_1s");
    let second = f32_audio(signal(48_000), 48_000);
    group.throughput(Throughput::Elements(48_000));
    for quality in ["fast", "balanced", "high"] {
        let mut rs = node("Resample", json!({"target_rate": 16000, "quality": quality}));
        group.bench_with_input(BenchmarkId::from_parameter(quality), &second, |b, input| {
            b.iter(|| {
                rs.process(black_box(input), &mut e).unwrap();
                black_box(e.take())
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("vad_16k_30ms");
    let frames: Vec<Data> = signal(480 * 100).chunks(480).map(|f| f32_audio(f.to_vec(), 16_000)).collect();
    let mut vad = node("VAD", json!({}));
    let mut i = 0;
    group.bench_function("one_frame_per_call", |b| {
        b.iter(|| {
            vad.process(black_box(&frames[i % frames.len()]), &mut e).unwrap();
            i += 1;
            black_box(e.take())
        })
    });
    let long = f32_audio(signal(480 * 100), 16_000);
    group.throughput(Throughput::Elements(100));
    group.bench_function("100_frames_per_call", |b| {
        b.iter(|| {
            vad.process(black_box(&long), &mut e).unwrap();
            black_box(e.take())
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
