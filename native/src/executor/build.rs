//! Building a pipeline: resolving node types, routing output ports, creating instances,
//! and grouping nodes into waves.

use crate::budget;
use std::sync::Arc;
use std::time::Duration;

use crate::caps::Caps;
use crate::data::Data;
use crate::error::{Error, Operation, Result};
use crate::isolation::{Isolated, Recipe, StartError};
use crate::manifest::{Isolation, Manifest, NodeDecl, RuntimeHint};
use crate::metrics::PipelineMetrics;
use crate::nodes::{Implementation, Node, NodeSpec, ParamError, ParamsSchema, Registry};

use super::call::Slot;
use super::plan::{Plan, negotiate};
use super::{Pipeline, PipelineGraph};

impl Pipeline {
    /// Validates `manifest` against `registry` and creates every node.
    /// A fresh instance of this pipeline: the same manifest and node types, new node
    /// instances (a model file is loaded once and shared).
    pub fn instance(&self) -> Result<Self> {
        Self::build(self.manifest.clone(), &self.registry)
    }

    pub fn build(manifest: Manifest, registry: &Registry) -> Result<Self> {
        let graph = PipelineGraph::from_manifest(&manifest)?;
        let inputs = manifest.input_caps()?;
        check_paths(&graph, &manifest)?;
        let mut specs = Vec::with_capacity(manifest.nodes.len());
        for (i, decl) in manifest.nodes.iter().enumerate() {
            let spec = registry
                .resolve(&decl.node_type, decl.runtime_hint)
                .map_err(|m| Error::manifest(format!("nodes[{i}].node_type"), format!("{m} (node '{}')", decl.id)))?;
            specs.push(spec);
        }
        for (k, e) in graph.edges().iter().enumerate() {
            let spec = &specs[e.from];
            let names = spec.output_ports(&manifest.nodes[e.from].params);
            if let Some(name) = e.port.as_deref().filter(|p| !names.iter().any(|q| q == p)) {
                return Err(Error::manifest(
                    format!("connections[{}].from", graph.connection(k)),
                    format!("node '{}' ({}) has no output port '{name}'; ports: {}", graph.ids()[e.from], spec.node_type, names.join(", ")),
                ));
            }
        }
        // params are checked (by creating the nodes) before the plan reads them
        let mut slots = Vec::with_capacity(specs.len());
        for (i, decl) in manifest.nodes.iter().enumerate() {
            let node = instance(&specs[i], decl, i)?;
            slots.push(Slot::new(node, decl, i, specs[i].create.clone()));
        }
        check_input_ports(&manifest, &specs)?;
        let declared: Vec<Caps> = inputs.iter().map(|(_, c)| c.clone()).collect();
        let plan = negotiate(&graph, &specs, &manifest, registry, &declared)?;
        let users = specs.len();
        let mut pipeline = Self {
            manifest,
            graph: graph.clone(),
            user_graph: graph,
            users,
            registry: registry.clone(),
            specs,
            slots,
            routes: Vec::new(),
            waves: Vec::new(),
            planned_for: vec![None; inputs.len()],
            seen: vec![false; inputs.len()],
            inputs,
            ports: Vec::new(),
            delivery: Vec::new(),
            plan: plan.clone(),
            streaming: false,
            clock: Default::default(),
            sinks: Vec::new(),
            sink_of: Vec::new(),
            metrics: PipelineMetrics::default(),
            metrics_on: true,
            fresh: true,
            memory: Box::default(),
        };
        pipeline.apply(plan)?;
        Ok(pipeline)
    }

    /// Makes the pipeline run `plan`: its inserted converters are created (unless the
    /// current plan has the same ones), and the graph, routes and waves remade.
    /// A converter both plans insert keeps its instance (and its stream state).
    fn apply(&mut self, plan: Plan) -> Result<()> {
        if self.routes.is_empty() || !plan.same_graph(&self.plan) {
            let (ids, specs) = self.all_nodes(&plan)?;
            let ports = self.input_ports(&plan, &specs);
            let mut old: Vec<Option<Slot>> = self.slots.split_off(self.users).into_iter().map(Some).collect();
            let mut slots = Vec::with_capacity(plan.inserted.len());
            for (k, ins) in plan.inserted.iter().enumerate() {
                let index = self.users + k;
                let kept = self.plan.inserted.iter().position(|o| o == ins).and_then(|j| old.get_mut(j)?.take());
                let slot = match kept {
                    Some(slot) => slot,
                    None => {
                        let decl = NodeDecl::inserted(&ins.id, &ins.node_type, ins.params.clone());
                        let node = instance(&specs[index], &decl, index)?;
                        Slot::new(node, &decl, index, specs[index].create.clone())
                    }
                };
                slots.push(slot);
            }
            let graph = PipelineGraph::new(ids, plan.edges.clone())?;
            let mut routes: Vec<Vec<Vec<(usize, usize)>>> = plan.out_ports.iter().map(|o| vec![Vec::new(); o.len()]).collect();
            for e in graph.edges() {
                let port = plan.out_index(e.from, e.port.as_deref());
                let to_port = e.to_port.as_deref().and_then(|p| ports[e.to].iter().position(|q| q == p)).unwrap_or(0);
                routes[e.from][port].push((e.to, to_port));
            }
            self.slots.append(&mut slots);
            self.waves = waves(&graph);
            self.graph = graph;
            self.specs = specs;
            self.ports = ports;
            self.routes = routes;
            self.sinks_for(&plan);
        }
        self.planned_for = plan.inputs.iter().map(Caps::sample_caps).collect();
        self.plan = plan;
        Ok(())
    }

