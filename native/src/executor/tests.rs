use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::json;

use super::*;
use crate::data::{AudioBuffer, SampleBuf, Samples};
use crate::error::NodeFailure;
use crate::nodes::{Emitter, Node};
use crate::nodes::{Implementation, ParamError};
use crate::runtime::Runtime;

fn mono(samples: Vec<f32>) -> Data {
    Data::Audio(AudioBuffer::new(Samples::F32(SampleBuf::owned(samples)), 1, 16000).unwrap())
}

fn f32s(d: &Data) -> Vec<f32> {
    match d {
        Data::Audio(a) => match a.samples() {
            Samples::F32(b) => b.to_vec(),
            _ => panic!("not f32"),
        },
        Data::Json(_) => panic!("not audio"),
    }
}

/// A test node that tags audio with its own constant and can fail or panic on demand.
struct Probe {
    add: f32,
    fail: Option<&'static str>,
    calls: Arc<AtomicUsize>,
}

impl Node for Probe {
    fn process(&mut self, input: &Data, out: &mut Emitter) -> std::result::Result<(), NodeFailure> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        match self.fail {
            Some("panic") => panic!("probe exploded"),
            Some("error") => return Err(NodeFailure::transient("probe failed")),
            _ => {}
        }
        let v: Vec<f32> = f32s(input).iter().map(|x| x + self.add).collect();
        out.emit(mono(v));
        out.emit_to(1, Data::Json(Arc::new(json!({"add": self.add}))));
        Ok(())
    }
    fn flush(&mut self, out: &mut Emitter) -> std::result::Result<(), NodeFailure> {
        out.emit_to(1, Data::Json(Arc::new(json!({"flushed": true}))));
        Ok(())
    }
}

fn runtime_with_probe(calls: Arc<AtomicUsize>) -> Arc<Runtime> {
    let rt = Runtime::new().unwrap();
    rt.register(NodeSpec {
        node_type: "Probe".into(),
        description: "test".into(),
        params_schema: json!({}),
        outputs: vec!["out".into(), "events".into()],
        implementation: Implementation::Native,
        prefers_isolation: false,
        caps: None,
        latency: None,
        create: Arc::new(move |p| {
            let add = p.get("add").and_then(|v| v.as_f64()).unwrap_or(0.0) as f32;
            if add < 0.0 {
                return Err(ParamError::new("add", "must be >= 0"));
            }
            let fail = match p.get("fail").and_then(|v| v.as_str()) {
                Some("panic") => Some("panic"),
                Some("error") => Some("error"),
                _ => None,
            };
            Ok(Box::new(Probe { add, fail, calls: calls.clone() }))
        }),
    });
    rt
}

fn manifest(nodes: serde_json::Value, connections: serde_json::Value) -> String {
    json!({"version": "1", "nodes": nodes, "connections": connections}).to_string()
}

#[test]
fn chain_runs_in_dependency_order() {
    let rt = runtime_with_probe(Default::default());
    let m = manifest(
        json!([{"id": "b", "node_type": "Probe", "params": {"add": 10}},
               {"id": "a", "node_type": "Probe", "params": {"add": 1}}]),
        json!([{"from": "a", "to": "b"}]),
    );
    let mut p = rt.pipeline(&m).unwrap();
    let out = rt.run(&mut p, mono(vec![0.0, 1.0])).unwrap();
    let audio: Vec<_> = out.iter().filter(|o| o.port == 0).collect();
    assert_eq!(audio.len(), 1);
    assert_eq!(p.graph().ids()[audio[0].node], "b");
    assert_eq!(f32s(&audio[0].data), vec![11.0, 12.0]);
    // b's events port is a sink port too: one event per process plus the flush.
    let events = out.iter().filter(|o| o.port == 1 && o.node == 0).count();
    assert_eq!(events, 2);
}

