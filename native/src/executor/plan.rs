//! Caps negotiation: what every edge carries, and the converters inserted where a
//! node's input does not accept what arrives. The Python runtime's `plan.py` is the
//! same algorithm, step for step, so both runtimes make identical plans.
//!
//! Nodes are visited in topological order. A pipeline input goes where its
//! connections (or, without named inputs, the sources) take it; a node's inbound edges
//! arrive in connection order, each at one of its input ports. The first edge into a
//! port must fit what the port declares (its caps after any conversion become the
//! port's caps); every further edge into that port must bring exactly those caps (into
//! any port of an `aligned` node: those of its first edge). Where it does not, the
//! chain is, in this order: a `Downmix` when the channel count falls, a `Resample`, a
//! `Downmix` when it rises, then a `FormatConverter` to the format wanted. Before a
//! converter that does not take the current format (`Resample` takes f32, a mixing
//! `Downmix` float), a `FormatConverter` to the one it prefers comes first. A value not
//! taken is converted to the first the node lists (a range: the nearest). Chains from
//! one output port (or one input) share their common first steps. Unknown caps fields
//! (before the first chunk, or after an undeclared node) pass unchecked.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::caps::{Caps, FIELDS, Ports, Rule};
use crate::error::{Error, Result};
use crate::manifest::{Manifest, RuntimeHint};
use crate::nodes::{NodeSpec, Registry};

use super::graph::{Edge, PipelineGraph};
use super::latency::{self, Path};

/// A converter the plan inserts on an edge.
#[derive(Debug, Clone, PartialEq)]
pub struct Inserted {
    pub id: String,
    pub node_type: String,
    pub params: Map<String, Value>,
}

/// Where a pipeline input goes in a plan: `input` (its index) to node `node`'s input
/// port `port`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Feed {
    pub input: usize,
    pub node: usize,
    pub port: usize,
}

/// A negotiated pipeline: the manifest's nodes (indices `0..n`), then the inserted
/// ones, their caps, and the edges between them all.
#[derive(Debug, Clone)]
pub struct Plan {
    /// What each pipeline input carries, in the manifest's order.
    pub inputs: Vec<Caps>,
    pub inserted: Vec<Inserted>,
    pub edges: Vec<Edge>,
    /// Where the pipeline inputs go (to inserted converters where they need one).
    pub feeds: Vec<Feed>,
    /// What each node's input ports carry.
    pub node_in: Vec<Arc<[Caps]>>,
    /// What each node's output ports carry.
    pub node_out: Vec<Vec<Caps>>,
    /// Each node's output port names (its type's, or those its params name).
    pub out_ports: Vec<Vec<String>>,
    /// Each node's algorithmic latency in ms (`None`: unknown).
    pub latency_ms: Vec<Option<f64>>,
    /// The worst path from the inputs to each node.
    pub paths: Vec<Option<Path>>,
    /// Every sink output: its node, port and result key (`id` or `id.port`).
    pub sinks: Vec<(usize, usize, String)>,
}

impl Plan {
    /// Adds each node's latency, the worst path to every node and the sink outputs, and
    /// checks the manifest's budgets (`ids` and `specs`: the manifest's nodes, then the
    /// inserted ones).
    fn add_latency(&mut self, ids: &[String], specs: &[Arc<NodeSpec>], manifest: &Manifest) -> Result<()> {
        let n = manifest.nodes.len();
        let decls = &manifest.nodes;
        self.latency_ms = (0..specs.len())
            .map(|i| {
                let params = if i < n { &decls[i].params } else { &self.inserted[i - n].params };
                let input = &self.node_in[i][0];
                let frames = specs[i].latency.as_ref().and_then(|f| f(params, input));
                let out = self.node_out[i].first().filter(|c| c.is_audio() == Some(true)).and_then(Caps::rate);
                latency::to_ms(frames, out.or(input.rate()))
            })
            .collect();
        let run = PipelineGraph::new(ids.to_vec(), self.edges.clone())?;
        let mut fed = vec![false; ids.len()];
        self.feeds.iter().for_each(|f| fed[f.node] = true);
        self.paths = latency::worst_paths(ids.len(), &self.edges, run.order(), &fed, &self.latency_ms);
        let fed: std::collections::HashSet<(usize, usize)> =
            self.edges.iter().map(|e| (e.from, self.out_index(e.from, e.port.as_deref()))).collect();
        for (i, names) in self.out_ports.iter().enumerate() {
            for (p, port) in names.iter().enumerate() {
                if !fed.contains(&(i, p)) {
                    self.sinks.push((i, p, if p == 0 { ids[i].clone() } else { format!("{}.{port}", ids[i]) }));
                }
            }
        }
        let sink_nodes: Vec<usize> = self.sinks.iter().map(|(i, _, _)| *i).collect();
        latency::check_budgets(manifest, &self.paths, &sink_nodes, ids, &self.latency_ms)?;
        Ok(())
    }

