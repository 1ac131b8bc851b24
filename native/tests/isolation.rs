//! Process isolation through the public API: crashes, aborts and hangs in an isolated
//! node fail its call and leave this process running; isolated nodes give the same
//! outputs as in-process ones; a bounded number of threads after many hangs.

use std::time::{Duration, Instant};

use remotemedia::data::{AudioBuffer, Data, SampleBuf, Samples};
use remotemedia::executor::{Output, Pipeline};
use remotemedia::{Error, Runtime};
use serde_json::{Value, json};

/// One test at a time: they count threads and processes, which the others would change.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn setup() -> (std::sync::MutexGuard<'static, ()>, std::sync::Arc<Runtime>) {
    let turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // SAFETY: set before any thread of this test reads it; every test sets the same value.
    unsafe { std::env::set_var("REMOTEMEDIA_NODE_HOST", env!("CARGO_BIN_EXE_remotemedia-node-host")) };
    (turn, Runtime::new().unwrap())
}

fn pipeline(rt: &Runtime, nodes: Value) -> remotemedia::Result<Pipeline> {
    let ids: Vec<String> = nodes.as_array().unwrap().iter().map(|n| n["id"].as_str().unwrap().to_string()).collect();
    let connections: Vec<Value> = ids.windows(2).map(|w| json!({"from": w[0], "to": w[1]})).collect();
    rt.pipeline(&json!({"version": "1", "nodes": nodes, "connections": connections}).to_string())
}

fn chunk(samples: Vec<i16>, channels: u16, rate: u32) -> Data {
    Data::Audio(AudioBuffer::new(Samples::I16(SampleBuf::owned(samples)), channels, rate).unwrap())
}

fn describe(outputs: &[Output]) -> Vec<String> {
    outputs
        .iter()
        .map(|o| match &o.data {
            Data::Audio(a) => match a.samples() {
                Samples::F32(s) => {
                    format!("{} {} {} {:?}", o.port, a.channels(), a.sample_rate(), s.iter().map(|x| x.to_bits()).collect::<Vec<_>>())
                }
                other => format!("{} {other:?}", o.port),
            },
            Data::Json(v) => format!("{} {v}", o.port),
        })
        .collect()
}

fn threads() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status.lines().find_map(|l| l.strip_prefix("Threads:")).unwrap().trim().parse().unwrap()
}

#[test]
fn isolated_nodes_give_the_same_outputs_as_in_process_ones() {
    let (_turn, rt) = setup();
    let nodes = |isolation: &str| {
        json!([
            {"id": "f32", "node_type": "FormatConverter", "params": {"format": "f32"}, "isolation": isolation},
            {"id": "mono", "node_type": "Downmix", "isolation": isolation},
            {"id": "rs", "node_type": "Resample", "params": {"target_rate": 16000}, "isolation": isolation},
            {"id": "vad", "node_type": "VAD", "isolation": isolation}
        ])
    };
    let mut a = pipeline(&rt, nodes("in_process")).unwrap();
    let mut b = pipeline(&rt, nodes("process")).unwrap();
    for i in 0..6 {
        let samples: Vec<i16> = (0..960 * 2).map(|k| (((k + i * 1920) as f32 * 0.05).sin() * 9000.0 * (i % 2) as f32) as i16).collect();
        let x = rt.run(&mut a, chunk(samples.clone(), 2, 48_000)).unwrap();
        let y = rt.run(&mut b, chunk(samples, 2, 48_000)).unwrap();
        assert_eq!(describe(&x), describe(&y), "chunk {i}");
    }
}