#[test]
fn fan_out_and_fan_in() {
    let rt = runtime_with_probe(Default::default());
    let m = manifest(
        json!([{"id": "src", "node_type": "PassThrough"},
               {"id": "x", "node_type": "Probe", "params": {"add": 1}},
               {"id": "y", "node_type": "Probe", "params": {"add": 2}},
               {"id": "join", "node_type": "PassThrough"}]),
        json!([{"from": "src", "to": "x"}, {"from": "src", "to": "y"},
               {"from": "x", "to": "join"}, {"from": "y", "to": "join"}]),
    );
    let mut p = rt.pipeline(&m).unwrap();
    let out = rt.run(&mut p, mono(vec![5.0])).unwrap();
    let joined: Vec<Vec<f32>> = out.iter().filter(|o| o.node == 3).map(|o| f32s(&o.data)).collect();
    assert_eq!(joined, vec![vec![6.0], vec![7.0]]);
}

#[test]
fn sink_outputs_never_view_borrowed_input() {
    let rt = Runtime::new().unwrap();
    let mut p = rt.pipeline(&manifest(json!([{"id": "p", "node_type": "PassThrough"}]), json!([]))).unwrap();
    let input = vec![1.0f32, 2.0, 3.0];
    let borrowed = Data::Audio(AudioBuffer::new(Samples::F32(unsafe { SampleBuf::borrowed(&input) }), 1, 8000).unwrap());
    let out = rt.run(&mut p, borrowed).unwrap();
    let Data::Audio(a) = &out[0].data else { panic!() };
    assert!(!a.samples().is_borrowed());
    assert_ne!(a.samples().as_ptr(), input.as_ptr().cast());
    assert_eq!(f32s(&out[0].data), input);
}

#[test]
fn node_error_names_node_and_operation() {
    let rt = runtime_with_probe(Default::default());
    let m = manifest(json!([{"id": "bad", "node_type": "Probe", "params": {"fail": "error"}}]), json!([]));
    let mut p = rt.pipeline(&m).unwrap();
    let err = rt.run(&mut p, mono(vec![0.0])).unwrap_err();
    assert_eq!(err.node_id(), Some("bad"));
    assert_eq!(err.operation(), Some(Operation::Process));
    assert!(err.is_retryable());
}

#[test]
fn panic_becomes_node_error_and_poisons() {
    let calls = Arc::new(AtomicUsize::new(0));
    let rt = runtime_with_probe(calls.clone());
    let m = manifest(json!([{"id": "boom", "node_type": "Probe", "params": {"fail": "panic"}}]), json!([]));
    let mut p = rt.pipeline(&m).unwrap();
    let err = rt.run(&mut p, mono(vec![0.0])).unwrap_err();
    assert!(err.to_string().contains("probe exploded"), "{err}");
    assert!(!err.is_retryable());
    let again = rt.run(&mut p, mono(vec![0.0])).unwrap_err();
    assert!(again.to_string().contains("poisoned"), "{again}");
    assert_eq!(calls.load(Ordering::SeqCst), 1, "a poisoned node is never re-entered");
}

#[test]
fn bad_params_and_ports_name_the_place() {
    let rt = runtime_with_probe(Default::default());
    let err = rt.pipeline(&manifest(json!([{"id": "n", "node_type": "Probe", "params": {"add": -1}}]), json!([]))).err().unwrap();
    assert!(matches!(&err, Error::Manifest { path, .. } if path == "nodes[0].params.add"), "{err}");
    assert!(err.to_string().contains("node 'n'"));
    let err = rt
        .pipeline(&manifest(
            json!([{"id": "a", "node_type": "Probe"}, {"id": "b", "node_type": "Gain"}]),
            json!([{"from": "a.nope", "to": "b"}]),
        ))
        .err()
        .unwrap();
    assert!(matches!(&err, Error::Manifest { path, .. } if path == "connections[0].from"), "{err}");
    assert!(err.to_string().contains("events"), "lists the real ports: {err}");
}

#[test]
fn unknown_type_and_hints() {
    let rt = Runtime::new().unwrap();
    let err = rt.pipeline(&manifest(json!([{"id": "n", "node_type": "Nope"}]), json!([]))).err().unwrap();
    assert!(
        matches!(&err, Error::Manifest { path, message } if path == "nodes[0].node_type" && message.contains("unknown node type 'Nope'")),
        "{err}"
    );
    let err = rt.pipeline(&manifest(json!([{"id": "n", "node_type": "Gain", "runtime_hint": "python"}]), json!([]))).err().unwrap();
    assert!(err.to_string().contains("no python implementation"), "{err}");
}