    /// The index of `node`'s output port `name` (`None`, or a name it lacks: the first).
    pub fn out_index(&self, node: usize, name: Option<&str>) -> usize {
        name.and_then(|q| self.out_ports[node].iter().position(|p| p == q)).unwrap_or(0)
    }

    /// Whether `other` runs the same nodes on the same edges (caps may differ).
    pub fn same_graph(&self, other: &Plan) -> bool {
        self.inserted == other.inserted && self.edges == other.edges && self.feeds == other.feeds
    }

    /// The plan as JSON: `{"input" (the first input's caps), "inputs": {name: caps},
    /// "nodes": [{"id", "node_type", "inserted", "input" (its first port's caps),
    /// "inputs": {port: caps}, "outputs": {port: caps}, "latency_ms", "params" (inserted
    /// nodes)}], "edges": [{"from", "port", "to", "to_port", "caps"}], "feeds":
    /// [{"input", "to", "to_port", "caps"}], "paths": {sink key: {"latency_ms", "nodes":
    /// [{"id", "latency_ms"}]}}}`: a path is the worst from an input to that sink.
    /// `names` are the pipeline inputs' names, `ports` each node's input port names.
    pub fn to_json(&self, ids: &[String], specs: &[Arc<NodeSpec>], names: &[String], ports: &[Vec<String>]) -> Value {
        let users = ids.len() - self.inserted.len();
        let nodes: Vec<Value> = (0..ids.len())
            .map(|i| {
                let outputs: Map<String, Value> =
                    self.out_ports[i].iter().zip(&self.node_out[i]).map(|(p, c)| (p.clone(), c.to_json())).collect();
                let inputs: Map<String, Value> =
                    ports[i].iter().zip(self.node_in[i].iter()).map(|(p, c)| (p.clone(), c.to_json())).collect();
                let mut node = json!({
                    "id": ids[i], "node_type": specs[i].node_type, "inserted": i >= users,
                    "input": self.node_in[i][0].to_json(), "inputs": inputs, "outputs": outputs, "latency_ms": self.latency_ms[i],
                });
                if let Some(ins) = i.checked_sub(users).map(|k| &self.inserted[k]) {
                    node["params"] = ins.params.clone().into();
                }
                node
            })
            .collect();
        let edges: Vec<Value> = self
            .edges
            .iter()
            .map(|e| {
                let port = self.out_index(e.from, e.port.as_deref());
                let to_port = e.to_port.as_deref().unwrap_or(&ports[e.to][0]);
                json!({"from": ids[e.from], "port": self.out_ports[e.from][port], "to": ids[e.to], "to_port": to_port,
                       "caps": self.node_out[e.from][port].to_json()})
            })
            .collect();
        let feeds: Vec<Value> = (self.feeds.iter())
            .map(|f| json!({"input": names[f.input], "to": ids[f.node], "to_port": ports[f.node][f.port], "caps": self.inputs[f.input].to_json()}))
            .collect();
        let inputs: Map<String, Value> = names.iter().zip(&self.inputs).map(|(n, c)| (n.clone(), c.to_json())).collect();
        let paths = latency::sinks_json(&self.paths, &self.sinks, ids, &self.latency_ms);
        json!({"input": self.inputs[0].to_json(), "inputs": inputs, "nodes": nodes, "edges": edges, "feeds": feeds, "paths": paths})
    }
}

