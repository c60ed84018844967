//! Lineage: how data moves between streams, pipelines, tables, views and the clients that
//! produce and consume it. Declared edges come from the applied manifests (a pipeline's inputs
//! and output) and, per column, from each pipeline's SQL as DataFusion plans it and from each
//! view feature's `of` field; observed edges come from what the node has seen (producer client
//! ids, consumer groups with positions).

use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;

use headwater_domains::{DomainSpec, Output};
use serde::Serialize;

use crate::catalog::CatalogDomain;
use headwater_domains::AppliedDomains;

use crate::{CatalogService, PipelineService};

/// A node of the lineage graph.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct GraphNode {
    /// `stream`, `field`, `pipeline`, `table`, `view`, `producer` or `group`.
    pub kind: &'static str,
    /// A topic; a field as `<stream, table or view>.<field>`; a pipeline, table or view as
    /// `<domain>.<name>`; a producer's Kafka client id; a consumer group id.
    pub name: String,
}

/// Data flowing from one node to another (an element of `edges` in `GET /v1/lineage`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Edge {
    /// Where the data comes from.
    pub from: GraphNode,
    /// Where it goes.
    pub to: GraphNode,
    /// The pipeline a column edge goes through.
    pub via: Option<String>,
    /// Seen by the node rather than declared.
    pub observed: bool,
}

fn node(kind: &'static str, name: impl Into<String>) -> GraphNode {
    GraphNode {
        kind,
        name: name.into(),
    }
}

/// The lineage graph of the applied domains and what the node has seen.
#[derive(Debug)]
pub struct LineageService {
    catalog: Arc<CatalogService>,
    applied: Arc<AppliedDomains>,
    pipelines: Arc<PipelineService>,
}

impl LineageService {
    /// The graph of `applied`'s declarations, `pipelines`' column lineage and what `catalog`
    /// has seen.
    pub fn new(
        catalog: Arc<CatalogService>,
        applied: Arc<AppliedDomains>,
        pipelines: Arc<PipelineService>,
    ) -> Self {
        LineageService {
            catalog,
            applied,
            pipelines,
        }
    }

    /// Every edge the node knows.
    pub async fn edges(&self) -> Vec<Edge> {
        let mut edges = observed(&self.catalog.domains().await);
        let applied = self.applied.all();
        for spec in &applied {
            edges.extend(self.declared(spec, &applied).await);
        }
        edges.sort();
        edges.dedup();
        edges
    }

    /// A pipeline's edges: its inputs to it, it to its output, and each output column from the
    /// input columns it is computed from.
    async fn declared(&self, spec: &DomainSpec, applied: &[DomainSpec]) -> Vec<Edge> {
        let mut out = Vec::new();
        for (name, p) in &spec.pipelines {
            let pipeline = format!("{}.{name}", spec.domain);
            let (kind, target) = match p.output.target() {
                Ok(Output::Stream(s)) => ("stream", s),
                Ok(Output::Table { name, .. }) => ("table", name),
                Ok(Output::View { name, .. }) => ("view", name),
                Err(_) => continue,
            };
            let target = format!("{}.{target}", spec.domain);
            for input in &p.inputs {
                out.push(declared_edge(
                    node("stream", input),
                    node("pipeline", &pipeline),
                    None,
                ));
            }
            out.push(declared_edge(
                node("pipeline", &pipeline),
                node(kind, &target),
                None,
            ));
            for (field, sources) in self.pipelines.output_origins(p, applied).await {
                for src in sources {
                    out.push(declared_edge(
                        node("field", src),
                        node("field", format!("{target}.{field}")),
                        Some(pipeline.clone()),
                    ));
                }
            }
        }
        out
    }

    /// The part of the graph reachable from every node named `name`, following edges forward
    /// (`downstream`) or backward; `None` if no node has that name.
    pub async fn walk(&self, name: &str, downstream: bool) -> Option<Vec<Edge>> {
        let edges = self.edges().await;
        let start: BTreeSet<GraphNode> = edges
            .iter()
            .flat_map(|e| [&e.from, &e.to])
            .filter(|n| n.name == name)
            .cloned()
            .collect();
        if start.is_empty() {
            return None;
        }
        let mut seen = start.clone();
        let mut queue: VecDeque<GraphNode> = start.into_iter().collect();
        let mut taken = vec![false; edges.len()];
        let mut out = Vec::new();
        while let Some(at) = queue.pop_front() {
            for (i, e) in edges.iter().enumerate() {
                let (here, next) = if downstream {
                    (&e.from, &e.to)
                } else {
                    (&e.to, &e.from)
                };
                if *here == at && !taken[i] {
                    taken[i] = true;
                    out.push(e.clone());
                    if seen.insert(next.clone()) {
                        queue.push_back(next.clone());
                    }
                }
            }
        }
        Some(out)
    }
}

fn declared_edge(from: GraphNode, to: GraphNode, via: Option<String>) -> Edge {
    Edge {
        from,
        to,
        via,
        observed: false,
    }
}

/// Producers seen to each stream, and consumer groups on it (pipelines' positions are the
/// pipelines' declared edges already).
fn observed(domains: &[CatalogDomain]) -> Vec<Edge> {
    let pipelines: BTreeSet<&str> = domains
        .iter()
        .flat_map(|d| &d.pipelines)
        .map(|p| p.pipeline.as_str())
        .collect();
    let mut out = Vec::new();
    for s in domains.iter().flat_map(|d| &d.streams) {
        for p in &s.producers_seen {
            out.push(Edge {
                from: node("producer", p),
                to: node("stream", &s.stream),
                via: None,
                observed: true,
            });
        }
        for g in s
            .consumers_seen
            .iter()
            .filter(|g| !g.starts_with("_pipeline.") && !pipelines.contains(g.as_str()))
        {
            out.push(Edge {
                from: node("stream", &s.stream),
                to: node("group", g),
                via: None,
                observed: true,
            });
        }
    }
    out
}