#[test]
fn cycle_is_reported_through_the_runtime() {
    let rt = Runtime::new().unwrap();
    let err = rt
        .pipeline(&manifest(
            json!([{"id": "a", "node_type": "Gain"}, {"id": "b", "node_type": "Gain"}]),
            json!([{"from": "a", "to": "b"}, {"from": "b", "to": "a"}]),
        ))
        .err()
        .unwrap();
    assert!(matches!(err, Error::Cycle { ref nodes } if nodes.len() == 3), "{err}");
}

#[test]
fn runs_are_independent() {
    let rt = Runtime::new().unwrap();
    let mut p = rt.pipeline(&manifest(json!([{"id": "g", "node_type": "Gain", "params": {"gain_db": 0}}]), json!([]))).unwrap();
    let a = rt.run(&mut p, mono(vec![0.25])).unwrap();
    let b = rt.run(&mut p, mono(vec![0.25])).unwrap();
    assert_eq!(f32s(&a[0].data), f32s(&b[0].data));
}

fn paused() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap()
}

fn fault_pipeline(node: serde_json::Value) -> Pipeline {
    let m = Manifest::from_json(&manifest(json!([node]), json!([]))).unwrap();
    Pipeline::build(m, &crate::nodes::Registry::builtin()).unwrap()
}

fn node_metric(p: &Pipeline, key: &str) -> serde_json::Value {
    p.metrics_json()["nodes"][0][key].clone()
}

#[test]
fn transient_fault_is_retried_with_backoff_on_a_paused_clock() {
    let mut p = fault_pipeline(json!({"id": "f", "node_type": "Fault", "params": {"fail_first": 2}}));
    paused().block_on(async {
        let started = tokio::time::Instant::now();
        let out = p.run(mono(vec![0.5])).await.unwrap();
        assert_eq!(started.elapsed(), std::time::Duration::from_millis(100 + 200));
        assert_eq!(f32s(&out[0].data), vec![0.5]);
    });
    assert_eq!(node_metric(&p, "retries"), 2);
    assert_eq!(node_metric(&p, "errors"), 2);
}

#[test]
fn retries_run_out_and_permanent_faults_are_not_retried() {
    let mut p = fault_pipeline(json!({"id": "f", "node_type": "Fault", "params": {"fail_first": 9},
                                      "retry": {"max_retries": 2, "base_ms": 10}}));
    let err = paused().block_on(p.run(mono(vec![0.5]))).unwrap_err();
    assert!(err.is_retryable() && err.to_string().contains("injected fault 3 of 9"), "{err}");
    assert_eq!(node_metric(&p, "retries"), 2);
    let mut p = fault_pipeline(json!({"id": "f", "node_type": "Fault", "params": {"fail_first": 1, "mode": "permanent"}}));
    let err = paused().block_on(p.run(mono(vec![0.5]))).unwrap_err();
    assert!(!err.is_retryable());
    assert_eq!(node_metric(&p, "retries"), 0);
    let mut p = fault_pipeline(json!({"id": "f", "node_type": "Fault", "params": {"fail_first": 1, "mode": "panic"}}));
    let err = paused().block_on(p.run(mono(vec![0.5]))).unwrap_err();
    assert!(err.to_string().contains("panicked") && !err.is_retryable(), "{err}");
}

#[test]
fn breaker_opens_fails_fast_half_opens_and_closes() {
    let mut p = fault_pipeline(json!({"id": "f", "node_type": "Fault", "params": {"fail_first": 5, "mode": "permanent"},
                                      "circuit_breaker": {"failures": 5, "cooldown_ms": 1000}}));
    paused().block_on(async {
        for _ in 0..5 {
            assert!(matches!(p.run(mono(vec![1.0])).await, Err(Error::Node { .. })));
        }
        assert_eq!(node_metric(&p, "breaker"), "open");
        let err = p.run(mono(vec![1.0])).await.unwrap_err();
        assert!(matches!(&err, Error::CircuitOpen { node_id } if node_id == "f"), "{err}");
        assert_eq!(node_metric(&p, "calls"), 5, "fail fast: the open breaker does not call the node");
        tokio::time::advance(std::time::Duration::from_millis(1000)).await;
        let out = p.run(mono(vec![1.0])).await.unwrap();
        assert_eq!(f32s(&out[0].data), vec![1.0]);
        assert_eq!(node_metric(&p, "breaker"), "closed");
    });
}