/// Where an edge's items come from: a pipeline input, or a node's output port.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Origin {
    Input(usize),
    Port(usize, usize),
}

/// An edge into a node: its connection index (none for the one input fed implicitly),
/// where its items come from, the output port as the manifest wrote it, and the input
/// port it arrives at.
struct Inbound {
    connection: Option<usize>,
    origin: Origin,
    written: Option<String>,
    port: usize,
}

/// One converter of a chain.
struct Step {
    spec: Arc<NodeSpec>,
    role: String,
    params: Map<String, Value>,
}

/// Negotiates `graph` (the manifest's, with `specs` resolved and ports checked) for
/// `inputs` caps (one per pipeline input). With `auto_convert` off, a needed converter
/// is an error instead, as is a path over a latency budget.
pub fn negotiate(
    graph: &PipelineGraph,
    specs: &[Arc<NodeSpec>],
    manifest: &Manifest,
    registry: &Registry,
    inputs: &[Caps],
) -> Result<Plan> {
    let n = specs.len();
    let decls = &manifest.nodes;
    let auto_convert = manifest.auto_convert.unwrap_or(true);
    let names: Vec<String> = manifest.input_caps()?.into_iter().map(|(name, _)| name).collect();
    let mut plan = Plan {
        inputs: inputs.to_vec(),
        inserted: Vec::new(),
        edges: Vec::new(),
        feeds: Vec::new(),
        node_in: vec![Arc::from([]); n],
        node_out: vec![Vec::new(); n],
        out_ports: vec![Vec::new(); n],
        latency_ms: Vec::new(),
        paths: Vec::new(),
        sinks: Vec::new(),
    };
    let mut specs: Vec<Arc<NodeSpec>> = specs.to_vec();
    let ports: Vec<Ports> = (0..n).map(|i| specs[i].ports(&decls[i].params)).collect();
    // chain prefixes already inserted, by origin and steps: the node ending each
    let mut shared: HashMap<(Origin, String), usize> = HashMap::new();
    // ids of the inserted nodes
    let mut taken: std::collections::HashSet<String> = std::collections::HashSet::new();
    let converters = Converters::new(registry)?;
    // each node's inbound edges, sorted into connection order below (an implicit feed first)
    let mut into: Vec<Vec<Inbound>> = (0..n).map(|_| Vec::new()).collect();
    for f in manifest.feeds() {
        let port = f.port.as_deref().and_then(|p| ports[f.node].input_index(p)).unwrap_or(0);
        into[f.node].push(Inbound { connection: f.connection, origin: Origin::Input(f.input), written: None, port });
    }
    for (k, e) in graph.edges().iter().enumerate() {
        let from_port = e.port.as_deref().and_then(|p| ports[e.from].outputs.iter().position(|q| q == p)).unwrap_or(0);
        let port = e.to_port.as_deref().and_then(|p| ports[e.to].input_index(p)).unwrap_or(0);
        let connection = Some(graph.connection(k));
        into[e.to].push(Inbound { connection, origin: Origin::Port(e.from, from_port), written: e.port.clone(), port });
    }
    for &v in graph.order() {
        let mut inbound = std::mem::take(&mut into[v]);
        inbound.sort_by_key(|i| i.connection);
        let many = ports[v].inputs.len() > 1;
        // the caps of each input port (of port 0 for all, when aligned)
        let mut port_caps: Vec<Option<Caps>> = vec![None; ports[v].inputs.len()];
        for Inbound { connection, origin, written, port } in inbound {
            let slot = if ports[v].aligned { 0 } else { port };
            let arriving = carried(&plan, origin);
            let want = match &port_caps[slot] {
                None => ports[v].accept[port].clone(),
                Some(c) => exactly(c, &ports[v].accept[port]),
            };
            let at = connection.map_or_else(|| names[0].clone(), |k| format!("connections[{k}]"));
            let from_label = match origin {
                Origin::Input(i) if manifest.inputs.is_none() => names[i].clone(),
                Origin::Input(i) => format!("${}", names[i]),
                Origin::Port(from, 0) => graph.ids()[from].clone(),
                Origin::Port(from, port) => format!("{}.{}", graph.ids()[from], plan.out_ports[from][port]),
            };
            let target = if many { format!("{}.{}", graph.ids()[v], ports[v].inputs[port]) } else { graph.ids()[v].clone() };
            let fail = |why: String| {
                let accepts = match &port_caps[slot] {
                    None => ports[v].describe_accept(port),
                    Some(c) => format!("exactly {} (what its first input brings)", c.describe()),
                };
                Error::manifest(
                    at.clone(),
                    format!("'{from_label}' brings {}; '{target}' ({}) takes {accepts}: {why}", arriving.describe(), specs[v].node_type),
                )
            };
            let steps = chain(&arriving, &want, &converters).map_err(fail)?;
            if !steps.is_empty() && !auto_convert {
                let fix = steps.iter().map(Step::describe).collect::<Vec<_>>().join(" → ");
                return Err(fail(format!("auto_convert is off; inserting {fix} would fix it")));
            }
            let mut caps = arriving.clone();
            let mut tail = origin;
            let mut key = String::new();
            for step in steps {
                key.push_str(&format!("|{}{}", step.spec.node_type, Value::Object(step.params.clone())));
                caps = step.spec.ports(&step.params).output(0, &caps);
                let index = match shared.get(&(origin, key.clone())) {
                    Some(&index) => index,
                    None => {
                        let index = specs.len();
                        let mut id = format!("{from_label}→{}.{}", graph.ids()[v], step.role);
                        while !taken.insert(id.clone()) {
                            id.push('~');
                        }
                        plan.inserted.push(Inserted { id, node_type: step.spec.node_type.clone(), params: step.params.clone() });
                        plan.node_in.push(Arc::from([carried(&plan, tail)]));
                        plan.node_out.push(vec![caps.clone()]);
                        plan.out_ports.push(step.spec.outputs.clone());
                        connect(&mut plan, tail, index, 0, None);
                        specs.push(step.spec.clone());
                        shared.insert((origin, key.clone()), index);
                        index
                    }
                };
                tail = Origin::Port(index, 0);
            }
            let to_port = (port > 0).then(|| ports[v].inputs[port].clone());
            match tail {
                Origin::Port(from, _) if from < n && tail == origin => plan.edges.push(Edge { from, port: written, to: v, to_port }),
                _ => connect(&mut plan, tail, v, port, to_port),
            }
            port_caps[slot].get_or_insert(caps);
        }
        let caps: Vec<Caps> =
            (0..ports[v].inputs.len()).map(|p| port_caps[if ports[v].aligned { 0 } else { p }].clone().unwrap_or_default()).collect();
        plan.node_out[v] = (0..ports[v].outputs.len()).map(|p| ports[v].output(p, &caps[0])).collect();
        plan.out_ports[v] = ports[v].outputs.clone();
        plan.node_in[v] = caps.into();
    }
    let ids: Vec<String> = graph.ids().iter().cloned().chain(plan.inserted.iter().map(|i| i.id.clone())).collect();
    plan.add_latency(&ids, &specs, manifest)?;
    Ok(plan)
}

