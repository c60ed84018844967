//! The catalog: what every applied domain declares (owners, stewards, streams with their
//! contracts, fields and classifications, pipelines and what they write), with what the node
//! has seen (who produced to each stream, which groups and pipelines read it), searchable by
//! name, field or tag.

use std::collections::BTreeSet;
use std::sync::Arc;

use headwater_contracts::Contract;
use headwater_domains::{DomainSpec, Governance, Manifest, Output, StreamDef};
use serde::Serialize;

use headwater_domains::AppliedDomains;
use headwater_streams::{SchemaRegistry, StreamService};

use crate::StatusService;

/// One applied domain as the catalog shows it (an element of `domains` in `GET /v1/catalog`).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CatalogDomain {
    /// The domain's name.
    pub domain: String,
    /// The manifest's description; empty when it has none.
    pub description: String,
    /// Principals that may change the domain.
    pub owners: Vec<String>,
    /// People to ask about the data.
    pub stewards: Vec<String>,
    /// `self-service` or `central`.
    pub governance: Governance,
    /// Its streams.
    pub streams: Vec<CatalogStream>,
    /// Its pipelines, ordered by name.
    pub pipelines: Vec<CatalogPipeline>,
}

/// One stream of a domain in the catalog: what its manifest declares and what the node has seen.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CatalogStream {
    /// `<domain>.<stream>`, the topic.
    pub stream: String,
    /// The manifest's description; empty when it has none.
    pub description: String,
    /// The contract's schema type as Confluent's registry names it: `JSON` or `AVRO`.
    pub format: &'static str,
    /// The declared compatibility mode (`BACKWARD`, `FULL_TRANSITIVE`, ...).
    pub compatibility: String,
    /// Registered versions of `<stream>-value`, oldest first.
    pub versions: Vec<u32>,
    /// The contract's top-level fields, with their classification.
    pub fields: Vec<CatalogField>,
    /// Every classification its fields carry (`pii`, ...).
    pub tags: BTreeSet<String>,
    /// The declared freshness, in milliseconds; `null` when none is declared.
    pub freshness_ms: Option<u64>,
    /// Domains that may read it; `*` for every domain; empty: only its owners.
    pub readers: Vec<String>,
    /// Kafka client ids seen producing to it since the node started.
    pub producers_seen: Vec<String>,
    /// Consumer groups and pipelines with a position on it.
    pub consumers_seen: Vec<String>,
}

/// One top-level field of a stream's contract: a JSON Schema property or an Avro record field.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CatalogField {
    /// The field's name.
    pub name: String,
    /// Its type as the schema writes it (`string`, `number|null`, `long`), as `type` in JSON.
    #[serde(rename = "type")]
    pub kind: String,
    /// The manifest's class for it (`pii`, ...); `null` when unclassified.
    pub classification: Option<String>,
}

/// One pipeline of a domain in the catalog.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CatalogPipeline {
    /// `<domain>.<pipeline>`.
    pub pipeline: String,
    /// The manifest's description; empty when it has none.
    pub description: String,
    /// `batch` or `streaming`.
    pub mode: headwater_domains::PipelineMode,
    /// The streams it reads, as `<domain>.<stream>`.
    pub inputs: Vec<String>,
    /// `stream`, `table` or `view` (`unknown` for an output naming no single target, which a
    /// checked manifest never has).
    pub output_kind: &'static str,
    /// `<domain>.<name>` of what it writes.
    pub output: String,
}

/// One search hit: what matched and why.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Match {
    /// `domain`, `stream`, `field` (also for a match on its classification), `pipeline`,
    /// `table` or `view`.
    pub kind: &'static str,
    /// What matched: a domain, a stream, `<stream>.<field>`, a pipeline, a table or a view.
    pub name: String,
    /// Why it matched, in a phrase for people (`field of payments.refund_issued (string, pii)`).
    pub why: String,
}

/// What every applied domain declares, with what the node has seen.
#[derive(Debug)]
pub struct CatalogService {
    applied: Arc<AppliedDomains>,
    registry: Arc<SchemaRegistry>,
    status: Arc<StatusService>,
    streams: Arc<StreamService>,
}

impl CatalogService {
    /// The catalog of `applied`, with versions from `registry`, readers from `status` and
    /// producers seen by `streams`.
    pub fn new(
        applied: Arc<AppliedDomains>,
        registry: Arc<SchemaRegistry>,
        status: Arc<StatusService>,
        streams: Arc<StreamService>,
    ) -> Self {
        CatalogService {
            applied,
            registry,
            status,
            streams,
        }
    }

    /// Every applied domain, by name.
    pub async fn domains(&self) -> Vec<CatalogDomain> {
        let mut out = Vec::new();
        for spec in self.applied.all() {
            out.push(self.domain(&spec).await);
        }
        out
    }