#[test]
fn open_breaker_with_skip_passes_input_on() {
    let mut p = fault_pipeline(json!({"id": "f", "node_type": "Fault", "params": {"fail_first": 100, "mode": "permanent"},
                                      "circuit_breaker": {"failures": 1, "cooldown_ms": 60000, "on_open": "skip"}}));
    paused().block_on(async {
        assert!(p.run(mono(vec![2.0])).await.is_err());
        let out = p.run(mono(vec![3.0])).await.unwrap();
        assert_eq!(f32s(&out[0].data), vec![3.0]);
    });
}

#[test]
fn retry_and_breaker_params_are_validated() {
    let bad = [
        (json!({"max_retries": 11}), "retry.max_retries"),
        (json!({"factor": 0.5}), "retry.factor"),
        (json!({"jitter": 2}), "retry.jitter"),
        (json!({"base_ms": 100, "max_ms": 50}), "retry.max_ms"),
    ];
    for (retry, path) in bad {
        let m = manifest(json!([{"id": "f", "node_type": "Fault", "retry": retry}]), json!([]));
        let err = Manifest::from_json(&m).unwrap_err();
        assert!(matches!(&err, Error::Manifest { path: p, .. } if p == &format!("nodes[0].{path}")), "{err}");
    }
    let m = manifest(json!([{"id": "f", "node_type": "Fault", "circuit_breaker": {"failures": 0}}]), json!([]));
    assert!(Manifest::from_json(&m).unwrap_err().to_string().contains("circuit_breaker.failures"));
    let m = manifest(json!([{"id": "f", "node_type": "Fault", "circuit_breaker": {"on_open": "ignore"}}]), json!([]));
    assert!(Manifest::from_json(&m).unwrap_err().to_string().contains("circuit_breaker.on_open"));
}

#[test]
fn a_hanging_node_times_out_and_its_slot_gets_a_fresh_instance() {
    // no retries: each run is one call, so two runs stay within the node's MAX_HUNG_CALLS
    let mut p = fault_pipeline(json!({"id": "h", "node_type": "Fault", "params": {"fail_first": 1, "mode": "hang", "hang_ms": 2000},
                                      "timeout_ms": 50, "retry": {"max_retries": 0}}));
    // A real clock: tokio does not advance paused time while a blocking task runs.
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    rt.block_on(async {
        let started = std::time::Instant::now();
        let err = p.run(mono(vec![1.0])).await.unwrap_err();
        assert!(matches!(&err, Error::Timeout { node_id, operation: Operation::Process, after_ms: 50 } if node_id == "h"), "{err}");
        assert!(err.is_retryable());
        assert!(started.elapsed() < std::time::Duration::from_millis(1500), "the caller waits the deadline, not the hang");
        // not poisoned: a fresh Fault instance, whose first call hangs again
        let again = p.run(mono(vec![1.0])).await.unwrap_err();
        assert!(matches!(&again, Error::Timeout { .. }), "{again}");
    });
    rt.shutdown_background(); // the abandoned calls are still sleeping
}

#[test]
fn calls_within_their_deadline_run_normally_on_a_thread() {
    let mut p = fault_pipeline(json!({"id": "f", "node_type": "Fault", "params": {"fail_first": 1}, "timeout_ms": 60000,
                                      "retry": {"base_ms": 0}}));
    let out = paused().block_on(p.run(mono(vec![0.5, 0.25]))).unwrap();
    assert_eq!(f32s(&out[0].data), vec![0.5, 0.25]);
    assert_eq!(node_metric(&p, "retries"), 1);
    assert_eq!(node_metric(&p, "calls"), 3, "a failed try, the retry, and the flush");
    let err = Manifest::from_json(&manifest(json!([{"id": "f", "node_type": "Fault", "timeout_ms": 0}]), json!([]))).unwrap_err();
    assert!(err.to_string().contains("nodes[0].timeout_ms"), "{err}");
}

