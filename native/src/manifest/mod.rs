//! The JSON pipeline manifest: parsing, limits and structural validation.
//!
//! Parsing rejects unknown fields and wrong types with the JSON path of the offending
//! field. [`Manifest::validate`] then checks what the types can't: version, ids,
//! connections. Node types and params are checked against the registry when a
//! pipeline is built.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::caps::Caps;
use crate::error::{Error, Result, did_you_mean};

/// Largest manifest accepted, in bytes.
pub const MAX_MANIFEST_BYTES: usize = 1 << 20;
/// Most nodes in one pipeline.
pub const MAX_NODES: usize = 1024;
/// Most connections in one pipeline.
pub const MAX_CONNECTIONS: usize = 4096;
/// Longest node id (and pipeline input name).
pub const MAX_ID_LEN: usize = 64;
/// Most named pipeline inputs.
pub const MAX_INPUTS: usize = 64;
/// The name of a pipeline's input when it declares no `inputs`.
pub const DEFAULT_INPUT: &str = "input";
/// The only manifest version understood.
pub const VERSION: &str = "1";
/// Bounds of a node's `timeout_ms`.
pub const TIMEOUT_MS: std::ops::RangeInclusive<u64> = 1..=3_600_000;
/// Bounds of the retry policy's fields.
const MAX_RETRIES: u32 = 10;
const MAX_BASE_MS: u64 = 60_000;
const FACTOR: std::ops::RangeInclusive<f64> = 1.0..=10.0;
const MAX_MAX_MS: u64 = 600_000;
/// Bounds of the circuit breaker's fields.
const FAILURES: std::ops::RangeInclusive<u32> = 1..=1000;
const MAX_COOLDOWN_MS: u64 = 3_600_000;

/// A parsed pipeline manifest.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub version: String,
    #[serde(default)]
    pub metadata: Map<String, Value>,
    pub nodes: Vec<NodeDecl>,
    #[serde(default)]
    pub connections: Vec<Connection>,
    /// What the pipeline input carries (`format`, `channels`, `sample_rate`, each
    /// optional): the plan is made at build time for it. Fields left out are taken
    /// from the first chunk; the declared ones must match every chunk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Value>,
    /// Named pipeline inputs, each with optional caps as `input` has them; connections
    /// from `$name` carry what is pushed to that input. Without it the pipeline has one
    /// input (`"input"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs: Option<Vec<InputDecl>>,
    /// Whether negotiation inserts converters where a node's input does not accept
    /// what arrives (`true` when absent); `false` makes each such edge an error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_convert: Option<bool>,
    /// Most latency, in ms, of the path from the input to any sink output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_budget_ms: Option<f64>,
}

/// One node of the manifest.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeDecl {
    pub id: String,
    pub node_type: String,
    #[serde(default)]
    pub params: Map<String, Value>,
    #[serde(default)]
    pub runtime_hint: RuntimeHint,
    /// Retry of calls that fail transiently; the runtime default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryPolicy>,
    /// When to stop calling a failing node; the runtime default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub circuit_breaker: Option<BreakerPolicy>,
    /// Deadline of one call (process or flush), in ms; none when absent. A call past
    /// it fails with a timeout; the node continues with a fresh instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Where the node runs: in the host process (default) or in a child process.
    #[serde(default, skip_serializing_if = "Isolation::is_default")]
    pub isolation: Isolation,
    /// Most latency, in ms, of the path from the input to this node (itself included).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_budget_ms: Option<f64>,
}

impl NodeDecl {
    /// The declaration of a converter the plan inserts: default policies, in-process.
    pub fn inserted(id: &str, node_type: &str, params: Map<String, Value>) -> Self {
        Self {
            id: id.into(),
            node_type: node_type.into(),
            params,
            runtime_hint: RuntimeHint::Auto,
            retry: None,
            circuit_breaker: None,
            timeout_ms: None,
            isolation: Isolation::InProcess,
            latency_budget_ms: None,
        }
    }
}

/// A named pipeline input: its name and what it carries (each field optional).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputDecl {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channels: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_rate: Option<Value>,
}

