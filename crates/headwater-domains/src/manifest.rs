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
    /// What the domain is about, shown by the catalog.
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
    /// The domain's streams by name; stream `orders` is topic `<domain>.orders`. Names use
    /// letters, digits, `_` and `-`.
    #[serde(default)]
    pub streams: BTreeMap<String, StreamSpec>,
    /// The domain's pipelines by name (same characters as stream names); see
    /// `docs/pipelines.md`.
    #[serde(default)]
    pub pipelines: BTreeMap<String, PipelineSpec>,
}

impl Manifest {
    /// A manifest's text as stored with its applied domain: already checked when it was
    /// applied, so this is for reading back descriptions, stewards and classifications.
    pub fn from_yaml(text: &str) -> Result<Manifest, serde_yaml::Error> {
        serde_yaml::from_str(text)
    }
}

/// Who approves changes to a domain (`governance:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Governance {
    /// `self-service`, the default: the domain's owners apply its manifest, its schemas and
    /// topic changes.
    #[default]
    SelfService,
    /// `central`: applying the manifest, its schemas and topic administration need a platform
    /// principal. The owners still produce, run pipelines and replay dead letters.
    Central,
}

/// One stream under `streams`: a topic, the contract its records must meet and who reads it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamSpec {
    /// What one record stands for, shown by the catalog.
    #[serde(default)]
    pub description: String,
    /// Field of the record used as the Kafka key.
    pub key: Option<String>,
    /// One partition keeps order across the whole stream; raise it for throughput.
    #[serde(default = "one")]
    pub partitions: i32,
    /// How long records are kept; unset keeps the node default (7 days).
    pub retention: Option<HumanDuration>,
    /// The schema every record's value is checked against at produce, and how it may change.
    pub contract: ContractSpec,
    /// Rules beyond the schema, and what becomes of a record that breaks either.
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
    /// Class -> domains that may carry fields of that class into what they publish (a pipeline
    /// output reaching them or their readers). Reading the stream is `readers`; passing its
    /// `pii` on is this grant. Unlisted classes stay with the owner.
    #[serde(default)]
    pub grants: BTreeMap<String, Vec<String>>,
}

fn one() -> i32 {
    1
}

/// A stream's contract: the schema file, its language and the changes it accepts. The schema is
/// registered under `<domain>.<stream>-value`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContractSpec {
    /// `json-schema` or `avro`.
    pub format: Format,
    /// Path of the schema file, relative to the manifest.
    pub schema: String,
    /// `none`, `backward`, `backward_transitive`, `forward`, `forward_transitive`, `full` or
    /// `full_transitive`. Unset: Confluent's default, `backward` (consumers upgrade first).
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

/// A stream's `quality`: rules its records must meet beyond the schema, and what happens to
/// those that do not.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct QualitySpec {
    /// What happens to a record that breaks the contract or a rule. Rejecting is the default:
    /// a producer hears about bad data at once instead of it piling up unseen.
    #[serde(default)]
    pub on_invalid: OnInvalid,
    /// Rules a valid record meets, each with its own name; none by default.
    #[serde(default)]
    pub rules: Vec<QualityRule>,
}

/// What happens to a record that breaks its stream's contract or a rule (`on_invalid:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum OnInvalid {
    /// `reject`, the default: the produce to that partition fails with INVALID_RECORD, naming
    /// each invalid record and why; none of its records is written.
    #[default]
    Reject,
    /// `dead-letter`: the valid records are written and the invalid ones go to the dead-letter
    /// stream `<domain>.<stream>.dlq`, with headers saying why (`headwater.rule`,
    /// `headwater.error`, ...).
    DeadLetter,
}

/// One quality rule: a named CEL check.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QualityRule {
    /// Names the rule where a record breaks it: the producer's error, the dead letter's
    /// `headwater.rule` header and the invalid-records metric. Unique within the stream.
    pub name: String,
    /// A CEL expression over the record's fields that must be true.
    pub check: String,
}

