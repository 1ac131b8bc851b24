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
    pub fn build(manifest: Manifest, registry: &Registry) -> Result<Self> {
        let graph = PipelineGraph::from_manifest(&manifest)?;
        check_paths(&graph)?;
        let input = manifest.input_caps()?;
        let mut specs = Vec::with_capacity(manifest.nodes.len());
        for (i, decl) in manifest.nodes.iter().enumerate() {
            let spec = registry
                .resolve(&decl.node_type, decl.runtime_hint)
                .map_err(|m| Error::manifest(format!("nodes[{i}].node_type"), format!("{m} (node '{}')", decl.id)))?;
            specs.push(spec);
        }
        // Edges are in connection order, so edge k is connections[k].
        for (k, e) in graph.edges().iter().enumerate() {
            let spec = &specs[e.from];
            if let Some(name) = e.port.as_deref().filter(|p| spec.port_index(p).is_none()) {
                return Err(Error::manifest(
                    format!("connections[{k}].from"),
                    format!(
                        "node '{}' ({}) has no output port '{name}'; ports: {}",
                        graph.ids()[e.from],
                        spec.node_type,
                        spec.outputs.join(", ")
                    ),
                ));
            }
        }
        // params are checked (by creating the nodes) before the plan reads them
        let mut slots = Vec::with_capacity(specs.len());
        for (i, decl) in manifest.nodes.iter().enumerate() {
            let node = instance(&specs[i], decl, i)?;
            slots.push(Slot::new(node, decl, i, specs[i].create.clone()));
        }
        let plan = negotiate(&graph, &specs, &manifest, registry, &input)?;
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
            planned_for: None,
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
    fn apply(&mut self, plan: Plan) -> Result<()> {
        if self.routes.is_empty() || !plan.same_graph(&self.plan) {
            let (ids, specs) = self.all_nodes(&plan)?;
            let mut slots = Vec::with_capacity(plan.inserted.len());
            for (k, ins) in plan.inserted.iter().enumerate() {
                let index = self.users + k;
                let decl = NodeDecl::inserted(&ins.id, &ins.node_type, ins.params.clone());
                let node = instance(&specs[index], &decl, index)?;
                slots.push(Slot::new(node, &decl, index, specs[index].create.clone()));
            }
            let graph = PipelineGraph::new(ids, plan.edges.clone())?;
            let mut routes: Vec<Vec<Vec<usize>>> = specs.iter().map(|s| vec![Vec::new(); s.outputs.len()]).collect();
            for e in graph.edges() {
                let port = e.port.as_deref().and_then(|p| specs[e.from].port_index(p)).unwrap_or(0);
                routes[e.from][port].push(e.to);
            }
            self.slots.truncate(self.users);
            self.slots.append(&mut slots);
            self.waves = waves(&graph);
            self.graph = graph;
            self.specs = specs;
            self.routes = routes;
            self.sinks_for(&plan);
        }
        self.planned_for = plan.input.sample_caps();
        self.plan = plan;
        Ok(())
    }

    /// Makes the sink metrics `plan`'s sinks have, keeping those of sinks it had.
    fn sinks_for(&mut self, plan: &Plan) {
        let mut old: std::collections::HashMap<String, crate::metrics::SinkMetrics> = std::mem::take(&mut self.sinks).into_iter().collect();
        self.sink_of = self.specs.iter().map(|s| vec![None; s.outputs.len()]).collect();
        for (k, (node, port, key)) in plan.sinks.iter().enumerate() {
            self.sink_of[*node][*port] = Some(k);
            let mut m = old.remove(key).unwrap_or_default();
            m.budget_ms = self.manifest.nodes.get(*node).and_then(|d| d.latency_budget_ms).or(self.manifest.latency_budget_ms);
            self.sinks.push((key.clone(), m));
        }
    }

    /// Re-plans for an `input` whose caps differ from those planned for: fields the
    /// manifest declares must match; the others are taken from `input`. Within a stream
    /// (`streaming`) a plan needing other converters is refused.
    pub(super) fn replan(&mut self, input: &Data) -> Result<()> {
        let caps = self.input_for(&Caps::of(input))?;
        let plan = self.negotiate(&caps)?;
        if self.streaming && !plan.same_graph(&self.plan) {
            return Err(Error::InvalidArgument(format!(
                "this chunk is {}, the stream's earlier ones {}, which needs other converters; flush the stream before changing formats",
                caps.describe(),
                self.plan.input.describe()
            )));
        }
        self.apply(plan)
    }

    /// The plan this pipeline would make for input `arrived` (it keeps its own), as JSON.
    pub fn plan_for(&self, arrived: &Caps) -> Result<serde_json::Value> {
        let plan = self.negotiate(&self.input_for(arrived)?)?;
        let (ids, specs) = self.all_nodes(&plan)?;
        Ok(plan.to_json(&ids, &specs))
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

    fn negotiate(&self, input: &Caps) -> Result<Plan> {
        negotiate(&self.user_graph, &self.specs[..self.users], &self.manifest, &self.registry, input)
    }

    /// The caps a plan is made for when input with `arrived` caps comes: the fields the
    /// manifest declares, the others from `arrived`; a declared field it contradicts is
    /// an error.
    fn input_for(&self, arrived: &Caps) -> Result<Caps> {
        let declared = self.manifest.input_caps()?;
        let mut caps = declared.clone();
        for (have, got) in caps.0.iter_mut().zip(&arrived.0) {
            match (&*have, got) {
                (Some(d), Some(a)) if d != a => {
                    let (a, d) = (arrived.describe(), declared.describe());
                    return Err(Error::InvalidArgument(format!("the input is {a}, but the manifest declares {d} (its \"input\")")));
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
    if let Implementation::Plugin(_) = spec.implementation {
        // foreign code gets only params its declared schema allows
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

/// Refuses a graph where some node would get more than [`budget::MAX_PATHS`] copies of
/// each input item (one per path from a source: fan-out that joins again multiplies).
fn check_paths(graph: &PipelineGraph) -> Result<()> {
    let mut paths = vec![0u64; graph.ids().len()];
    for &n in graph.order() {
        let preds = graph.predecessors(n);
        paths[n] = if preds.is_empty() { 1 } else { preds.iter().fold(0u64, |sum, &p| sum.saturating_add(paths[p])) };
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