/// Makes what leaves `origin` go to node `to`'s input port `port` (named `name`; `None`
/// for the first): an edge from a node's output port, or a feed of a pipeline input.
fn connect(plan: &mut Plan, origin: Origin, to: usize, port: usize, name: Option<String>) {
    match origin {
        Origin::Port(from, out) => {
            let port = (out > 0).then(|| plan.out_ports[from][out].clone());
            plan.edges.push(Edge { from, port, to, to_port: name })
        }
        Origin::Input(input) => plan.feeds.push(Feed { input, node: to, port }),
    }
}

/// What leaves `origin`: a pipeline input, or a node's output port.
fn carried(plan: &Plan, origin: Origin) -> Caps {
    match origin {
        Origin::Input(i) => plan.inputs[i].clone(),
        Origin::Port(from, port) => plan.node_out[from][port].clone(),
    }
}

/// Rules that take exactly `caps`; its unknown fields as `accept` takes them.
fn exactly(caps: &Caps, accept: &[Rule; 4]) -> [Rule; 4] {
    std::array::from_fn(|f| caps.0[f].clone().map_or_else(|| accept[f].clone(), Rule::One))
}

/// The converter node types, from the registry.
struct Converters {
    format: Arc<NodeSpec>,
    downmix: Arc<NodeSpec>,
    resample: Arc<NodeSpec>,
}

