//! A conformance check any plugin can be run through: every node type is created,
//! fed odd chunk sizes and sample formats, flushed, reset and destroyed in varied
//! orders. A check fails on a crash-free misbehaviour (params accepted that the schema
//! forbids, a broken instance, reset that does not forget, instances sharing state);
//! a crash ends the process, so callers run the check in a child process.

use std::path::Path;
use std::sync::Arc;

use serde_json::{Map, Value, json};

use remotemedia_plugin::abi::{RM_KIND_AUDIO, RM_KIND_JSON};

use crate::data::{AudioBuffer, Data, SampleBuf, SampleFormat, Samples};
use crate::error::{FailureKind, NodeFailure, Result, catch, panic_message};
use crate::nodes::{Emitter, Node, NodeSpec};

/// Frames per chunk fed to each node: empty, tiny, odd and larger than a typical block.
const FRAMES: [usize; 6] = [0, 1, 7, 160, 480, 4097];

/// Loads the plugin at `path` and checks each of its node types; the report says what
/// passed (`passed`, and `checks` with `node_type`, `check`, `ok`, `detail`).
pub fn check(path: &Path) -> Result<Value> {
    let plugin = super::load(path)?;
    let mut checks = Vec::new();
    for (spec, &(input_kinds, _)) in plugin.specs().iter().zip(plugin.kinds()) {
        check_type(spec, input_kinds, &mut |check: &str, outcome: std::result::Result<String, String>| {
            let (ok, detail) = match outcome {
                Ok(d) => (true, d),
                Err(d) => (false, d),
            };
            checks.push(json!({"node_type": spec.node_type, "check": check, "ok": ok, "detail": detail}));
        });
    }
    let passed = checks.iter().all(|c| c["ok"] == true);
    Ok(json!({"plugin": plugin.meta.name, "file": plugin.meta.file.display().to_string(), "passed": passed, "checks": checks}))
}

type Report<'a> = dyn FnMut(&str, std::result::Result<String, String>) + 'a;

/// Params made of the schema's defaults.
fn defaults(spec: &NodeSpec) -> Map<String, Value> {
    let props = spec.params_schema.get("properties").and_then(Value::as_object);
    props.into_iter().flatten().filter_map(|(k, v)| v.get("default").map(|d| (k.clone(), d.clone()))).collect()
}

fn create(spec: &NodeSpec, params: &Map<String, Value>) -> std::result::Result<Box<dyn Node>, String> {
    match catch(|| (spec.create)(params)) {
        Ok(Ok(node)) => Ok(node),
        Ok(Err(e)) => Err(e.message),
        Err(p) => Err(format!("create panicked: {}", panic_message(&*p))),
    }
}

/// Inputs of the kinds a node type accepts (`RM_KIND_*` bits, 0 for any): audio of
/// every size in `FRAMES` with pseudo-random samples from `seed`, then a JSON event.
fn inputs(input_kinds: u32, format: SampleFormat, channels: u16, seed: u32) -> Vec<Data> {
    let accepts = |bit: u32| input_kinds == 0 || input_kinds & bit != 0;
    let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    let mut next = move || {
        state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        (state >> 8) as f32 / (1u32 << 24) as f32 - 0.5
    };
    let mut items = Vec::new();
    if accepts(RM_KIND_AUDIO) {
        for frames in FRAMES {
            let samples: Vec<f32> = (0..frames * usize::from(channels)).map(|_| next()).collect();
            let samples = crate::convert::convert(&Samples::F32(SampleBuf::owned(samples)), format);
            items.push(Data::Audio(AudioBuffer::new(samples, channels, 48_000).expect("valid shape")));
        }
    }
    if accepts(RM_KIND_JSON) {
        items.push(Data::Json(Arc::new(json!({"conformance": seed}))));
    }
    items
}

/// One stream through an instance: every item processed, then a flush. Returns what
/// was emitted (as comparable text), or the first failure that broke the instance.
/// A clean failure (with a message) of one call is allowed: a node may refuse input.
fn stream(node: &mut dyn Node, items: &[Data]) -> std::result::Result<Vec<String>, String> {
    stream_with(node, items, |_| {})
}

/// `stream`, calling `before` ahead of each item.
fn stream_with(node: &mut dyn Node, items: &[Data], mut before: impl FnMut(&Data)) -> std::result::Result<Vec<String>, String> {
    let mut out = Emitter::default();
    let call = |r: std::result::Result<(), NodeFailure>| match r {
        Err(f) if f.kind == FailureKind::Broken => Err(format!("instance reported broken: {}", f.message)),
        Err(f) if f.message.is_empty() => Err("failed without a message".to_string()),
        _ => Ok(()),
    };
    for item in items {
        before(item);
        call(guarded(|| node.process(item, &mut out)))?;
    }
    call(guarded(|| node.flush(&mut out)))?;
    Ok(out.take().iter().map(|(port, d)| format!("{port}:{}", fingerprint(d))).collect())
}

fn guarded(f: impl FnOnce() -> std::result::Result<(), NodeFailure>) -> std::result::Result<(), NodeFailure> {
    catch(f).unwrap_or_else(|p| Err(NodeFailure::broken(format!("panicked: {}", panic_message(&*p)))))
}