    /// The input port names of `plan`'s nodes (`specs`: theirs).
    fn input_ports(&self, plan: &Plan, specs: &[Arc<NodeSpec>]) -> Vec<Vec<String>> {
        let params = |i: usize| if i < self.users { &self.manifest.nodes[i].params } else { &plan.inserted[i - self.users].params };
        specs.iter().enumerate().map(|(i, s)| s.ports(params(i)).inputs).collect()
    }

    /// Makes the sink metrics `plan`'s sinks have, keeping those of sinks it had.
    fn sinks_for(&mut self, plan: &Plan) {
        let mut old: std::collections::HashMap<String, crate::metrics::SinkMetrics> = std::mem::take(&mut self.sinks).into_iter().collect();
        self.sink_of = plan.out_ports.iter().map(|o| vec![None; o.len()]).collect();
        for (k, (node, port, key)) in plan.sinks.iter().enumerate() {
            self.sink_of[*node][*port] = Some(k);
            let mut m = old.remove(key).unwrap_or_default();
            m.budget_ms = self.manifest.nodes.get(*node).and_then(|d| d.latency_budget_ms).or(self.manifest.latency_budget_ms);
            self.sinks.push((key.clone(), m));
        }
    }

    /// Re-plans for `inputs` whose caps differ from those planned for: fields the
    /// manifest declares must match; the others are taken from each item, and inputs
    /// not given keep the caps they were planned for. Within a stream (`streaming`), a
    /// plan needing other converters is refused when an input already pushed in it
    /// changed.
    pub(super) fn replan(&mut self, inputs: &[(usize, Data)]) -> Result<()> {
        let mut caps = self.plan.inputs.clone();
        for (i, input) in inputs {
            caps[*i] = self.input_for(*i, &Caps::of(input))?;
        }
        let plan = self.negotiate(&caps)?;
        if self.streaming
            && !plan.same_graph(&self.plan)
            && let Some((i, _)) = inputs.iter().find(|(i, _)| self.seen[*i] && caps[*i] != self.plan.inputs[*i])
        {
            return Err(Error::InvalidArgument(format!(
                "this chunk is {}, the stream's earlier ones {}, which needs other converters; flush the stream before changing formats",
                caps[*i].describe(),
                self.plan.inputs[*i].describe()
            )));
        }
        self.apply(plan)
    }

    /// The plan this pipeline would make for inputs `arrived` (one caps per input; it
    /// keeps its own), as JSON.
    pub fn plan_for(&self, arrived: &[Caps]) -> Result<serde_json::Value> {
        if arrived.len() != self.inputs.len() {
            return Err(Error::InvalidArgument(format!(
                "the pipeline has {} inputs, caps were given for {}",
                self.inputs.len(),
                arrived.len()
            )));
        }
        let caps = arrived.iter().enumerate().map(|(i, c)| self.input_for(i, c)).collect::<Result<Vec<_>>>()?;
        let plan = self.negotiate(&caps)?;
        let (ids, specs) = self.all_nodes(&plan)?;
        let ports = self.input_ports(&plan, &specs);
        Ok(plan.to_json(&ids, &specs, &self.input_names(), &ports))
    }

    /// The ids and specs of `plan`'s nodes: the manifest's, then the inserted ones.
    fn all_nodes(&self, plan: &Plan) -> Result<(Vec<String>, Vec<Arc<NodeSpec>>)> {
        let mut ids = self.user_graph.ids().to_vec();
        let mut specs = self.specs[..self.users].to_vec();
        for ins in &plan.inserted {
            ids.push(ins.id.clone());
            specs.push(self.registry.resolve(&ins.node_type, RuntimeHint::Auto).map_err(Error::Internal)?);
        }
        Ok((ids, specs))
    }

    fn negotiate(&self, inputs: &[Caps]) -> Result<Plan> {
        negotiate(&self.user_graph, &self.specs[..self.users], &self.manifest, &self.registry, inputs)
    }

    /// The caps a plan is made for when input `i` comes with `arrived` caps: the fields
    /// the manifest declares, the others from `arrived`; a declared field it contradicts
    /// is an error.
    fn input_for(&self, i: usize, arrived: &Caps) -> Result<Caps> {
        let (name, declared) = &self.inputs[i];
        let mut caps = declared.clone();
        for (have, got) in caps.0.iter_mut().zip(&arrived.0) {
            match (&*have, got) {
                (Some(d), Some(a)) if d != a => {
                    let (a, d) = (arrived.describe(), declared.describe());
                    let field =
                        if self.manifest.inputs.is_some() { format!("input '{name}' in its \"inputs\"") } else { "its \"input\"".into() };
                    return Err(Error::InvalidArgument(format!("the input is {a}, but the manifest declares {d} ({field})")));
                }
                (None, a) => *have = a.clone(),
                _ => {}
            }
        }
        Ok(caps)
    }
}

