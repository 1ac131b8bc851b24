//! The pipeline as a graph: adjacency lists, Kahn's topological order, cycle reports.

use crate::error::{Error, Result};
use crate::manifest::{Manifest, Source};

/// An edge from one node's output port to another node's input port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edge {
    pub from: usize,
    /// Output port name, `None` for the node's default (first) port.
    pub port: Option<String>,
    pub to: usize,
    /// Input port name, `None` for the node's default (first) port.
    pub to_port: Option<String>,
}

/// Nodes by index (manifest order), their edges and a topological order.
#[derive(Debug, Clone)]
pub struct PipelineGraph {
    ids: Vec<String>,
    edges: Vec<Edge>,
    /// The manifest connection of each edge (a graph from a manifest; empty otherwise).
    connections: Vec<usize>,
    successors: Vec<Vec<usize>>,
    predecessors: Vec<Vec<usize>>,
    order: Vec<usize>,
}

impl PipelineGraph {
    /// Builds the graph of a validated manifest (connections from pipeline inputs are
    /// not edges); fails with [`Error::Cycle`] on a cycle.
    pub fn from_manifest(manifest: &Manifest) -> Result<Self> {
        let ids: Vec<String> = manifest.nodes.iter().map(|n| n.id.clone()).collect();
        let index = |id: &str| manifest.node_index(id).ok_or_else(|| Error::Graph(format!("connection names unknown node '{id}'")));
        let mut edges = Vec::with_capacity(manifest.connections.len());
        let mut connections = Vec::with_capacity(manifest.connections.len());
        for (k, c) in manifest.connections.iter().enumerate() {
            if let Source::Node(from, port) = c.source() {
                let (to, to_port) = c.target();
                edges.push(Edge {
                    from: index(from)?,
                    port: port.map(str::to_string),
                    to: index(to)?,
                    to_port: to_port.map(str::to_string),
                });
                connections.push(k);
            }
        }
        let mut graph = Self::new(ids, edges)?;
        graph.connections = connections;
        Ok(graph)
    }

    /// Builds a graph from ids and edges between their indices.
    pub fn new(ids: Vec<String>, edges: Vec<Edge>) -> Result<Self> {
        let n = ids.len();
        let mut successors = vec![Vec::new(); n];
        let mut predecessors = vec![Vec::new(); n];
        for e in &edges {
            if e.from >= n || e.to >= n {
                return Err(Error::Graph(format!("edge {} -> {} is out of range", e.from, e.to)));
            }
            successors[e.from].push(e.to);
            predecessors[e.to].push(e.from);
        }
        let mut graph = Self { ids, edges, connections: Vec::new(), successors, predecessors, order: Vec::new() };
        graph.order = graph.topological_order()?;
        Ok(graph)
    }

    /// Kahn's algorithm; ties are broken by manifest order so the result is stable.
    fn topological_order(&self) -> Result<Vec<usize>> {
        let n = self.ids.len();
        let mut indegree: Vec<usize> = self.predecessors.iter().map(Vec::len).collect();
        let mut ready: std::collections::BTreeSet<usize> = (0..n).filter(|&i| indegree[i] == 0).collect();
        let mut order = Vec::with_capacity(n);
        while let Some(node) = ready.pop_first() {
            order.push(node);
            for &next in &self.successors[node] {
                indegree[next] -= 1;
                if indegree[next] == 0 {
                    ready.insert(next);
                }
            }
        }
        if order.len() == n { Ok(order) } else { Err(Error::Cycle { nodes: self.find_cycle(&indegree) }) }
    }

    /// Walks backwards from a node left with inbound edges until a node repeats: every
    /// such node has a predecessor that is also left, so the walk must close a cycle.
    fn find_cycle(&self, indegree: &[usize]) -> Vec<String> {
        let start = indegree.iter().position(|&d| d > 0).expect("a cycle leaves a node with inbound edges");
        let mut path = vec![start];
        let mut at = start;
        loop {
            at = *self.predecessors[at].iter().find(|&&p| indegree[p] > 0).expect("a left node has a left predecessor");
            if let Some(pos) = path.iter().position(|&p| p == at) {
                let mut cycle: Vec<String> = path[pos..].iter().rev().map(|&i| self.ids[i].clone()).collect();
                cycle.push(cycle[0].clone());
                return cycle;
            }
            path.push(at);
        }
    }