/// A unit of processing the domain runs over streams it may read.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineSpec {
    /// What the pipeline computes, shown by the catalog.
    #[serde(default)]
    pub description: String,
    /// How it runs: `batch` (writes a table) or `streaming` (writes a stream or a view).
    pub mode: PipelineMode,
    /// Batch only: when to run, as a cron expression (`min hour day month weekday`), in UTC.
    /// Without it a batch pipeline runs on demand (`headwater run`).
    pub schedule: Option<String>,
    /// Streams read, as `<domain>.<stream>`; each must admit this domain in its `readers`.
    pub inputs: Vec<String>,
    /// DataFusion SQL over the inputs (each a table named like its stream). Views without SQL
    /// aggregate the input's records as they are.
    pub sql: Option<String>,
    /// Streaming only: group records into event-time windows; the SQL then runs once per
    /// window as it closes, with `window_start` and `window_end` columns.
    pub window: Option<WindowSpec>,
    /// Where its results go.
    pub output: OutputSpec,
}

/// Tumbling (`size` only) or hopping (`size` and `hop`) windows on event time.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct WindowSpec {
    /// Each window's length (`1m`, `1h`); greater than zero.
    pub size: HumanDuration,
    /// A new window starts every `hop`, which must divide `size`; without it windows do not
    /// overlap (tumbling).
    pub hop: Option<HumanDuration>,
    /// How far event time may run out of order: a window closes once the oldest of the input
    /// partitions' newest event times, less this, reaches its end. Unset: as soon as every
    /// partition has shown an event at or past its end.
    pub watermark: Option<HumanDuration>,
    /// How long after it closed a window still takes late records (and is emitted again with
    /// them); later records are dropped and counted. Unset: none.
    pub allowed_lateness: Option<HumanDuration>,
    /// The record field holding event time (RFC 3339 text or epoch milliseconds); unset: the
    /// record's Kafka timestamp.
    pub time: Option<String>,
}

/// How a pipeline runs (`mode:`), and so what it may write: a batch pipeline a table, a
/// streaming one a stream or a view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PipelineMode {
    /// Runs the SQL over the whole inputs, on a schedule or on demand.
    Batch,
    /// Processes records as they arrive.
    Streaming,
}

/// Where a pipeline's results go: exactly one of `stream`, `table` or `view`.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSpec {
    /// A stream of this domain (declared under `streams`), through its contract and rules.
    pub stream: Option<String>,
    /// A Parquet table under the node's data dir, queryable as `<domain>.<table>`.
    pub table: Option<String>,
    /// Table columns that become hive partition directories (`day=2026-11-25/`).
    #[serde(default)]
    pub partition_by: Vec<String>,
    /// A keyed feature view, served over HTTP.
    pub view: Option<String>,
    /// View only: the record field that keys the view.
    pub key: Option<String>,
    /// View only: feature name -> aggregation.
    #[serde(default)]
    pub features: BTreeMap<String, FeatureSpec>,
}

/// One feature of a view: an aggregate of a field per key, over a sliding window or everything
/// seen.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureSpec {
    /// How the values are combined.
    pub agg: Aggregation,
    /// The field aggregated; not needed for `count`.
    pub of: Option<String>,
    /// Sliding window over event time; unset aggregates everything seen.
    pub window: Option<HumanDuration>,
}

/// How a view feature combines what it sees (`agg:`). A record without the `of` field is
/// skipped for that feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Aggregation {
    /// `count`: records seen.
    Count,
    /// `sum`: the sum of the field's numbers.
    Sum,
    /// `min`: the smallest number seen.
    Min,
    /// `max`: the largest number seen.
    Max,
    /// `avg`: the mean of the numbers seen.
    Avg,
    /// `last`: the value with the latest event time.
    Last,
    /// Approximate count of distinct values (HyperLogLog).
    ApproxDistinct,
}