impl Converters {
    fn new(registry: &Registry) -> Result<Self> {
        let get = |t: &str| registry.resolve(t, RuntimeHint::Auto).map_err(Error::Internal);
        Ok(Self { format: get("FormatConverter")?, downmix: get("Downmix")?, resample: get("Resample")? })
    }
}

impl Step {
    /// For messages: `FormatConverter(format=f32)`, `Downmix`, `Resample(target_rate=16000)`.
    fn describe(&self) -> String {
        if self.params.is_empty() {
            return self.spec.node_type.clone();
        }
        let params: Vec<String> =
            self.params.iter().map(|(k, v)| format!("{k}={}", v.as_str().map_or(v.to_string(), str::to_string))).collect();
        format!("{}({})", self.spec.node_type, params.join(", "))
    }
}

/// The converters that take `from` to caps `want` accepts (none when it already does),
/// or why there are none.
fn chain(from: &Caps, want: &[Rule; 4], converters: &Converters) -> std::result::Result<Vec<Step>, String> {
    let known = |f: usize| from.0[f].as_ref();
    if let Some(kind) = known(0)
        && !want[0].accepts(Some(kind))
    {
        let wanted = if kind == "audio" { "JSON events" } else { "audio" };
        return Err(format!("it needs {wanted}, and no converter turns one into the other"));
    }
    if from.is_audio() != Some(true) {
        return Ok(Vec::new());
    }
    let target = |f: usize| known(f).filter(|v| !want[f].accepts(Some(v))).map(|v| want[f].prefer(v));
    let (channels, rate) = (target(2), target(3));
    let mut steps = Vec::new();
    let mut caps = from.clone();
    let falls = match (&channels, known(2)) {
        (Some(to), Some(now)) => to.as_u64() < now.as_u64(),
        _ => false,
    };
    let downmix = |caps: &Caps, to: &Value| {
        let to = to.as_u64().unwrap_or(1);
        let now = caps.0[2].as_ref().and_then(Value::as_u64).unwrap_or(1).max(1);
        let params =
            if to == 1 { Map::new() } else { Map::from_iter([("map".to_string(), json!((0..to).map(|c| c % now).collect::<Vec<_>>()))]) };
        (converters.downmix.clone(), "downmix".to_string(), params)
    };
    let resample =
        |to: &Value| (converters.resample.clone(), "resample".to_string(), Map::from_iter([("target_rate".to_string(), to.clone())]));
    let mut stages = Vec::new();
    if let (true, Some(to)) = (falls, &channels) {
        stages.push(downmix(&caps, to));
    }
    if let Some(to) = &rate {
        stages.push(resample(to));
    }
    for (spec, role, params) in stages {
        push(&mut steps, &mut caps, spec, role, params, converters)?;
    }
    if let (false, Some(to)) = (falls, &channels) {
        let (spec, role, params) = downmix(&caps, to);
        push(&mut steps, &mut caps, spec, role, params, converters)?;
    }
    if let Some(format) = caps.0[1].clone().filter(|v| !want[1].accepts(Some(v))) {
        let to = want[1].prefer(&format);
        push(
            &mut steps,
            &mut caps,
            converters.format.clone(),
            format!("to_{}", to.as_str().unwrap_or_default()),
            Map::from_iter([("format".to_string(), to)]),
            converters,
        )?;
    }
    let left: Vec<&str> = (0..4).filter(|&f| !want[f].accepts(caps.0[f].as_ref())).map(|f| FIELDS[f]).collect();
    if !left.is_empty() {
        return Err(format!("no converter chain gives an accepted {}", left.join(" and ")));
    }
    Ok(steps)
}