    /// Node ids by index.
    pub fn ids(&self) -> &[String] {
        &self.ids
    }
    /// All edges.
    pub fn edges(&self) -> &[Edge] {
        &self.edges
    }
    /// The manifest connection edge `k` was made from (of a graph from a manifest).
    pub fn connection(&self, k: usize) -> usize {
        self.connections.get(k).copied().unwrap_or(k)
    }
    /// Nodes that `node` feeds.
    pub fn successors(&self, node: usize) -> &[usize] {
        &self.successors[node]
    }
    /// Nodes that feed `node`.
    pub fn predecessors(&self, node: usize) -> &[usize] {
        &self.predecessors[node]
    }
    /// Every node, each after all of its predecessors.
    pub fn order(&self) -> &[usize] {
        &self.order
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(n: usize, edges: &[(usize, usize)]) -> Result<PipelineGraph> {
        let ids = (0..n).map(|i| format!("n{i}")).collect();
        PipelineGraph::new(ids, edges.iter().map(|&(from, to)| Edge { from, port: None, to, to_port: None }).collect())
    }

    fn assert_topological(g: &PipelineGraph) {
        let pos: Vec<usize> = {
            let mut p = vec![0; g.ids().len()];
            for (i, &n) in g.order().iter().enumerate() {
                p[n] = i;
            }
            p
        };
        assert_eq!(g.order().len(), g.ids().len());
        for e in g.edges() {
            assert!(pos[e.from] < pos[e.to], "edge {} -> {} out of order", e.from, e.to);
        }
    }

    #[test]
    fn chain_fan_out_fan_in() {
        // 3 -> 0 -> {1, 2} -> 4
        let g = graph(5, &[(3, 0), (0, 1), (0, 2), (1, 4), (2, 4)]).unwrap();
        assert_topological(&g);
        assert_eq!(g.order(), &[3, 0, 1, 2, 4]);
        assert!(g.successors(4).is_empty() && (0..4).all(|n| !g.successors(n).is_empty()));
        assert_eq!(g.predecessors(4), &[1, 2]);
        assert_eq!(g.successors(0), &[1, 2]);
    }

    #[test]
    fn independent_branches_are_all_sources() {
        let g = graph(3, &[]).unwrap();
        assert_eq!(g.order(), &[0, 1, 2]);
        assert!((0..3).all(|n| g.successors(n).is_empty()));
    }

    #[test]
    fn cycle_is_named_in_order() {
        // 0 -> 1 -> 2 -> 3 -> 1, and 3 -> 4
        let err = graph(5, &[(0, 1), (1, 2), (2, 3), (3, 1), (3, 4)]).unwrap_err();
        match err {
            Error::Cycle { nodes } => {
                assert_eq!(nodes.first(), nodes.last());
                assert_eq!(nodes.len(), 4, "{nodes:?}");
                let ring: Vec<&str> = nodes[..3].iter().map(String::as_str).collect();
                // Any rotation of n1 -> n2 -> n3 is the same cycle.
                let s = ring.join(",");
                assert!(["n1,n2,n3", "n2,n3,n1", "n3,n1,n2"].contains(&s.as_str()), "{s}");
            }
            other => panic!("expected a cycle, got {other}"),
        }
    }

    #[test]
    fn self_loop_is_a_cycle() {
        match graph(2, &[(0, 1), (1, 1)]).unwrap_err() {
            Error::Cycle { nodes } => assert_eq!(nodes, vec!["n1", "n1"]),
            other => panic!("{other}"),
        }
    }

    #[test]
    fn edges_out_of_range_are_rejected() {
        assert!(matches!(graph(1, &[(0, 3)]), Err(Error::Graph(_))));
    }

    #[test]
    fn from_manifest_keeps_ports() {
        let m = Manifest::from_json(
            r#"{"version":"1","nodes":[{"id":"v","node_type":"X"},{"id":"s","node_type":"Y"}],
                "connections":[{"from":"v.segments","to":"s"}]}"#,
        )
        .unwrap();
        let g = PipelineGraph::from_manifest(&m).unwrap();
        assert_eq!(g.edges(), &[Edge { from: 0, port: Some("segments".into()), to: 1, to_port: None }]);
    }
}