#[test]
fn a_crash_or_abort_fails_the_call_and_the_next_call_starts_a_new_process() {
    let (_turn, rt) = setup();
    for (mode, signal) in [("segfault", "SIGSEGV"), ("abort", "SIGABRT")] {
        let mut p = pipeline(
            &rt,
            json!([{"id": "f", "node_type": "Fault", "params": {"fail_first": 1, "mode": mode}, "isolation": "process",
                    "retry": {"max_retries": 0}}]),
        )
        .unwrap();
        for k in 0..2 {
            let err = rt.run(&mut p, chunk(vec![1, 2], 1, 16_000)).err().unwrap_or_else(|| panic!("{mode} run {k} succeeded"));
            assert!(matches!(&err, Error::Node { node_id, .. } if node_id == "f"), "{err}");
            assert!(err.to_string().contains(signal) && err.is_retryable(), "{err}");
        }
        let m = p.metrics_json();
        assert_eq!(m["nodes"][0]["errors"], 2, "{m}");
    }
    // a retry starts a new process, whose first call crashes again: the retries run out
    let mut p = pipeline(
        &rt,
        json!([{"id": "f", "node_type": "Fault", "params": {"fail_first": 1, "mode": "segfault"}, "isolation": "process",
                "retry": {"max_retries": 2, "base_ms": 0}}]),
    )
    .unwrap();
    assert!(rt.run(&mut p, chunk(vec![1], 1, 16_000)).is_err());
    assert_eq!(p.metrics_json()["nodes"][0]["retries"], 2);
}

#[test]
fn ending_the_process_is_refused_in_process_and_params_are_checked_in_the_child() {
    let (_turn, rt) = setup();
    let err = pipeline(&rt, json!([{"id": "f", "node_type": "Fault", "params": {"mode": "abort"}}])).err().unwrap();
    assert_eq!(err.path(), Some("nodes[0].params.mode"), "{err}");
    let err = pipeline(&rt, json!([{"id": "f", "node_type": "Fault", "params": {"mode": "bogus"}, "isolation": "process"}])).err().unwrap();
    assert_eq!(err.path(), Some("nodes[0].params.mode"), "{err}");
    let err = pipeline(&rt, json!([{"id": "f", "node_type": "Fault", "isolation": "elsewhere"}])).err().unwrap();
    assert_eq!(err.path(), Some("nodes[0].isolation"), "{err}");
}

#[test]
fn a_hang_times_out_the_process_is_killed_and_threads_stay_bounded() {
    let (_turn, rt) = setup();
    let healthy = |rt: &Runtime| {
        let mut p = pipeline(rt, json!([{"id": "ok", "node_type": "PassThrough", "timeout_ms": 1000}])).unwrap();
        let started = Instant::now();
        rt.run(&mut p, chunk(vec![3], 1, 16_000)).unwrap();
        assert!(started.elapsed() < Duration::from_millis(1000));
    };
    let before = threads();
    for isolation in ["process", "in_process"] {
        let started = Instant::now();
        for i in 0..1000 {
            let mut p = pipeline(
                &rt,
                json!([{"id": "h", "node_type": "Fault", "params": {"fail_first": 1, "mode": "hang", "hang_ms": 600_000},
                        "timeout_ms": 1, "isolation": isolation, "retry": {"max_retries": 0}}]),
            )
            .unwrap();
            let err = rt.run(&mut p, chunk(vec![1], 1, 16_000)).unwrap_err();
            // each pipeline's own call times out: other pipelines' hung calls do not count
            assert!(matches!(&err, Error::Timeout { .. }), "{isolation} {i}: {err}");
        }
        assert!(started.elapsed() < Duration::from_secs(60), "{isolation}: {:?}", started.elapsed());
        healthy(&rt);
        // in-process: each hung pipeline keeps the thread of its one call (bounded per node
        // by MAX_HUNG_CALLS); isolated: the hung process is killed, no thread is kept
        let most = if isolation == "in_process" { 1000 } else { 0 };
        assert!(threads() <= before + most + 8, "{isolation}: {} threads, {before} before", threads());
    }
}

#[test]
fn isolated_processes_are_bounded_per_process() {
    let (_turn, rt) = setup();
    let nodes: Vec<Value> = (0..remotemedia::budget::MAX_NODE_PROCESSES + 1)
        .map(|i| json!({"id": format!("n{i}"), "node_type": "PassThrough", "isolation": "process"}))
        .collect();
    let err = pipeline(&rt, Value::Array(nodes)).err().unwrap();
    assert!(matches!(&err, Error::Node { .. }) && err.to_string().contains("the most at once"), "{err}");
    // the children of the refused pipeline are gone with it
    let mut p = pipeline(&rt, json!([{"id": "a", "node_type": "PassThrough", "isolation": "process"}])).unwrap();
    assert_eq!(rt.run(&mut p, chunk(vec![5], 1, 8000)).unwrap().len(), 1);
}