/// Where a pipeline input goes: node `node`'s input port `port` (`None`: its first),
/// by connection `connection` (`None`: a source node fed by the one input implicitly).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Feed {
    pub input: usize,
    pub node: usize,
    pub port: Option<String>,
    pub connection: Option<usize>,
}

/// Retries of a node call that failed with a retryable (transient) error. Attempt k
/// (from 1) waits `min(base_ms * factor^(k-1), max_ms)`, shortened by up to `jitter`
/// of itself at random. Defaults: 3 retries after 100, 200 and 400 ms.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryPolicy {
    pub max_retries: u32,
    pub base_ms: u64,
    pub factor: f64,
    pub max_ms: u64,
    pub jitter: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { max_retries: 3, base_ms: 100, factor: 2.0, max_ms: 5000, jitter: 0.0 }
    }
}

/// A per-node circuit breaker: after `failures` consecutive failed calls it opens and
/// calls fail at once (`on_open` "fail") or pass their input on untouched ("skip");
/// after `cooldown_ms` one trial call is let through (half-open) and its success closes
/// the breaker. Defaults: 5 failures, 10 s, "fail".
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BreakerPolicy {
    pub failures: u32,
    pub cooldown_ms: u64,
    pub on_open: OnOpen,
}

impl Default for BreakerPolicy {
    fn default() -> Self {
        Self { failures: 5, cooldown_ms: 10_000, on_open: OnOpen::Fail }
    }
}

/// What a call does while its node's breaker is open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnOpen {
    /// Fail with a circuit-open error.
    #[default]
    Fail,
    /// Pass the input on unchanged on the node's first port (process calls only).
    Skip,
}

/// Which implementation of a node type to use. One vocabulary, everywhere.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuntimeHint {
    /// Native when available, else the host's (Python) implementation.
    #[default]
    Auto,
    /// Native only; an error if there is none.
    Native,
    /// The host's (Python) implementation only.
    Python,
}

/// Where a node runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Isolation {
    /// In the host process, called on the pipeline's threads.
    #[default]
    InProcess,
    /// In a child process of its own: a crash, abort or hang there fails the node's
    /// call, and the child is restarted; the host carries on.
    Process,
}

impl Isolation {
    fn is_default(&self) -> bool {
        *self == Isolation::InProcess
    }
}

/// A directed edge `from` → `to`. `from` is a node, `node.port` for one of its output
/// ports, or `$name` for a named pipeline input; `to` is a node, or `node.port` for one
/// of its input ports.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Connection {
    pub from: String,
    pub to: String,
}

/// Where a connection's items come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source<'a> {
    /// The named pipeline input `$name`.
    Input(&'a str),
    /// A node's output port (`None`: its first).
    Node(&'a str, Option<&'a str>),
}

impl Connection {
    /// Where `from` takes its items.
    pub fn source(&self) -> Source<'_> {
        if let Some(name) = self.from.strip_prefix('$') {
            return Source::Input(name);
        }
        let (node, port) = split_port(&self.from);
        Source::Node(node, port)
    }

    /// The target node id and optional input port of `to`.
    pub fn target(&self) -> (&str, Option<&str>) {
        split_port(&self.to)
    }
}

fn split_port(end: &str) -> (&str, Option<&str>) {
    match end.split_once('.') {
        Some((node, port)) => (node, Some(port)),
        None => (end, None),
    }
}