/// Appends converter `spec` with `params` to `steps`, a FormatConverter first when it
/// does not take the current format; fails when it still does not take `caps`.
fn push(
    steps: &mut Vec<Step>,
    caps: &mut Caps,
    spec: Arc<NodeSpec>,
    role: String,
    params: Map<String, Value>,
    converters: &Converters,
) -> std::result::Result<(), String> {
    let ports = spec.ports(&params);
    if let Some(format) = caps.0[1].clone().filter(|v| !ports.accept[0][1].accepts(Some(v))) {
        let to = ports.accept[0][1].prefer(&format);
        let fc = Map::from_iter([("format".to_string(), to.clone())]);
        *caps = converters.format.ports(&fc).output(0, caps);
        steps.push(Step { spec: converters.format.clone(), role: format!("to_{}", to.as_str().unwrap_or_default()), params: fc });
    }
    if !ports.accepts(0, caps) {
        return Err(format!("{} cannot take {} (it takes {})", spec.node_type, caps.describe(), ports.describe_accept(0)));
    }
    *caps = ports.output(0, caps);
    steps.push(Step { spec, role, params });
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::data::{AudioBuffer, Data, SampleBuf, Samples};
    use crate::error::Error;
    use crate::executor::Pipeline;
    use crate::manifest::Manifest;
    use crate::runtime::Runtime;

    fn build(manifest: serde_json::Value) -> crate::Result<Pipeline> {
        Pipeline::build(Manifest::from_json(&manifest.to_string())?, &crate::nodes::Registry::builtin())
    }

    fn inserted(plan: &serde_json::Value) -> Vec<(String, String)> {
        let nodes = plan["nodes"].as_array().unwrap();
        nodes
            .iter()
            .filter(|n| n["inserted"] == true)
            .map(|n| (n["id"].as_str().unwrap().into(), n["node_type"].as_str().unwrap().into()))
            .collect()
    }

    fn vad(input: serde_json::Value) -> serde_json::Value {
        json!({"version": "1", "input": input, "nodes": [{"id": "vad", "node_type": "VAD"}]})
    }

    #[test]
    fn stereo_int16_at_44k1_into_vad_gets_three_converters() {
        let p = build(vad(json!({"format": "i16", "channels": 2, "sample_rate": 44100}))).unwrap();
        let plan = p.plan_json();
        let want = [("input→vad.to_f32", "FormatConverter"), ("input→vad.downmix", "Downmix"), ("input→vad.resample", "Resample")];
        assert_eq!(inserted(&plan), want.map(|(a, b)| (a.to_string(), b.to_string())));
        assert_eq!(plan["nodes"][0]["input"], json!({"kind": "audio", "format": "f32", "channels": 1, "sample_rate": 16000}));
        assert_eq!(plan["nodes"][3]["params"], json!({"target_rate": 16000}));
        assert!(plan["nodes"][0].get("params").is_none(), "the manifest's own nodes are as it says");
        let edges: Vec<(&str, &str)> =
            plan["edges"].as_array().unwrap().iter().map(|e| (e["from"].as_str().unwrap(), e["to"].as_str().unwrap())).collect();
        assert_eq!(
            edges,
            [("input→vad.to_f32", "input→vad.downmix"), ("input→vad.downmix", "input→vad.resample"), ("input→vad.resample", "vad")]
        );
    }

    #[test]
    fn accepted_input_inserts_nothing_and_float64_mono_is_converted_once() {
        let p = build(vad(json!({"format": "f32", "channels": 1, "sample_rate": 48000}))).unwrap();
        assert!(inserted(&p.plan_json()).is_empty(), "the spectral engine takes 48 kHz");
        let p = build(vad(json!({"format": "f64", "channels": 1, "sample_rate": 16000}))).unwrap();
        assert_eq!(inserted(&p.plan_json()), [("input→vad.to_f32".to_string(), "FormatConverter".to_string())]);
    }

    #[test]
    fn auto_convert_off_names_the_connection_and_the_fix() {
        let mut m = json!({"version": "1", "auto_convert": false, "input": {"format": "i16", "channels": 2, "sample_rate": 44100},
            "nodes": [{"id": "g", "node_type": "Gain"}, {"id": "vad", "node_type": "VAD"}], "connections": [{"from": "g", "to": "vad"}]});
        match build(m.clone()) {
            Err(Error::Manifest { path, message }) => {
                assert_eq!(path, "connections[0]");
                assert!(message.contains("'g' brings i16, 2 ch, 44100 Hz"), "{message}");
                assert!(message.contains("FormatConverter(format=f32) → Downmix → Resample(target_rate=16000)"), "{message}");
            }
            other => panic!("expected a manifest error, got {:?}", other.map(|_| ())),
        }
        m["auto_convert"] = json!(true);
        assert_eq!(inserted(&build(m).unwrap().plan_json()).len(), 3);
    }

    #[test]
    fn json_into_an_audio_input_fails_whatever_auto_convert_says() {
        let m = json!({"version": "1", "nodes": [{"id": "vad", "node_type": "VAD"}, {"id": "rs", "node_type": "Resample", "params": {"target_rate": 8000}}],
            "connections": [{"from": "vad.segments", "to": "rs"}]});
        match build(m) {
            Err(Error::Manifest { path, message }) => {
                assert_eq!(path, "connections[0]");
                assert!(message.contains("'vad.segments' brings JSON events") && message.contains("no converter"), "{message}");
            }
            other => panic!("expected a manifest error, got {:?}", other.map(|_| ())),
        }
    }

    #[test]
    fn fan_out_shares_the_common_steps() {
        let m = json!({"version": "1", "input": {"format": "i16", "channels": 2, "sample_rate": 44100},
            "nodes": [{"id": "src", "node_type": "PassThrough"}, {"id": "a", "node_type": "VAD"}, {"id": "b", "node_type": "VAD", "params": {"frame_ms": 10}},
                      {"id": "m", "node_type": "Resample", "params": {"target_rate": 8000}}],
            "connections": [{"from": "src", "to": "a"}, {"from": "src", "to": "b"}, {"from": "src", "to": "m"}]});
        let ids: Vec<String> = inserted(&build(m).unwrap().plan_json()).into_iter().map(|(id, _)| id).collect();
        // a and b need the same chain; m (stereo f32 at any rate) only the f32 step
        assert_eq!(ids, ["src→a.to_f32", "src→a.downmix", "src→a.resample"]);
    }

    #[test]
    fn fan_in_converts_later_edges_to_the_first_edges_caps() {
        let m = json!({"version": "1", "input": {"format": "f32", "channels": 1, "sample_rate": 16000},
            "nodes": [{"id": "x", "node_type": "Resample", "params": {"target_rate": 8000}}, {"id": "y", "node_type": "PassThrough"}, {"id": "j", "node_type": "Rechunk", "params": {"frame_samples": 160}}],
            "connections": [{"from": "x", "to": "j"}, {"from": "y", "to": "j"}]});
        let plan = build(m).unwrap().plan_json();
        assert_eq!(inserted(&plan), [("y→j.resample".to_string(), "Resample".to_string())]);
        let j = &plan["nodes"][2];
        assert_eq!(j["input"]["sample_rate"], 8000);
    }

    #[test]
    fn plan_is_made_at_the_first_chunk_and_kept_for_the_same_caps() {
        let rt = Runtime::new().unwrap();
        let mut p = build(vad(serde_json::Value::Null)).unwrap();
        assert!(inserted(&p.plan_json()).is_empty(), "nothing is known before the first chunk");
        let stereo = |rate| Data::Audio(AudioBuffer::new(Samples::I16(SampleBuf::owned(vec![0; 4410 * 2])), 2, rate).unwrap());
        rt.run(&mut p, stereo(44100)).unwrap();
        assert_eq!(inserted(&p.plan_json()).len(), 3);
        assert_eq!(p.graph().ids().len(), 4);
        rt.run(&mut p, stereo(48000)).unwrap();
        assert_eq!(inserted(&p.plan_json()).len(), 2, "48 kHz needs no resampler");
    }

    #[test]
    fn declared_input_must_match_the_chunks() {
        let rt = Runtime::new().unwrap();
        let mut p = build(vad(json!({"channels": 1}))).unwrap();
        let stereo = Data::Audio(AudioBuffer::new(Samples::F32(SampleBuf::owned(vec![0.0; 320])), 2, 16000).unwrap());
        match rt.run(&mut p, stereo) {
            Err(Error::InvalidArgument(m)) => assert!(m.contains("declares ?, 1 ch, ? Hz"), "{m}"),
            other => panic!("expected an invalid argument, got {:?}", other.map(|_| ())),
        }
    }
}