    async fn domain(&self, spec: &DomainSpec) -> CatalogDomain {
        // Applied manifests were checked when applied; an unreadable one (a node upgraded
        // across a format change) still lists its streams from the resolved spec.
        let manifest = Manifest::from_yaml(&spec.manifest).ok();
        let mut streams = Vec::new();
        for s in &spec.streams {
            streams.push(self.stream(&spec.domain, s, manifest.as_ref()).await);
        }
        let pipelines = spec
            .pipelines
            .iter()
            .map(|(name, p)| {
                let (output_kind, output) = match p.output.target() {
                    Ok(Output::Stream(s)) => ("stream", s),
                    Ok(Output::Table { name, .. }) => ("table", name),
                    Ok(Output::View { name, .. }) => ("view", name),
                    Err(_) => ("unknown", ""),
                };
                CatalogPipeline {
                    pipeline: format!("{}.{name}", spec.domain),
                    description: p.description.clone(),
                    mode: p.mode,
                    inputs: p.inputs.clone(),
                    output_kind,
                    output: format!("{}.{output}", spec.domain),
                }
            })
            .collect();
        CatalogDomain {
            domain: spec.domain.clone(),
            description: manifest
                .as_ref()
                .map(|m| m.description.clone())
                .unwrap_or_default(),
            owners: spec.owners.clone(),
            stewards: manifest
                .as_ref()
                .map(|m| m.stewards.clone())
                .unwrap_or_default(),
            governance: spec.governance,
            streams,
            pipelines,
        }
    }

    async fn stream(
        &self,
        domain: &str,
        s: &StreamDef,
        manifest: Option<&Manifest>,
    ) -> CatalogStream {
        let declared = manifest.and_then(|m| m.streams.get(&s.name));
        let classes = declared
            .map(|d| d.classification.clone())
            .unwrap_or_default();
        let fields: Vec<CatalogField> = Contract::parse(s.format, &s.schema)
            .map(|c| c.fields())
            .unwrap_or_default()
            .into_iter()
            .map(|(name, kind)| CatalogField {
                classification: classes.get(&name).cloned(),
                name,
                kind,
            })
            .collect();
        let versions = self
            .registry
            .read()
            .versions(&format!("{}-value", s.topic), false)
            .unwrap_or_default();
        let consumers_seen = match self.status.stream_status(domain, s).await {
            Ok(st) => st.subscribers.into_iter().map(|sub| sub.name).collect(),
            Err(_) => Vec::new(),
        };
        CatalogStream {
            stream: s.topic.clone(),
            description: declared.map(|d| d.description.clone()).unwrap_or_default(),
            format: s.format.registry_name(),
            compatibility: s.compatibility.as_str().to_string(),
            versions,
            tags: classes.values().cloned().collect(),
            fields,
            freshness_ms: s.freshness_ms,
            readers: s.readers.clone(),
            producers_seen: self.streams.producers_seen(&s.topic),
            consumers_seen,
        }
    }
}

/// What in `domains` matches `query` (case-insensitive, part of a name, description, field,
/// tag, owner or steward).
pub fn search(domains: &[CatalogDomain], query: &str) -> Vec<Match> {
    let q = query.to_lowercase();
    let hit = |text: &str| text.to_lowercase().contains(&q);
    let mut out = Vec::new();
    let mut push = |kind, name: &str, why: String| {
        out.push(Match {
            kind,
            name: name.to_string(),
            why,
        })
    };
    for d in domains {
        if hit(&d.domain) || hit(&d.description) {
            push("domain", &d.domain, format!("domain: {}", d.description));
        }
        for person in d.owners.iter().chain(&d.stewards) {
            if hit(person) {
                push("domain", &d.domain, format!("owner or steward {person}"));
            }
        }
        for s in &d.streams {
            if hit(&s.stream) || hit(&s.description) {
                push("stream", &s.stream, format!("stream: {}", s.description));
            }
            for f in &s.fields {
                let class = f.classification.as_deref().unwrap_or("");
                if hit(&f.name) || (!class.is_empty() && hit(class)) {
                    let tag = f
                        .classification
                        .as_ref()
                        .map(|c| format!(", {c}"))
                        .unwrap_or_default();
                    push(
                        "field",
                        &format!("{}.{}", s.stream, f.name),
                        format!("field of {} ({}{tag})", s.stream, f.kind),
                    );
                }
            }
        }
        for p in &d.pipelines {
            if hit(&p.pipeline) || hit(&p.description) || p.inputs.iter().any(|i| hit(i)) {
                push(
                    "pipeline",
                    &p.pipeline,
                    format!("{:?} pipeline reading {}", p.mode, p.inputs.join(", ")).to_lowercase(),
                );
            }
            if hit(&p.output) && p.output_kind != "stream" {
                push(
                    p.output_kind,
                    &p.output,
                    format!("{} written by {}", p.output_kind, p.pipeline),
                );
            }
        }
    }
    out
}