impl Manifest {
    /// Parses and validates JSON text (which may start with a UTF-8 byte-order mark).
    pub fn from_json(text: &str) -> Result<Self> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        if text.len() > MAX_MANIFEST_BYTES {
            return Err(Error::manifest("$", format!("manifest is {} bytes, more than the limit of {MAX_MANIFEST_BYTES}", text.len())));
        }
        // Two steps, as the Python runtime takes them too: the JSON itself (syntax, depth,
        // numbers, strings; the last of duplicated keys wins), then its shape.
        let mut de = serde_json::Deserializer::from_str(text);
        let value: Value = serde_path_to_error::deserialize(&mut de).map_err(located)?;
        de.end().map_err(|e| Error::manifest("$", e.to_string()))?;
        require_objects(&value)?;
        let manifest: Manifest = serde_path_to_error::deserialize(value).map_err(located)?;
        manifest.validate()?;
        Ok(manifest)
    }

    /// Serializes back to JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a manifest always serializes")
    }

    /// Index of the node with `id`.
    pub fn node_index(&self, id: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.id == id)
    }

    /// The pipeline's inputs in order, each with its declared caps (unknown fields
    /// where the declaration leaves them out): the named `inputs`, else the one input.
    pub fn input_caps(&self) -> Result<Vec<(String, Caps)>> {
        let caps = |v: &Value, at: &str| {
            Caps::from_json(v)
                .map_err(|(field, m)| Error::manifest(if field.is_empty() { at.to_string() } else { format!("{at}.{field}") }, m))
        };
        match (&self.input, &self.inputs) {
            (Some(_), Some(_)) => Err(Error::manifest("inputs", "give either \"input\" (one input) or \"inputs\" (named ones), not both")),
            (_, Some(inputs)) => inputs
                .iter()
                .enumerate()
                .map(|(i, d)| {
                    let fields = [("format", &d.format), ("channels", &d.channels), ("sample_rate", &d.sample_rate)];
                    let object: Map<String, Value> = fields.iter().filter_map(|(k, v)| (*v).clone().map(|v| (k.to_string(), v))).collect();
                    Ok((d.name.clone(), caps(&Value::Object(object), &format!("inputs[{i}]"))?))
                })
                .collect(),
            (Some(v), None) => Ok(vec![(DEFAULT_INPUT.to_string(), caps(v, "input")?)]),
            (None, None) => Ok(vec![(DEFAULT_INPUT.to_string(), Caps::audio(None, None, None))]),
        }
    }

    /// Index of the pipeline input called `name`.
    pub fn input_index(&self, name: &str) -> Option<usize> {
        match &self.inputs {
            Some(inputs) => inputs.iter().position(|d| d.name == name),
            None => (name == DEFAULT_INPUT).then_some(0),
        }
    }

    /// Whether some connection comes from a named input (`$name`): then inputs go only
    /// where such connections take them; else the one input goes to every source node.
    pub fn routes_inputs(&self) -> bool {
        self.connections.iter().any(|c| matches!(c.source(), Source::Input(_)))
    }

    /// Where the pipeline inputs go, in connection order (of a validated manifest).
    pub fn feeds(&self) -> Vec<Feed> {
        if self.routes_inputs() {
            return (self.connections.iter().enumerate())
                .filter_map(|(k, c)| match c.source() {
                    Source::Input(name) => {
                        let (node, port) = c.target();
                        Some(Feed {
                            input: self.input_index(name)?,
                            node: self.node_index(node)?,
                            port: port.map(str::to_string),
                            connection: Some(k),
                        })
                    }
                    Source::Node(..) => None,
                })
                .collect();
        }
        let fed: std::collections::HashSet<&str> = self.connections.iter().map(|c| c.target().0).collect();
        (0..self.nodes.len())
            .filter(|&i| !fed.contains(self.nodes[i].id.as_str()))
            .map(|node| Feed { input: 0, node, port: None, connection: None })
            .collect()
    }

    /// Structural checks: version, limits, ids, connection endpoints, input caps.
    pub fn validate(&self) -> Result<()> {
        self.input_caps()?;
        check_budget(self.latency_budget_ms).map_err(|m| Error::manifest("latency_budget_ms", m))?;
        if self.version != VERSION {
            return Err(Error::manifest("version", format!("unsupported version '{}', expected '{VERSION}'", self.version)));
        }
        if self.nodes.is_empty() {
            return Err(Error::manifest("nodes", "a pipeline needs at least one node"));
        }
        if self.nodes.len() > MAX_NODES {
            return Err(Error::manifest("nodes", format!("{} nodes, more than the limit of {MAX_NODES}", self.nodes.len())));
        }
        if self.connections.len() > MAX_CONNECTIONS {
            return Err(Error::manifest(
                "connections",
                format!("{} connections, more than the limit of {MAX_CONNECTIONS}", self.connections.len()),
            ));
        }
        let mut seen = std::collections::HashMap::new();
        for (i, node) in self.nodes.iter().enumerate() {
            check_id(&node.id, "node id").map_err(|m| Error::manifest(format!("nodes[{i}].id"), m))?;
            if let Some(first) = seen.insert(node.id.as_str(), i) {
                return Err(Error::manifest(format!("nodes[{i}].id"), format!("duplicate node id '{}' (also nodes[{first}])", node.id)));
            }
            if node.node_type.is_empty() {
                return Err(Error::manifest(format!("nodes[{i}].node_type"), "node_type is empty"));
            }
            if let Some(r) = &node.retry {
                check_retry(r).map_err(|(field, m)| Error::manifest(format!("nodes[{i}].retry.{field}"), m))?;
            }
            if let Some(t) = node.timeout_ms
                && !TIMEOUT_MS.contains(&t)
            {
                return Err(Error::manifest(format!("nodes[{i}].timeout_ms"), format!("{t} is outside {TIMEOUT_MS:?}")));
            }
            check_budget(node.latency_budget_ms).map_err(|m| Error::manifest(format!("nodes[{i}].latency_budget_ms"), m))?;
            if let Some(b) = &node.circuit_breaker {
                check_breaker(b).map_err(|(field, m)| Error::manifest(format!("nodes[{i}].circuit_breaker.{field}"), m))?;
            }
        }
        self.check_inputs()?;
        let mut edges = std::collections::HashSet::new();
        for (i, c) in self.connections.iter().enumerate() {
            match c.source() {
                Source::Input(name) => self.check_input_name(name, i)?,
                Source::Node(from, _) if !seen.contains_key(from) => {
                    let hint = did_you_mean(from, self.nodes.iter().map(|n| n.id.as_str()));
                    return Err(Error::manifest(format!("connections[{i}].from"), format!("no node with id '{from}'{hint}")));
                }
                Source::Node(..) => {}
            }
            let (to, _) = c.target();
            if !seen.contains_key(to) {
                let hint = did_you_mean(to, self.nodes.iter().map(|n| n.id.as_str()));
                return Err(Error::manifest(format!("connections[{i}].to"), format!("no node with id '{to}'{hint}")));
            }
            if !edges.insert((c.from.as_str(), c.to.as_str())) {
                return Err(Error::manifest(format!("connections[{i}]"), format!("duplicate connection '{}' -> '{}'", c.from, c.to)));
            }
        }
        self.check_fed()
    }

    /// The named inputs: how many, their names, unique.
    fn check_inputs(&self) -> Result<()> {
        let Some(inputs) = &self.inputs else { return Ok(()) };
        if inputs.is_empty() || inputs.len() > MAX_INPUTS {
            return Err(Error::manifest("inputs", format!("a pipeline has 1 to {MAX_INPUTS} named inputs, got {}", inputs.len())));
        }
        for (i, d) in inputs.iter().enumerate() {
            check_id(&d.name, "input name").map_err(|m| Error::manifest(format!("inputs[{i}].name"), m))?;
            if let Some(first) = inputs[..i].iter().position(|o| o.name == d.name) {
                return Err(Error::manifest(
                    format!("inputs[{i}].name"),
                    format!("duplicate input name '{}' (also inputs[{first}])", d.name),
                ));
            }
        }
        Ok(())
    }

    /// `$name` of connection `i` names a declared input.
    fn check_input_name(&self, name: &str, i: usize) -> Result<()> {
        if self.inputs.is_none() {
            return Err(Error::manifest(
                format!("connections[{i}].from"),
                format!("no pipeline input '${name}': declare it in \"inputs\" ([{{\"name\": \"{name}\"}}])"),
            ));
        }
        if self.input_index(name).is_none() {
            let names: Vec<&str> = self.inputs.iter().flatten().map(|d| d.name.as_str()).collect();
            let hint = did_you_mean(name, names.iter().copied());
            return Err(Error::manifest(
                format!("connections[{i}].from"),
                format!("no pipeline input '${name}'{hint}; inputs: {}", names.join(", ")),
            ));
        }
        Ok(())
    }

    /// Every input reaches a node, and with named inputs every node gets items.
    fn check_fed(&self) -> Result<()> {
        let inputs = self.inputs.as_deref().unwrap_or_default();
        if !self.routes_inputs() {
            if inputs.len() > 1 {
                return Err(Error::manifest(
                    "inputs",
                    format!(
                        "{} inputs are declared and no connection comes from one; connect each as {{\"from\": \"$name\", \"to\": ...}}",
                        inputs.len()
                    ),
                ));
            }
            return Ok(());
        }
        let feeds = self.feeds();
        if let Some(i) = (0..inputs.len()).find(|&i| !feeds.iter().any(|f| f.input == i)) {
            let name = &inputs[i].name;
            return Err(Error::manifest(
                format!("inputs[{i}]"),
                format!("input '{name}' feeds no node: no connection comes from '${name}'"),
            ));
        }
        let fed: std::collections::HashSet<&str> = self.connections.iter().map(|c| c.target().0).collect();
        if let Some(i) = self.nodes.iter().position(|n| !fed.contains(n.id.as_str())) {
            return Err(Error::manifest(
                format!("nodes[{i}]"),
                format!(
                    "node '{}' gets nothing: with named inputs (\"from\": \"$name\"), a node takes only what its connections bring, and it has none",
                    self.nodes[i].id
                ),
            ));
        }
        Ok(())
    }
}

