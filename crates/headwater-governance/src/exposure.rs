//! Classified fields crossing domains: a pipeline that carries another domain's `pii` (or any
//! classified) field into its output exposes it to its own domain and, for a stream output, to
//! that stream's readers. Each of them must hold the source stream's grant for that class
//! (`grants: { pii: [...] }`); otherwise `plan` refuses the pipeline, before anything runs.
//! Fields are followed by column lineage through the SQL's plan, so a renamed or computed
//! column still counts, and a view's key and features count as fields.

use std::collections::BTreeSet;

use headwater_domains::{DomainSpec, Output, PipelineSpec, StreamDef};

use crate::PipelineService;

/// One refusal per (source field, domain without the grant), naming the grant to add.
pub(crate) async fn refusals(
    pipelines: &PipelineService,
    spec: &DomainSpec,
    name: &str,
    p: &PipelineSpec,
    known: &[DomainSpec],
) -> Vec<String> {
    let audience = audience(spec, p);
    let mut out = BTreeSet::new();
    for (field, sources) in pipelines.output_origins(p, known).await {
        for src in sources {
            let Some((owner, stream, column)) = locate(known, &src) else {
                continue;
            };
            let Some(class) = stream.classification.get(column) else {
                continue;
            };
            if owner == spec.domain {
                continue;
            }
            let granted = stream.grants.get(class).map(Vec::as_slice).unwrap_or(&[]);
            for (to, why) in &audience {
                let holds = to == owner
                    || granted.iter().any(|g| g == "*")
                    || (to != "*" && granted.iter().any(|g| g == to));
                if holds {
                    continue;
                }
                let whom = if to == "*" {
                    "every domain".to_string()
                } else {
                    format!("domain {to}")
                };
                let list = if granted.is_empty() {
                    "no domain".to_string()
                } else {
                    format!("only [{}]", granted.join(", "))
                };
                out.insert(format!(
                    "pipeline {}.{name} exposes {src} ({class}) as its output field '{field}' to {whom} ({why}), but {} grants {class} to {list}; an owner of {owner} must add {} to `grants: {{ {class}: [...] }}` of stream {}, or leave the field out",
                    spec.domain, stream.topic, if to == "*" { "'*'".to_string() } else { to.clone() }, stream.name
                ));
            }
        }
    }
    out.into_iter().collect()
}

/// Who sees a pipeline's output: its own domain, and a stream output's readers.
fn audience(spec: &DomainSpec, p: &PipelineSpec) -> Vec<(String, String)> {
    let mut out = vec![(spec.domain.clone(), "the pipeline's own domain".to_string())];
    if let Ok(Output::Stream(s)) = p.output.target() {
        let readers = spec
            .streams
            .iter()
            .find(|d| d.name == s)
            .map(|d| d.readers.clone())
            .unwrap_or_default();
        for r in readers {
            if r != spec.domain {
                out.push((r, format!("a reader of {}.{s}", spec.domain)));
            }
        }
    }
    out
}

/// The domain, stream and column of `<domain>.<stream>.<column>`.
fn locate<'a>(known: &'a [DomainSpec], src: &'a str) -> Option<(&'a str, &'a StreamDef, &'a str)> {
    known.iter().find_map(|d| {
        d.streams.iter().find_map(|s| {
            src.strip_prefix(s.topic.as_str())
                .and_then(|rest| rest.strip_prefix('.'))
                .map(|column| (d.domain.as_str(), s, column))
        })
    })
}
