//! The resolved form of a domain that `headwater apply` sends to a node: every stream with its
//! schema text inlined, so the node needs no access to the manifest's files.

use headwater_contracts::{Compatibility, Format};
use serde::{Deserialize, Serialize};

use crate::{LoadedDomain, OnInvalid, PipelineSpec};

/// One domain as a node applies and stores it: its manifest resolved, schemas inlined.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DomainSpec {
    /// The domain's name, the prefix of its topics.
    pub domain: String,
    /// Principals that may change it (the manifest's `owners`).
    pub owners: Vec<String>,
    /// Central: changes need a platform principal instead of the owners.
    #[serde(default)]
    pub governance: crate::Governance,
    /// The manifest file's text, kept for the catalog and audit trail.
    pub manifest: String,
    /// Its streams, each with its schema text.
    pub streams: Vec<StreamDef>,
    /// Pipelines by name, as the manifest declares them.
    #[serde(default)]
    pub pipelines: std::collections::BTreeMap<String, PipelineSpec>,
}

/// One stream of a [`DomainSpec`]: what the manifest declares, with the schema's text and every
/// default filled in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamDef {
    /// Its name under the manifest's `streams`.
    pub name: String,
    /// `<domain>.<name>`.
    pub topic: String,
    /// The topic's partition count.
    pub partitions: i32,
    /// Field of the record whose value is the Kafka key when the node produces on a user's
    /// behalf (`headwater publish`), so per-key order holds.
    #[serde(default)]
    pub key: Option<String>,
    /// How long records are kept, in milliseconds; `None` keeps the node's default.
    pub retention_ms: Option<u64>,
    /// The schema's language.
    pub format: Format,
    /// The schema's text, read from the manifest's schema file.
    pub schema: String,
    /// The compatibility mode of subject `<topic>-value`.
    pub compatibility: Compatibility,
    /// What happens to an invalid record.
    pub on_invalid: OnInvalid,
    /// (rule name, CEL expression)
    pub rules: Vec<(String, String)>,
    /// Domains that may read the stream; `*` for every domain; empty: only the owners.
    pub readers: Vec<String>,
    /// Field -> class (`pii`, ...), as the manifest classifies them.
    #[serde(default)]
    pub classification: std::collections::BTreeMap<String, String>,
    /// Class -> domains that may carry fields of that class into what they publish.
    #[serde(default)]
    pub grants: std::collections::BTreeMap<String, Vec<String>>,
    /// How stale the newest record may be before the stream is reported late.
    #[serde(default)]
    pub freshness_ms: Option<u64>,
}

impl DomainSpec {
    /// What makes this spec unsafe to apply, whoever built it: a name outside the grammar
    /// ([`check_name`](crate::check_name)), a stream whose topic is not `<domain>.<name>`, a
    /// stream declared twice, a table or view named outside the grammar. A spec the loader built
    /// has none; a node checks every spec it applies all the same.
    pub fn problems(&self) -> Vec<String> {
        use crate::names::check_name;
        let mut out = Vec::new();
        if let Err(why) = check_name(&self.domain) {
            out.push(format!("invalid domain name '{}': {why}", self.domain));
        }
        let mut names = std::collections::BTreeSet::new();
        for s in &self.streams {
            if let Err(why) = check_name(&s.name) {
                out.push(format!("invalid stream name '{}': {why}", s.name));
            }
            let topic = format!("{}.{}", self.domain, s.name);
            if s.topic != topic {
                out.push(format!(
                    "stream '{}' claims topic '{}'; a stream of domain {} is topic '{topic}'",
                    s.name, s.topic, self.domain
                ));
            }
            if !names.insert(&s.name) {
                out.push(format!("stream '{}' is declared twice", s.name));
            }
        }
        for (name, p) in &self.pipelines {
            if let Err(why) = check_name(name) {
                out.push(format!("invalid pipeline name '{name}': {why}"));
            }
            let target = p.output.target();
            if let Some((kind, target)) = target.as_ref().ok().and_then(|t| t.stored_as()) {
                if let Err(why) = check_name(target) {
                    out.push(format!(
                        "pipeline '{name}': invalid {kind} name '{target}': {why}"
                    ));
                }
            }
        }
        out
    }
}

/// A topic setting a stream's manifest decides: applying sets it, and nothing else may change
/// it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedSetting {
    /// The topic config key (`retention.ms`), or `partitions`.
    pub key: &'static str,
    /// The manifest field that sets it, for messages.
    pub field: &'static str,
    /// The value the manifest gives; `None` for the node's default (and for `partitions`,
    /// which applying grows rather than sets).
    pub value: Option<String>,
}

impl StreamDef {
    /// The topic settings this stream's manifest decides: its partitions, `retention.ms`
    /// (`retention`) and `headwater.validation` (`quality.on_invalid`).
    pub fn managed_settings(&self) -> [ManagedSetting; 3] {
        let validation = match self.on_invalid {
            crate::OnInvalid::Reject => "reject",
            crate::OnInvalid::DeadLetter => "dead-letter",
        };
        [
            ManagedSetting {
                key: "partitions",
                field: "partitions",
                value: None,
            },
            ManagedSetting {
                key: "headwater.validation",
                field: "quality.on_invalid",
                value: Some(validation.to_string()),
            },
            ManagedSetting {
                key: "retention.ms",
                field: "retention",
                value: self.retention_ms.map(|r| r.to_string()),
            },
        ]
    }

    /// Stream `name` of `domain` with `schema` and every manifest default: one partition,
    /// BACKWARD, records refused when invalid, no rules, readers, classes or SLA. For code that
    /// declares a stream without a manifest (tests, benchmarks); set fields to differ.
    pub fn new(domain: &str, name: &str, format: Format, schema: impl Into<String>) -> StreamDef {
        StreamDef {
            name: name.to_string(),
            topic: format!("{domain}.{name}"),
            partitions: 1,
            key: None,
            retention_ms: None,
            format,
            schema: schema.into(),
            compatibility: Compatibility::Backward,
            on_invalid: OnInvalid::Reject,
            rules: Vec::new(),
            readers: Vec::new(),
            classification: Default::default(),
            grants: Default::default(),
            freshness_ms: None,
        }
    }
}

impl LoadedDomain {
    /// The resolved spec `headwater apply` sends: schema texts inlined, durations in
    /// milliseconds, manifest defaults filled in.
    pub fn spec(&self) -> DomainSpec {
        DomainSpec {
            domain: self.manifest.domain.clone(),
            owners: self.manifest.owners.clone(),
            governance: self.manifest.governance,
            manifest: self.text.clone(),
            streams: self
                .streams
                .iter()
                .map(|(name, s)| StreamDef {
                    name: name.clone(),
                    topic: s.topic.clone(),
                    partitions: s.spec.partitions,
                    key: s.spec.key.clone(),
                    retention_ms: s.spec.retention.map(|r| r.millis),
                    format: s.spec.contract.format,
                    schema: s.contract.text().to_string(),
                    compatibility: s.spec.contract.compatibility,
                    on_invalid: s.spec.quality.on_invalid,
                    rules: s
                        .spec
                        .quality
                        .rules
                        .iter()
                        .map(|r| (r.name.clone(), r.check.clone()))
                        .collect(),
                    readers: s.spec.readers.clone(),
                    classification: s.spec.classification.clone(),
                    grants: s.spec.grants.clone(),
                    freshness_ms: s.spec.freshness.map(|f| f.millis),
                })
                .collect(),
            pipelines: self.manifest.pipelines.clone(),
        }
    }
}
