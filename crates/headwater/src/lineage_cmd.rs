//! `headwater lineage NAME [--upstream|--downstream] [--output text|json|dot|mermaid]`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::process::ExitCode;

use serde_json::Value;

use crate::node_http;
use crate::output::LineageOutput;

pub(crate) fn lineage(
    name: &str,
    upstream: bool,
    output: LineageOutput,
    url: &str,
) -> anyhow::Result<ExitCode> {
    let direction = if upstream { "upstream" } else { "downstream" };
    let path = format!(
        "/v1/lineage?name={}&direction={direction}",
        node_http::encode(name)
    );
    let answer = node_http::get_answer(url, &path)?;
    let edges: Vec<Edge> = answer["edges"]
        .as_array()
        .into_iter()
        .flatten()
        .map(Edge::from_json)
        .collect();
    let out = match output {
        LineageOutput::Text => text(name, direction, &edges),
        LineageOutput::Json => format!("{answer}\n"),
        LineageOutput::Dot => dot(&edges),
        LineageOutput::Mermaid => mermaid(&edges),
    };
    node_http::print(&out, ExitCode::SUCCESS)
}

struct Edge {
    from: String,
    to: String,
    via: Option<String>,
    observed: bool,
}

impl Edge {
    fn from_json(e: &Value) -> Edge {
        let label = |n: &Value| {
            format!(
                "{} {}",
                n["kind"].as_str().unwrap_or("?"),
                n["name"].as_str().unwrap_or("?")
            )
        };
        Edge {
            from: label(&e["from"]),
            to: label(&e["to"]),
            via: e["via"].as_str().map(String::from),
            observed: e["observed"].as_bool().unwrap_or(false),
        }
    }

    fn note(&self) -> String {
        match (&self.via, self.observed) {
            (Some(p), _) => format!("  (via pipeline {p})"),
            (None, true) => "  (observed)".to_string(),
            (None, false) => String::new(),
        }
    }
}

fn text(name: &str, direction: &str, edges: &[Edge]) -> String {
    let mut out = format!("{direction} of {name}:\n");
    if edges.is_empty() {
        let _ = writeln!(out, "  nothing");
    }
    for e in edges {
        let _ = writeln!(out, "  {} -> {}{}", e.from, e.to, e.note());
    }
    out
}

fn dot(edges: &[Edge]) -> String {
    let mut out = String::from("digraph lineage {\n  rankdir=LR;\n  node [shape=box];\n");
    for e in edges {
        let mut attrs = Vec::new();
        if let Some(p) = &e.via {
            attrs.push(format!("label={}", quote(p)));
        }
        if e.observed {
            attrs.push("style=dashed".to_string());
        }
        let attrs = if attrs.is_empty() {
            String::new()
        } else {
            format!(" [{}]", attrs.join(", "))
        };
        let _ = writeln!(out, "  {} -> {}{attrs};", quote(&e.from), quote(&e.to));
    }
    out.push_str("}\n");
    out
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn mermaid(edges: &[Edge]) -> String {
    let mut ids: BTreeMap<&str, String> = BTreeMap::new();
    let mut out = String::from("graph LR\n");
    for e in edges {
        for n in [&e.from, &e.to] {
            if !ids.contains_key(n.as_str()) {
                let id = format!("n{}", ids.len());
                let _ = writeln!(out, "  {id}[\"{}\"]", n.replace('"', "#quot;"));
                ids.insert(n, id);
            }
        }
        let (from, to) = (&ids[e.from.as_str()], &ids[e.to.as_str()]);
        let _ = match (&e.via, e.observed) {
            (Some(p), _) => writeln!(out, "  {from} -->|{}| {to}", p.replace('|', "/")),
            (None, true) => writeln!(out, "  {from} -.-> {to}"),
            (None, false) => writeln!(out, "  {from} --> {to}"),
        };
    }
    out
}
