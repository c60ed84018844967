//! The manifest format (see `docs/manifests.md` for the user-facing description).

use std::collections::BTreeMap;

use headwater_contracts::{Compatibility, Format};
use serde::Deserialize;

use crate::HumanDuration;

/// One domain's manifest.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The domain's name: the prefix of its topics (`<domain>.<stream>`).
    pub domain: String,
    #[serde(default)]
    pub description: String,
    /// Principals that may change this domain (`team:payments`, `user:alice`).
    #[serde(default)]
    pub owners: Vec<String>,
    /// People to ask about the data.
    #[serde(default)]
    pub stewards: Vec<String>,
    /// Self-service unless the domain opts into central control.
    #[serde(default)]
    pub governance: Governance,
    #[serde(default)]
    pub streams: BTreeMap<String, StreamSpec>,
    /// Pipelines are checked by the pipeline runtime, which owns their format.
    #[serde(default)]
    pub pipelines: BTreeMap<String, serde_yaml::Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Governance {
    #[default]
    SelfService,
    Central,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamSpec {
    #[serde(default)]
    pub description: String,
    /// Field of the record used as the Kafka key.
    pub key: Option<String>,
    /// One partition keeps order across the whole stream; raise it for throughput.
    #[serde(default = "one")]
    pub partitions: i32,
    /// How long records are kept; unset keeps the node default (7 days).
    pub retention: Option<HumanDuration>,
    pub contract: ContractSpec,
    #[serde(default)]
    pub quality: QualitySpec,
    /// Field -> class (`pii`, `confidential`, ...), for the catalog and access control.
    #[serde(default)]
    pub classification: BTreeMap<String, String>,
    /// How stale the newest record may be before the stream is reported as late.
    pub freshness: Option<HumanDuration>,
    /// Domains that may read this stream; `*` for every domain. Empty: only the owner.
    #[serde(default)]
    pub readers: Vec<String>,
}

fn one() -> i32 {
    1
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContractSpec {
    pub format: Format,
    /// Path of the schema file, relative to the manifest.
    pub schema: String,
    /// Confluent's default, BACKWARD: consumers upgrade first.
    #[serde(default, deserialize_with = "compatibility")]
    pub compatibility: Compatibility,
}

fn compatibility<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Compatibility, D::Error> {
    let s = String::deserialize(d)?;
    Compatibility::parse(&s).ok_or_else(|| {
        serde::de::Error::custom(format!(
            "compatibility '{s}' is unknown; use none, backward, backward_transitive, forward, forward_transitive, full or full_transitive"
        ))
    })
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct QualitySpec {
    /// What happens to a record that breaks the contract or a rule. Rejecting is the default:
    /// a producer hears about bad data at once instead of it piling up unseen.
    #[serde(default)]
    pub on_invalid: OnInvalid,
    #[serde(default)]
    pub rules: Vec<QualityRule>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum OnInvalid {
    #[default]
    Reject,
    DeadLetter,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QualityRule {
    pub name: String,
    /// A CEL expression over the record's fields that must be true.
    pub check: String,
}
