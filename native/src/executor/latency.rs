//! Latency in a plan: each node's algorithmic latency in ms, the worst path from the
//! input to each sink output, and the budgets a manifest sets on them. The Python
//! runtime's `plan.py` computes the same, in the same order of operations.

use serde_json::{Map, Value, json};

use crate::error::{Error, Result};
use crate::manifest::Manifest;

use super::graph::Edge;

/// The worst (most latent) path from the input to one node.
#[derive(Debug, Clone, PartialEq)]
pub struct Path {
    /// Its nodes, from the one the input feeds to the last.
    pub nodes: Vec<usize>,
    /// The sum of its nodes' known latencies, in ms.
    pub ms: f64,
}

/// A node's latency in ms: `frames` at `rate`; 0 frames need no rate.
pub fn to_ms(frames: Option<usize>, rate: Option<u32>) -> Option<f64> {
    match frames? {
        0 => Some(0.0),
        f => rate.map(|r| f as f64 * 1000.0 / f64::from(r)),
    }
}

/// The worst path from the inputs to every node (`None` for a node they do not reach),
/// over `n` nodes joined by `edges` and visited in topological `order`; paths start at
/// the nodes `fed` marks (those a pipeline input feeds). A node's own latency counts;
/// unknown latencies count as 0. Of equal paths the first found (an input's, then in
/// edge order) is kept.
pub fn worst_paths(n: usize, edges: &[Edge], order: &[usize], fed: &[bool], ms: &[Option<f64>]) -> Vec<Option<Path>> {
    let mut inbound: Vec<Vec<usize>> = vec![Vec::new(); n];
    for e in edges {
        inbound[e.to].push(e.from);
    }
    let mut best: Vec<Option<(f64, Option<usize>)>> = vec![None; n];
    for &v in order {
        let own = ms[v].unwrap_or(0.0);
        if fed[v] {
            best[v] = Some((own, None));
        }
        for &u in &inbound[v] {
            if let Some((total, _)) = best[u] {
                let candidate = total + own;
                if best[v].is_none_or(|(b, _)| candidate > b) {
                    best[v] = Some((candidate, Some(u)));
                }
            }
        }
    }
    (0..n)
        .map(|v| {
            let (ms, _) = best[v]?;
            let mut nodes = vec![v];
            while let Some((_, Some(u))) = best[*nodes.last().expect("not empty")] {
                nodes.push(u);
            }
            nodes.reverse();
            Some(Path { nodes, ms })
        })
        .collect()
}

/// `ms` rounded to 0.1 for messages, the same way on both runtimes.
fn show(ms: f64) -> String {
    let tenths = (ms * 10.0 + 0.5).floor() as i64;
    format!("{}.{}", tenths / 10, tenths % 10)
}

/// The path as JSON: `{"latency_ms", "nodes": [{"id", "latency_ms"}]}` (a part is
/// `null` when its node's latency is unknown).
pub fn path_json(path: &Path, ids: &[String], ms: &[Option<f64>]) -> Value {
    let parts: Vec<Value> = path.nodes.iter().map(|&i| json!({"id": ids[i], "latency_ms": ms[i]})).collect();
    json!({"latency_ms": path.ms, "nodes": parts})
}

/// Checks the manifest's budgets: `latency_budget_ms` bounds the path to every sink
/// output (`sinks`: the nodes with one), a node's own bounds the path to that node.
/// Fails naming the path and its largest parts.
pub fn check_budgets(manifest: &Manifest, paths: &[Option<Path>], sinks: &[usize], ids: &[String], ms: &[Option<f64>]) -> Result<()> {
    let node_budgets =
        manifest.nodes.iter().enumerate().filter_map(|(i, d)| d.latency_budget_ms.map(|b| (i, b, format!("nodes[{i}].latency_budget_ms"))));
    let pipeline = manifest.latency_budget_ms.into_iter().flat_map(|b| sinks.iter().map(move |&i| (i, b, "latency_budget_ms".to_string())));
    for (node, budget, at) in node_budgets.chain(pipeline) {
        let Some(path) = &paths[node] else { continue };
        if path.ms > budget {
            let mut parts: Vec<usize> = path.nodes.iter().copied().filter(|&i| ms[i].unwrap_or(0.0) > 0.0).collect();
            parts.sort_by(|&a, &b| ms[b].unwrap_or(0.0).total_cmp(&ms[a].unwrap_or(0.0)));
            let largest: Vec<String> = parts.iter().take(3).map(|&i| format!("{} {} ms", ids[i], show(ms[i].unwrap_or(0.0)))).collect();
            let route: Vec<&str> = path.nodes.iter().map(|&i| ids[i].as_str()).collect();
            return Err(Error::manifest(
                at,
                format!(
                    "the path input → {} has {} ms of latency, over the budget of {} ms; the largest parts: {}",
                    route.join(" → "),
                    show(path.ms),
                    show(budget),
                    largest.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

/// The per-sink paths of a plan as JSON: `{sink key: path}`.
pub fn sinks_json(paths: &[Option<Path>], sinks: &[(usize, usize, String)], ids: &[String], ms: &[Option<f64>]) -> Value {
    let map: Map<String, Value> =
        sinks.iter().filter_map(|(node, _, key)| paths[*node].as_ref().map(|p| (key.clone(), path_json(p, ids, ms)))).collect();
    Value::Object(map)
}