fn audio(samples: Vec<f32>, channels: u16, rate: u32) -> Data {
    Data::Audio(AudioBuffer::new(Samples::F32(SampleBuf::owned(samples)), channels, rate).unwrap())
}

fn refused_input(err: &Error, node: &str) {
    assert_eq!(err.status(), crate::capi::RmStatus::InvalidArgument, "{err}");
    assert_eq!(err.node_id(), Some(node), "{err}");
}

#[test]
fn a_dense_dag_over_the_path_budget_is_refused_at_build() {
    // Every node feeds every later one: node k gets 2^(k-1) copies of each input item.
    let dense = |n: usize| {
        let nodes: Vec<_> = (0..n).map(|i| json!({"id": format!("n{i}"), "node_type": "PassThrough"})).collect();
        let links: Vec<_> = (0..n).flat_map(|a| (a + 1..n).map(move |b| json!({"from": format!("n{a}"), "to": format!("n{b}")}))).collect();
        manifest(json!(nodes), json!(links))
    };
    let rt = Runtime::new().unwrap();
    let mut p = rt.pipeline(&dense(14)).unwrap();
    let out = rt.run(&mut p, mono(vec![0.5; 480])).unwrap();
    assert_eq!(out.len() as u64, crate::budget::MAX_PATHS);
    match rt.pipeline(&dense(15)) {
        Err(Error::Manifest { path, message }) => {
            assert_eq!(path, "nodes[14]");
            assert!(message.contains("8192 copies"), "{message}");
        }
        other => panic!("expected a manifest error, got {:?}", other.err()),
    }
}

#[test]
fn a_frame_over_the_sample_budget_is_refused_and_the_stream_goes_on() {
    let rt = Runtime::new().unwrap();
    let m = manifest(json!([{"id": "r", "node_type": "Rechunk", "params": {"frame_samples": 10_000_000}}]), json!([]));
    let mut p = rt.pipeline(&m).unwrap();
    let err = rt.run(&mut p, audio(vec![0.0; 1000], 1000, 16000)).unwrap_err();
    refused_input(&err, "r");
    assert!(err.to_string().contains("10000000 frames x 1000 channels"), "{err}");
    let out = rt.run(&mut p, audio(vec![0.25; 10], 1, 16000)).unwrap();
    assert_eq!(out.len(), 1, "a mono stream fits: the frame is padded at the end");
}

#[test]
fn resample_state_over_the_budget_is_refused() {
    let rt = Runtime::new().unwrap();
    let m = manifest(json!([{"id": "rs", "node_type": "Resample", "params": {"target_rate": 16000}}]), json!([]));
    let mut p = rt.pipeline(&m).unwrap();
    let err = rt.run(&mut p, audio(vec![0.0; 65_535], 65_535, 48000)).unwrap_err();
    refused_input(&err, "rs");
    assert!(err.to_string().contains("Resample state"), "{err}");
}

#[test]
fn emitting_past_the_item_budget_fails_the_call() {
    let items = crate::budget::MAX_ITEMS_PER_STEP;
    let rt = Runtime::new().unwrap();
    let one = manifest(json!([{"id": "r", "node_type": "Rechunk", "params": {"frame_samples": 1}}]), json!([]));
    let mut p = rt.pipeline(&one).unwrap();
    let err = rt.run(&mut p, mono(vec![0.0; items + 1])).unwrap_err();
    refused_input(&err, "r");
    assert!(err.to_string().contains("emitted more than"), "{err}");
    assert_eq!(p.metrics_json()["nodes"][0]["errors"], 1);
    assert_eq!(rt.run(&mut p, mono(vec![0.0; 3])).unwrap().len(), 3, "the next run is unaffected");

    // Under the budget per node, but fanned out to two sinks it would queue twice as many.
    let fan = manifest(
        json!([{"id": "r", "node_type": "Rechunk", "params": {"frame_samples": 1}},
               {"id": "a", "node_type": "PassThrough"}, {"id": "b", "node_type": "PassThrough"}]),
        json!([{"from": "r", "to": "a"}, {"from": "r", "to": "b"}]),
    );
    let mut p = rt.pipeline(&fan).unwrap();
    let err = rt.run(&mut p, mono(vec![0.0; items / 2 + 1])).unwrap_err();
    refused_input(&err, "r");
    assert!(err.to_string().contains("would queue more than"), "{err}");
}