/// Exact text of an item, for comparing outputs.
fn fingerprint(d: &Data) -> String {
    match d {
        Data::Json(v) => v.to_string(),
        Data::Audio(a) => {
            let s = a.samples();
            let bytes = unsafe { std::slice::from_raw_parts(s.as_ptr(), s.len() * s.format().size()) };
            format!("{:?}/{}ch/{}Hz/{:?}", s.format(), a.channels(), a.sample_rate(), bytes)
        }
    }
}

/// Values a param's schema forbids, described: always an object; for a number a
/// string, and values past `minimum`/`maximum` (or on an exclusive bound); for a
/// string a number; for an `enum` a value not in it.
fn wrong_values(schema: &Value) -> Vec<(String, Value)> {
    let mut out = vec![("an object".to_string(), json!({"conformance": "not a valid value"}))];
    let types: Vec<&str> = match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    let number = types.iter().any(|t| *t == "number" || *t == "integer");
    if number && !types.contains(&"string") {
        out.push(("a string".to_string(), json!("conformance")));
    }
    if types.contains(&"string") && !number {
        out.push(("a number".to_string(), json!(7)));
    }
    let bound = |key: &str| schema.get(key).and_then(Value::as_f64);
    if let Some(max) = bound("maximum") {
        out.push((format!("{} (over its maximum)", max + 1.0), json!(max + 1.0)));
    }
    if let Some(min) = bound("minimum") {
        out.push((format!("{} (under its minimum)", min - 1.0), json!(min - 1.0)));
    }
    for (key, what) in [("exclusiveMaximum", "its exclusive maximum"), ("exclusiveMinimum", "its exclusive minimum")] {
        if let Some(v) = bound(key) {
            out.push((format!("{v} ({what})"), json!(v)));
        }
    }
    if let Some(Value::Array(options)) = schema.get("enum") {
        let outside = json!("conformance: not one of the enum");
        if !options.contains(&outside) {
            out.push(("a value not in its enum".to_string(), outside));
        }
    }
    out
}

fn check_type(spec: &NodeSpec, input_kinds: u32, report: &mut Report<'_>) {
    let params = defaults(spec);
    if let Err(e) = create(spec, &params) {
        report("create with the schema's defaults", Err(e));
        return;
    }
    report("create with the schema's defaults", Ok(Value::Object(params.clone()).to_string()));

    let props: Vec<String> =
        spec.params_schema.get("properties").and_then(Value::as_object).map(|p| p.keys().cloned().collect()).unwrap_or_default();
    let properties = spec.params_schema.get("properties").and_then(Value::as_object);
    for name in props {
        let schema = properties.and_then(|p| p.get(&name)).cloned().unwrap_or(Value::Null);
        for (what, value) in wrong_values(&schema) {
            let mut bad = params.clone();
            bad.insert(name.clone(), value);
            let outcome = match create(spec, &bad) {
                Ok(_) => Err(format!("params.{name} = {what} was accepted")),
                Err(m) if m.trim().is_empty() => Err(format!("params.{name} = {what} was rejected without a message")),
                Err(m) if m.contains("panicked") => Err(m),
                Err(m) => Ok(m),
            };
            report(&format!("params.{name} = {what} rejected with a message"), outcome);
        }
    }

    let fresh = || create(spec, &params).expect("created above");
    let outcome = catch(|| drop(fresh())).map(|_| String::new()).map_err(|p| panic_message(&*p));
    report("destroy without processing", outcome);
    report("flush without input", stream(&mut *fresh(), &[]).map(|o| format!("{} items", o.len())));
    for format in [SampleFormat::F32, SampleFormat::I16, SampleFormat::F64] {
        for channels in [1u16, 2] {
            let items = inputs(input_kinds, format, channels, 1);
            let name = format!("{format:?} chunks of {FRAMES:?} frames, {channels} channel(s)");
            report(&name, stream(&mut *fresh(), &items).map(|o| format!("{} items out", o.len())));
        }
    }

    let (a, b) = (inputs(input_kinds, SampleFormat::F32, 2, 7), inputs(input_kinds, SampleFormat::F32, 2, 8));
    let mut node = fresh();
    let reused = stream(&mut *node, &a).and_then(|_| stream(&mut *node, &b));
    report("stream, flush, then a second stream", reused.as_ref().map(|o| format!("{} items", o.len())).map_err(Clone::clone));

    let expected = stream(&mut *fresh(), &b);
    let mut node = fresh();
    let after_reset = stream(&mut *node, &a).and_then(|_| {
        guarded(|| node.reset()).map_err(|f| f.message)?;
        stream(&mut *node, &b)
    });
    let outcome = match (expected, after_reset) {
        (Ok(e), Ok(r)) if e == r => Ok("same output as a fresh instance".to_string()),
        (Ok(_), Ok(_)) => {
            Err("after flush and reset the output differs from a fresh instance's: reset must forget all stream state".to_string())
        }
        (Err(e), _) | (_, Err(e)) => Err(e),
    };
    report("two streams do not share state (flush, reset, then a new stream)", outcome);

    let (mut x, mut y) = (fresh(), fresh());
    let alone = stream(&mut *fresh(), &a);
    let interleaved = stream_with(&mut *x, &a, |item| {
        let _ = guarded(|| y.process(item, &mut Emitter::default()));
    });
    let outcome = match (alone, interleaved) {
        (Ok(e), Ok(r)) if e == r => Ok("two instances do not share state".to_string()),
        (Ok(_), Ok(_)) => Err("output changes when another instance runs at the same time (shared state?)".to_string()),
        (Err(e), _) | (_, Err(e)) => Err(e),
    };
    report("instances are independent", outcome);
}
