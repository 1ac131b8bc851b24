//! A conformance check any plugin can be run through: every node type is created,
//! fed odd chunk sizes and sample formats, flushed, reset and destroyed in varied
//! orders. Every instance runs in a child process of its own (process isolation), so
//! a crash or a call past the time limit fails the check it happened in, named, and
//! the other checks still run. A check also fails on a crash-free misbehaviour (params
//! accepted that the schema forbids, a broken instance, reset that does not forget,
//! instances sharing state, memory that grows with every call).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};

use remotemedia_plugin::abi::{RM_KIND_AUDIO, RM_KIND_JSON};

use crate::data::{AudioBuffer, Data, SampleBuf, SampleFormat, Samples};
use crate::error::{FailureKind, NodeFailure, Result};
use crate::isolation::{Isolated, Recipe, StartError};
use crate::nodes::{Emitter, Node, NodeSpec, declared_types};

/// Frames per chunk fed to each node: empty, tiny, odd and larger than a typical block.
const FRAMES: [usize; 6] = [0, 1, 7, 160, 480, 4097];
/// The time limit of one call, unless the caller sets another.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Calls before and during the memory check, and the growth per call it allows.
const WARM_CALLS: usize = 50;
const MEASURED_CALLS: usize = 200;
const MAX_GROWTH_PER_CALL: u64 = 16 * 1024;

/// Why a check failed: the node misbehaved, its process died, or a call hung.
enum Fail {
    Plain(String),
    Crashed(String),
    Hung(String),
}

impl Fail {
    fn of(f: NodeFailure) -> Self {
        match f.kind {
            FailureKind::Crashed => Fail::Crashed(f.message),
            FailureKind::TimedOut => Fail::Hung(f.message),
            _ => Fail::Plain(f.message),
        }
    }
    fn message(&self) -> &str {
        match self {
            Fail::Plain(m) | Fail::Crashed(m) | Fail::Hung(m) => m,
        }
    }
}

type Outcome = std::result::Result<String, Fail>;

/// Loads the plugin at `path` and checks each of its node types, each call limited to
/// `call_timeout`; the report says what passed (`passed`, and `checks` with
/// `node_type`, `check`, `ok`, `detail`, and `crashed` or `hung` when that is why), and
/// where the first crash (`crashed`: the signal) or hang (`hung`: seconds) happened
/// (`at`: node type and check).
pub fn check(path: &Path, call_timeout: Duration) -> Result<Value> {
    let plugin = crate::plugin::load(path)?;
    let mut checks: Vec<Value> = Vec::new();
    for (spec, &(input_kinds, _)) in plugin.specs().iter().zip(plugin.kinds()) {
        let mut checker = Checker { spec, timeout: call_timeout, checks: &mut checks };
        check_type(&mut checker, input_kinds);
    }
    let passed = checks.iter().all(|c| c["ok"] == true);
    let mut report =
        json!({"plugin": plugin.meta.name, "file": plugin.meta.file.display().to_string(), "passed": passed, "checks": checks});
    if let Some(c) = checks.iter().find(|c| c.get("crashed").is_some()) {
        let detail = c["detail"].as_str().unwrap_or_default();
        let signal = detail.split('(').nth(1).and_then(|s| s.split(')').next()).filter(|s| s.starts_with("SIG"));
        report["crashed"] = json!(signal.unwrap_or("a signal"));
        report["at"] = json!({"node_type": c["node_type"], "check": c["check"]});
    } else if let Some(c) = checks.iter().find(|c| c.get("hung").is_some()) {
        report["hung"] = json!(call_timeout.as_secs_f64());
        report["at"] = json!({"node_type": c["node_type"], "check": c["check"]});
    }
    Ok(report)
}

/// Runs the checks of one node type and records their outcomes.
struct Checker<'a> {
    spec: &'a NodeSpec,
    timeout: Duration,
    checks: &'a mut Vec<Value>,
}