/// A serde error as a manifest error at its JSON path.
fn located<E: std::fmt::Display>(e: serde_path_to_error::Error<E>) -> Error {
    let path = match e.path().to_string() {
        root if root == "." || root == "?" => "$".to_string(),
        path => path,
    };
    Error::manifest(path, e.into_inner().to_string())
}

/// Every place that holds a struct (the manifest, each node and connection, each
/// policy) holds a JSON object: serde would also take an array of the fields in order.
fn require_objects(v: &Value) -> Result<()> {
    fn object(v: &Value, path: &str, what: &str) -> Result<()> {
        match v {
            Value::Object(_) => Ok(()),
            other => Err(Error::manifest(path, format!("invalid type: {}, expected {what}", kind(other)))),
        }
    }
    object(v, "$", "a manifest object")?;
    for (list, what) in [("nodes", "a node object"), ("connections", "a connection object"), ("inputs", "an input object")] {
        let Some(Value::Array(items)) = v.get(list) else { continue };
        for (i, item) in items.iter().enumerate() {
            object(item, &format!("{list}[{i}]"), what)?;
            for policy in ["retry", "circuit_breaker"] {
                match item.get(policy) {
                    None | Some(Value::Null) => {}
                    Some(p) => object(p, &format!("{list}[{i}].{policy}"), "a policy object")?,
                }
            }
        }
    }
    Ok(())
}