#[test]
fn non_finite_samples_are_refused_by_resample_and_vad_without_tripping_the_breaker() {
    let rt = Runtime::new().unwrap();
    for (node, rate) in [
        (json!({"id": "n", "node_type": "Resample", "params": {"target_rate": 8000}}), 16000),
        (json!({"id": "n", "node_type": "VAD"}), 16000),
    ] {
        let mut node = node;
        node["circuit_breaker"] = json!({"failures": 1});
        let p = rt.pipeline(&manifest(json!([node]), json!([]))).unwrap();
        let session = Session::new(rt.tokio(), p, 1 << 16, Overflow::Block);
        let wait = std::time::Duration::from_secs(5);
        let clean = || audio((0..4800).map(|i| (i as f32 * 0.01).sin() * 0.1).collect(), 1, rate);
        session.push(clean(), wait).unwrap();
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            let mut x = vec![0.1f32; 4800];
            x[4321] = bad;
            let err = session.push(audio(x, 1, rate), wait).unwrap_err();
            refused_input(&err, "n");
            assert!(err.to_string().contains("the first is sample 4321"), "{err}");
        }
        session.push(clean(), wait).unwrap();
        session.flush().unwrap();
        let items = session.pull(usize::MAX, std::time::Duration::ZERO).len();
        assert!(items > 0);
    }
}

/// Two named inputs into a Mix: one at 16 kHz straight in, one at 48 kHz stereo through
/// the converters the plan inserts on its port.
const MIXED: &str = r#"{"version":"1","inputs":[{"name":"mic"},{"name":"far"}],
  "nodes":[{"id":"g","node_type":"Gain","params":{"gain_db":0}},{"id":"mix","node_type":"Mix","params":{"gains":[1.0,0.5]}}],
  "connections":[{"from":"$mic","to":"g"},{"from":"g","to":"mix.in0"},{"from":"$far","to":"mix.in1"}]}"#;

fn flat(outputs: &[Output]) -> Vec<f32> {
    outputs.iter().flat_map(|o| f32s(&o.data)).collect()
}

#[test]
fn two_named_inputs_mix_one_shot_and_streamed_together_or_apart() {
    let rt = Runtime::new().unwrap();
    let mut p = rt.pipeline(MIXED).unwrap();
    assert_eq!(p.input_names(), ["mic", "far"]);
    let a: Vec<f32> = (0..480).map(|i| (i as f32 * 0.01).sin()).collect();
    let b: Vec<f32> = (0..480).map(|i| (i as f32 * 0.003).cos()).collect();
    let want: Vec<f32> = a.iter().zip(&b).map(|(x, y)| 1.0 * x + 0.5 * y).collect();
    let one_shot = rt.run_inputs(&mut p, [(0, mono(a.clone())), (1, mono(b.clone()))]).unwrap();
    assert_eq!(flat(&one_shot), want);
    assert!(matches!(rt.run(&mut p, mono(a.clone())), Err(Error::InvalidArgument(m)) if m.contains("the inputs mic, far")));
    // streamed apart, in different chunk sizes: what is mixed equals the one-shot mix
    let mut got = Vec::new();
    let mut far = b.chunks(96);
    for (k, ca) in a.chunks(160).enumerate() {
        got.extend(flat(&rt.block_on(p.push_inputs([(0, mono(ca.to_vec()))])).unwrap()));
        if let Some(cb) = (k % 2 == 0).then(|| far.next()).flatten() {
            got.extend(flat(&rt.block_on(p.push_inputs([(1, mono(cb.to_vec()))])).unwrap()));
        }
    }
    for cb in far {
        got.extend(flat(&rt.block_on(p.push_inputs([(1, mono(cb.to_vec()))])).unwrap()));
    }
    got.extend(flat(&rt.block_on(p.finish()).unwrap()));
    assert_eq!(got, want);
    let e = rt.block_on(p.push_inputs([(0, mono(vec![0.0])), (0, mono(vec![0.0]))])).unwrap_err();
    assert!(e.to_string().contains("input 'mic' is given twice"), "{e}");
}