impl Checker<'_> {
    fn report(&mut self, check: &str, outcome: Outcome) {
        let mut entry = json!({"node_type": self.spec.node_type, "check": check});
        match outcome {
            Ok(detail) => {
                entry["ok"] = json!(true);
                entry["detail"] = json!(detail);
            }
            Err(fail) => {
                entry["ok"] = json!(false);
                entry["detail"] = json!(fail.message());
                match fail {
                    Fail::Crashed(_) => entry["crashed"] = json!(true),
                    Fail::Hung(_) => entry["hung"] = json!(true),
                    Fail::Plain(_) => {}
                }
            }
        }
        self.checks.push(entry);
    }

    /// An instance in a child process of its own.
    fn create(&self, params: &Map<String, Value>) -> std::result::Result<Isolated, Fail> {
        Isolated::start(Recipe::new(self.spec, params, Some(self.timeout))).map_err(|e| match e {
            StartError::Params(p) => Fail::Plain(p.message),
            StartError::Process(f) => Fail::of(f),
        })
    }
}

/// Params made of the schema's defaults.
fn defaults(spec: &NodeSpec) -> Map<String, Value> {
    let props = spec.params_schema.get("properties").and_then(Value::as_object);
    props.into_iter().flatten().filter_map(|(k, v)| v.get("default").map(|d| (k.clone(), d.clone()))).collect()
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
fn stream(node: &mut dyn Node, items: &[Data]) -> std::result::Result<Vec<String>, Fail> {
    stream_with(node, items, |_| {})
}

/// `stream`, calling `before` ahead of each item.
fn stream_with(node: &mut dyn Node, items: &[Data], mut before: impl FnMut(&Data)) -> std::result::Result<Vec<String>, Fail> {
    let mut out = Emitter::default();
    let call = |r: std::result::Result<(), NodeFailure>| match r {
        Err(f) if f.kind == FailureKind::Broken => Err(Fail::Plain(format!("instance reported broken: {}", f.message))),
        Err(f) if matches!(f.kind, FailureKind::Crashed | FailureKind::TimedOut) => Err(Fail::of(f)),
        Err(f) if f.message.is_empty() => Err(Fail::Plain("failed without a message".to_string())),
        _ => Ok(()),
    };
    for item in items {
        before(item);
        call(node.process(item, &mut out))?;
    }
    call(node.flush(&mut out))?;
    Ok(out.take().iter().map(|(port, d)| format!("{port}:{}", fingerprint(d))).collect())
}

/// Exact text of an item, for comparing outputs.
fn fingerprint(d: &Data) -> String {
    match d {
        Data::Json(v) => v.to_string(),
        Data::Audio(a) => {
            let s = a.samples();
            format!("{:?}/{}ch/{}Hz/{:?}", s.format(), a.channels(), a.sample_rate(), s.as_bytes())
        }
    }
}

/// Values a param's schema forbids, described: always an object; for a number a
/// string, and values past `minimum`/`maximum` (or on an exclusive bound); for a
/// string a number; for an `enum` a value not in it.
fn wrong_values(schema: &Value) -> Vec<(String, Value)> {
    let mut out = vec![("an object".to_string(), json!({"conformance": "not a valid value"}))];
    let types = declared_types(schema);
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

/// `VmData` of process `pid` in bytes: its private writable memory, which any heap
/// allocation (touched or not) adds to.
fn data_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb = status.lines().find_map(|l| l.strip_prefix("VmData:"))?.trim().trim_end_matches("kB").trim().parse::<u64>().ok()?;
    Some(kb * 1024)
}

/// Growth of the instance's process memory per call over a long stream of `items`.
fn growth(node: &mut Isolated, items: &[Data]) -> Outcome {
    let mut out = Emitter::default();
    let mut calls = |n: usize, node: &mut Isolated| -> std::result::Result<(), Fail> {
        for item in items.iter().cycle().take(n) {
            match node.process(item, &mut out) {
                Err(f) if matches!(f.kind, FailureKind::Crashed | FailureKind::TimedOut | FailureKind::Broken) => return Err(Fail::of(f)),
                _ => drop(out.take()),
            }
        }
        Ok(())
    };
    calls(WARM_CALLS, node)?;
    let pid = node.pid().ok_or_else(|| Fail::Plain("the instance's process is gone".into()))?;
    let before = data_bytes(pid).ok_or_else(|| Fail::Plain("cannot read the process's memory".into()))?;
    calls(MEASURED_CALLS, node)?;
    let after = data_bytes(pid).ok_or_else(|| Fail::Plain("cannot read the process's memory".into()))?;
    let per_call = after.saturating_sub(before) / MEASURED_CALLS as u64;
    let text = format!("{} KiB more after {MEASURED_CALLS} calls ({per_call} bytes per call)", after.saturating_sub(before) / 1024);
    if per_call > MAX_GROWTH_PER_CALL { Err(Fail::Plain(format!("memory grows with every call: {text}"))) } else { Ok(text) }
}

fn check_type(c: &mut Checker<'_>, input_kinds: u32) {
    let spec = c.spec;
    let params = defaults(spec);
    match c.create(&params) {
        Ok(node) => {
            drop(node);
            c.report("create with the schema's defaults", Ok(Value::Object(params.clone()).to_string()));
        }
        Err(e) => return c.report("create with the schema's defaults", Err(e)),
    }

    let properties = spec.params_schema.get("properties").and_then(Value::as_object);
    for (name, schema) in properties.into_iter().flatten() {
        for (what, value) in wrong_values(schema) {
            let mut bad = params.clone();
            bad.insert(name.clone(), value);
            let outcome = match c.create(&bad) {
                Ok(_) => Err(Fail::Plain(format!("params.{name} = {what} was accepted"))),
                Err(Fail::Plain(m)) if m.trim().is_empty() => {
                    Err(Fail::Plain(format!("params.{name} = {what} was rejected without a message")))
                }
                Err(Fail::Plain(m)) if m.contains("panicked") => Err(Fail::Plain(m)),
                Err(Fail::Plain(m)) => Ok(m),
                Err(other) => Err(other),
            };
            c.report(&format!("params.{name} = {what} rejected with a message"), outcome);
        }
    }

    let grace = c.timeout;
    let outcome = c.create(&params).and_then(|node| {
        node.close(grace).map(|()| String::new()).map_err(|m| {
            if m.contains("signal") { Fail::Crashed(format!("destroy: its process {m}")) } else { Fail::Hung(format!("destroy: {m}")) }
        })
    });
    c.report("destroy without processing", outcome);
    let outcome = c.create(&params).and_then(|mut node| stream(&mut node, &[]).map(|o| format!("{} items", o.len())));
    c.report("flush without input", outcome);
    for format in [SampleFormat::F32, SampleFormat::I16, SampleFormat::F64] {
        for channels in [1u16, 2] {
            let items = inputs(input_kinds, format, channels, 1);
            let name = format!("{format:?} chunks of {FRAMES:?} frames, {channels} channel(s)");
            let outcome = c.create(&params).and_then(|mut node| stream(&mut node, &items).map(|o| format!("{} items out", o.len())));
            c.report(&name, outcome);
        }
    }

    let (a, b) = (inputs(input_kinds, SampleFormat::F32, 2, 7), inputs(input_kinds, SampleFormat::F32, 2, 8));
    let outcome = c.create(&params).and_then(|mut node| {
        stream(&mut node, &a)?;
        stream(&mut node, &b).map(|o| format!("{} items", o.len()))
    });
    c.report("stream, flush, then a second stream", outcome);

    let outcome = c.create(&params).and_then(|mut fresh| {
        let expected = stream(&mut fresh, &b)?;
        let mut node = c.create(&params)?;
        stream(&mut node, &a)?;
        node.reset().map_err(Fail::of)?;
        if stream(&mut node, &b)? == expected {
            Ok("same output as a fresh instance".to_string())
        } else {
            Err(Fail::Plain("after flush and reset the output differs from a fresh instance's: reset must forget all stream state".into()))
        }
    });
    c.report("two streams do not share state (flush, reset, then a new stream)", outcome);

    let outcome = c.create(&params).and_then(|mut alone| {
        let expected = stream(&mut alone, &a)?;
        let (mut x, mut y) = (c.create(&params)?, c.create(&params)?);
        let interleaved = stream_with(&mut x, &a, |item| {
            let _ = y.process(item, &mut Emitter::default());
        })?;
        if interleaved == expected {
            Ok("two instances do not share state".to_string())
        } else {
            Err(Fail::Plain("output changes when another instance runs at the same time (shared state?)".into()))
        }
    });
    c.report("instances are independent", outcome);

    let items: Vec<Data> =
        inputs(input_kinds, SampleFormat::F32, 1, 3).into_iter().filter(|d| !matches!(d, Data::Audio(a) if a.frames() == 0)).collect();
    let outcome = c.create(&params).and_then(|mut node| growth(&mut node, &items));
    c.report(&format!("memory stays flat over {MEASURED_CALLS} calls"), outcome);
}