/// How serde names a JSON value's kind in its messages.
fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "sequence",
        Value::Object(_) => "map",
    }
}

fn check_retry(r: &RetryPolicy) -> std::result::Result<(), (&'static str, String)> {
    if r.max_retries > MAX_RETRIES {
        return Err(("max_retries", format!("{} is more than {MAX_RETRIES}", r.max_retries)));
    }
    if r.base_ms > MAX_BASE_MS {
        return Err(("base_ms", format!("{} is more than {MAX_BASE_MS}", r.base_ms)));
    }
    if !FACTOR.contains(&r.factor) {
        return Err(("factor", format!("{} is outside {FACTOR:?}", r.factor)));
    }
    if r.max_ms < r.base_ms || r.max_ms > MAX_MAX_MS {
        return Err(("max_ms", format!("{} must be between base_ms and {MAX_MAX_MS}", r.max_ms)));
    }
    if !(0.0..=1.0).contains(&r.jitter) {
        return Err(("jitter", format!("{} is outside 0..=1", r.jitter)));
    }
    Ok(())
}

fn check_breaker(b: &BreakerPolicy) -> std::result::Result<(), (&'static str, String)> {
    if !FAILURES.contains(&b.failures) {
        return Err(("failures", format!("{} is outside {FAILURES:?}", b.failures)));
    }
    if b.cooldown_ms > MAX_COOLDOWN_MS {
        return Err(("cooldown_ms", format!("{} is more than {MAX_COOLDOWN_MS}", b.cooldown_ms)));
    }
    Ok(())
}