/// Creates node `i` as `decl` says: in this process, or in a child process of its own.
fn instance(spec: &NodeSpec, decl: &NodeDecl, i: usize) -> Result<Box<dyn Node>> {
    let at = |p: &ParamError| if p.param.is_empty() { format!("nodes[{i}].params") } else { format!("nodes[{i}].params.{}", p.param) };
    let says = |p: &ParamError| format!("{} (node '{}', {})", p.message, decl.id, decl.node_type);
    let refused = |p: ParamError| spec.implementation.create_error(&at(&p), &says(&p));
    if !matches!(spec.implementation, Implementation::Host) {
        // params are checked against the schema before any code sees them: foreign code
        // gets only params its schema allows, and built-ins fail as the Python runtime's
        // twins do, with the same messages (a host's nodes are checked on its side)
        let schema =
            ParamsSchema::compile(&spec.params_schema).map_err(|m| Error::Internal(format!("params schema of {}: {m}", spec.node_type)))?;
        schema.check(&decl.params).map_err(|p| Error::manifest(at(&p), says(&p)))?;
    }
    match decl.isolation {
        Isolation::InProcess => {
            if spec.prefers_isolation {
                tracing::warn!(
                    node = decl.id.as_str(),
                    node_type = spec.node_type.as_str(),
                    "node type prefers to run in a process of its own; this manifest runs it in-process (set \"isolation\": \"process\")"
                );
            }
            (spec.create)(&decl.params).map_err(refused)
        }
        Isolation::Process => {
            if let Implementation::Host = spec.implementation {
                return Err(Error::manifest(
                    format!("nodes[{i}].isolation"),
                    format!(
                        "node '{}' ({}) is a Python node, which the native runtime calls in this process; process isolation here is for native and plugin nodes (the Python runtime isolates any node)",
                        decl.id, decl.node_type
                    ),
                ));
            }
            let recipe = Recipe::new(spec, &decl.params, decl.timeout_ms.map(Duration::from_millis));
            match Isolated::start(recipe) {
                Ok(node) => Ok(Box::new(node)),
                Err(StartError::Params(p)) => Err(refused(p)),
                Err(StartError::Process(failure)) => Err(Error::Node { node_id: decl.id.clone(), operation: Operation::Create, failure }),
            }
        }
    }
}

/// Every connection's input port is one its node has (its params read: a `Mix` has
/// one port per gain).
fn check_input_ports(manifest: &Manifest, specs: &[Arc<NodeSpec>]) -> Result<()> {
    for (k, c) in manifest.connections.iter().enumerate() {
        let (node, Some(port)) = c.target() else { continue };
        let i = manifest.node_index(node).expect("a validated manifest");
        let ports = specs[i].ports(&manifest.nodes[i].params);
        if ports.input_index(port).is_none() {
            let hint = crate::error::did_you_mean(port, ports.inputs.iter().map(String::as_str));
            return Err(Error::manifest(
                format!("connections[{k}].to"),
                format!("node '{node}' ({}) has no input port '{port}'{hint}; ports: {}", specs[i].node_type, ports.inputs.join(", ")),
            ));
        }
    }
    Ok(())
}

/// Refuses a graph where some node would get more than [`budget::MAX_PATHS`] copies of
/// each input item (one per path from an input: fan-out that joins again multiplies).
fn check_paths(graph: &PipelineGraph, manifest: &Manifest) -> Result<()> {
    let mut fed = vec![0u64; graph.ids().len()];
    manifest.feeds().iter().for_each(|f| fed[f.node] += 1);
    let mut paths = vec![0u64; graph.ids().len()];
    for &n in graph.order() {
        paths[n] = graph.predecessors(n).iter().fold(fed[n], |sum, &p| sum.saturating_add(paths[p]));
        if paths[n] > budget::MAX_PATHS {
            return Err(Error::manifest(
                format!("nodes[{n}]"),
                format!(
                    "node '{}' would get {} copies of each input item, one per path from a source; the limit is {}",
                    graph.ids()[n],
                    paths[n],
                    budget::MAX_PATHS
                ),
            ));
        }
    }
    Ok(())
}

/// Groups nodes by depth (one more than the deepest predecessor's), each wave sorted.
fn waves(graph: &PipelineGraph) -> Vec<Vec<usize>> {
    let mut depth = vec![0usize; graph.ids().len()];
    let mut waves: Vec<Vec<usize>> = Vec::new();
    for &n in graph.order() {
        depth[n] = graph.predecessors(n).iter().map(|&p| depth[p] + 1).max().unwrap_or(0);
        if waves.len() <= depth[n] {
            waves.resize(depth[n] + 1, Vec::new());
        }
        waves[depth[n]].push(n);
    }
    for wave in &mut waves {
        wave.sort_unstable();
    }
    waves
}