#[test]
fn each_input_port_gets_its_own_converters_visible_in_the_plan() {
    let rt = Runtime::new().unwrap();
    let mut p = rt.pipeline(MIXED).unwrap();
    let b48: Vec<f32> = (0..960 * 2).map(|i| ((i / 2) as f32 * 0.001).sin()).collect();
    let stereo48 = Data::Audio(AudioBuffer::new(Samples::F32(SampleBuf::owned(b48)), 2, 48000).unwrap());
    let out = rt.run_inputs(&mut p, [(0, mono(vec![0.25; 320])), (1, stereo48)]).unwrap();
    assert!(out.iter().all(|o| matches!(&o.data, Data::Audio(a) if a.sample_rate() == 16000 && a.channels() == 1)));
    let plan = p.plan_json();
    let inserted: Vec<&str> =
        plan["nodes"].as_array().unwrap().iter().filter(|n| n["inserted"] == true).map(|n| n["id"].as_str().unwrap()).collect();
    assert_eq!(inserted, ["$far→mix.downmix", "$far→mix.resample"]);
    assert_eq!(plan["feeds"][1], json!({"input": "far", "to": "$far→mix.downmix", "to_port": "in", "caps": plan["inputs"]["far"]}));
    assert_eq!(plan["nodes"][1]["inputs"]["in1"]["sample_rate"], 16000);
    assert_eq!(plan["edges"].as_array().unwrap().last().unwrap()["to_port"], "in1");
}

#[test]
fn an_unknown_input_port_is_named_with_a_hint() {
    let rt = Runtime::new().unwrap();
    match rt.pipeline(&MIXED.replace("mix.in1", "mix.in2")) {
        Err(Error::Manifest { path, message }) => {
            assert_eq!(path, "connections[2].to");
            assert!(message.contains("node 'mix' (Mix) has no input port 'in2'; did you mean 'in0'?; ports: in0, in1"), "{message}");
        }
        other => panic!("expected a manifest error, got {:?}", other.map(|_| ())),
    }
}

#[test]
fn a_group_runs_each_session_apart_and_reports_failures_by_session() {
    let rt = Runtime::new().unwrap();
    let template = rt.pipeline(r#"{"version":"1","nodes":[{"id":"g","node_type":"Gain","params":{"gain_db":0.0}}]}"#).unwrap();
    for workers in [1, 3] {
        let mut group = Group::new(rt.tokio(), template.instance().unwrap(), 2, workers);
        let (a, b) = (group.open().unwrap(), group.open().unwrap());
        assert_eq!((a, b), (1, 2));
        // an unknown session fails alone; b's two chunks of one input are refused as one step would be
        let failures = group.push(vec![(b, 0, mono(vec![2.0])), (9, 0, mono(vec![0.0])), (a, 0, mono(vec![1.0]))]);
        assert_eq!(failures.len(), 1);
        assert_eq!(failures[0].0, 9);
        assert!(failures[0].1.to_string().contains("session 9 was never opened"), "{}", failures[0].1);
        let pulled = group.pull(usize::MAX);
        let got: Vec<(u64, Vec<f32>)> = pulled.iter().map(|(id, o)| (*id, f32s(&o.data))).collect();
        assert_eq!(got, vec![(a, vec![1.0]), (b, vec![2.0])]);
        let failures = group.push(vec![(a, 0, mono(vec![1.0])), (a, 0, mono(vec![1.0]))]);
        assert_eq!(failures.iter().map(|f| f.0).collect::<Vec<_>>(), vec![a], "an input given twice in one step");
        // queues hold `capacity` items, dropping their oldest
        for k in 0..3 {
            assert!(group.push(vec![(b, 0, mono(vec![k as f32]))]).is_empty());
        }
        assert_eq!(group.queued(b).unwrap(), (2, 1));
        group.close(a).unwrap();
        assert!(group.close(a).unwrap_err().to_string().contains("session 1 is closed"));
        assert_eq!(group.flush(&[a, b]).iter().map(|f| f.0).collect::<Vec<_>>(), vec![a]);
        assert_eq!(group.sessions().collect::<Vec<_>>(), vec![b]);
    }
}