/// The manifest's limits and the JSON Schemas of its policy fields, with their defaults
/// and bounds, for the contract file the Python runtime reads.
pub fn rules() -> Value {
    let retry = serde_json::to_value(RetryPolicy::default()).expect("serializes");
    let breaker = serde_json::to_value(BreakerPolicy::default()).expect("serializes");
    serde_json::json!({
        "version": VERSION,
        "max_manifest_bytes": MAX_MANIFEST_BYTES,
        "max_nodes": MAX_NODES,
        "max_connections": MAX_CONNECTIONS,
        "max_id_len": MAX_ID_LEN,
        "max_inputs": MAX_INPUTS,
        "default_input": DEFAULT_INPUT,
        "runtime_hints": [RuntimeHint::Auto, RuntimeHint::Native, RuntimeHint::Python],
        "isolations": [Isolation::InProcess, Isolation::Process],
        "timeout_ms": {"type": "integer", "minimum": TIMEOUT_MS.start(), "maximum": TIMEOUT_MS.end()},
        "latency_budget_ms": {"type": "number", "exclusiveMinimum": LATENCY_BUDGET_MS.start(), "maximum": LATENCY_BUDGET_MS.end()},
        "retry": {"type": "object", "additionalProperties": false, "properties": {
            "max_retries": {"type": "integer", "minimum": 0, "maximum": MAX_RETRIES, "default": retry["max_retries"]},
            "base_ms": {"type": "integer", "minimum": 0, "maximum": MAX_BASE_MS, "default": retry["base_ms"]},
            "factor": {"type": "number", "minimum": FACTOR.start(), "maximum": FACTOR.end(), "default": retry["factor"]},
            "max_ms": {"type": "integer", "minimum": 0, "maximum": MAX_MAX_MS, "default": retry["max_ms"],
                       "description": "at least base_ms"},
            "jitter": {"type": "number", "minimum": 0, "maximum": 1, "default": retry["jitter"]},
        }},
        "circuit_breaker": {"type": "object", "additionalProperties": false, "properties": {
            "failures": {"type": "integer", "minimum": FAILURES.start(), "maximum": FAILURES.end(), "default": breaker["failures"]},
            "cooldown_ms": {"type": "integer", "minimum": 0, "maximum": MAX_COOLDOWN_MS, "default": breaker["cooldown_ms"]},
            "on_open": {"enum": [OnOpen::Fail, OnOpen::Skip], "default": breaker["on_open"]},
        }},
    })
}

/// Bounds of a latency budget, in ms.
pub const LATENCY_BUDGET_MS: std::ops::RangeInclusive<f64> = 0.0..=3_600_000.0;

fn check_budget(budget: Option<f64>) -> std::result::Result<(), String> {
    match budget {
        Some(b) if !(b > *LATENCY_BUDGET_MS.start() && b <= *LATENCY_BUDGET_MS.end()) => {
            Err(format!("{b} is outside (0, {}] ms", LATENCY_BUDGET_MS.end()))
        }
        _ => Ok(()),
    }
}

/// A node id or input name (`what`, for the message): 1 to `MAX_ID_LEN` characters of
/// `[A-Za-z0-9_-]`.
fn check_id(id: &str, what: &str) -> std::result::Result<(), String> {
    if id.is_empty() || id.len() > MAX_ID_LEN {
        return Err(format!("{what} must be 1 to {MAX_ID_LEN} characters"));
    }
    if !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        return Err(format!("{what} '{id}' may only hold ASCII letters, digits, '_' and '-'"));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
