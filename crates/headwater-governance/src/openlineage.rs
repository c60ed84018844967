//! OpenLineage run events for pipeline runs: START, COMPLETE and FAIL, with the run's input and
//! output datasets and their schemas, sent to an HTTP endpoint (a Marquez or any OpenLineage
//! consumer) and/or appended to a file as JSON lines.
//!
//! Events follow the OpenLineage 2-0-2 RunEvent: `run.runId` is a UUID per run (a batch run, or
//! a streaming pipeline from a (re)start to its failure), the job is `<domain>.<pipeline>` in the
//! configured namespace, Kafka streams are datasets in `kafka://<host>:<port>`, tables and views
//! datasets in the job namespace.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use headwater_contracts::Contract;
use headwater_domains::{DomainSpec, Output};
use headwater_pipelines::{RunEvent, RunEventKind};
use serde::Deserialize;
use serde_json::{json, Value};

use headwater_domains::AppliedDomains;

const PRODUCER: &str = concat!(
    "https://github.com/headwater-data/headwater/tree/v",
    env!("CARGO_PKG_VERSION")
);
const RUN_EVENT: &str = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent";
const SCHEMA_FACET: &str =
    "https://openlineage.io/spec/facets/1-1-1/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet";
const SQL_FACET: &str =
    "https://openlineage.io/spec/facets/1-1-0/SQLJobFacet.json#/$defs/SQLJobFacet";
const ERROR_FACET: &str =
    "https://openlineage.io/spec/facets/1-0-1/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet";

/// `[openlineage]` in the node's config. Without `url` or `file` no event is built.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenLineageConfig {
    /// Where each event is POSTed as JSON (plain HTTP), e.g. Marquez's
    /// `http://127.0.0.1:5000/api/v1/lineage`.
    pub url: Option<String>,
    /// A file each event is appended to as one JSON line.
    pub file: Option<PathBuf>,
    /// The namespace of the jobs (and of tables and views).
    #[serde(default = "default_namespace")]
    pub namespace: String,
}

fn default_namespace() -> String {
    "headwater".to_string()
}

impl Default for OpenLineageConfig {
    fn default() -> Self {
        OpenLineageConfig {
            url: None,
            file: None,
            namespace: default_namespace(),
        }
    }
}

/// Builds and sends the OpenLineage events of pipeline runs. The node makes one only when
/// `[openlineage]` names a `url` or a `file`.
#[derive(Debug)]
pub struct OpenLineage {
    config: OpenLineageConfig,
    applied: Arc<AppliedDomains>,
    /// `kafka://<advertised host>:<port>`: the namespace of stream datasets.
    kafka: String,
    file: parking_lot::Mutex<()>,
}

impl OpenLineage {
    /// Events for the pipelines of `applied`, sent where `config` says; `kafka` is the
    /// namespace of stream datasets, `kafka://<advertised host>:<port>`.
    pub fn new(config: OpenLineageConfig, applied: Arc<AppliedDomains>, kafka: String) -> Self {
        OpenLineage {
            config,
            applied,
            kafka,
            file: parking_lot::Mutex::new(()),
        }
    }

    /// Sends `e`'s event to the configured endpoint and file; failures are logged, never
    /// returned: lineage must not stop a pipeline.
    pub(crate) async fn emit(self: &Arc<Self>, e: &RunEvent) {
        let Some(event) = self.event(e) else {
            return;
        };
        let line = event.to_string();
        if let Some(path) = &self.config.file {
            let _one_writer = self.file.lock();
            let written = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .and_then(|mut f| writeln!(f, "{line}"));
            if let Err(err) = written {
                tracing::warn!("OpenLineage event not written to {}: {err}", path.display());
            }
        }
        if let Some(url) = self.config.url.clone() {
            let sent = tokio::task::spawn_blocking(move || {
                ureq::post(&url)
                    .header("content-type", "application/json")
                    .send(line.as_str())
                    .map(|_| ())
                    .map_err(|err| format!("{url}: {err}"))
            })
            .await;
            match sent {
                Ok(Ok(())) => {}
                Ok(Err(err)) => tracing::warn!("OpenLineage event not sent to {err}"),
                Err(err) => tracing::warn!("OpenLineage event not sent: {err}"),
            }
        }
    }

    /// The RunEvent JSON of `e`; `None` if its pipeline is no longer applied.
    pub(crate) fn event(&self, e: &RunEvent) -> Option<Value> {
        let applied = self.applied.all();
        let spec = applied.iter().find(|d| d.domain == e.domain)?;
        let p = spec.pipelines.get(&e.pipeline)?;
        let (event_type, run_facets) = match &e.kind {
            RunEventKind::Start => ("START", json!({})),
            RunEventKind::Complete => ("COMPLETE", json!({})),
            RunEventKind::Fail { error, .. } => (
                "FAIL",
                json!({"errorMessage": {
                    "_producer": PRODUCER, "_schemaURL": ERROR_FACET,
                    "message": error, "programmingLanguage": "SQL",
                }}),
            ),
        };
        let mut job_facets = json!({});
        if let Some(sql) = &p.sql {
            job_facets["sql"] =
                json!({"_producer": PRODUCER, "_schemaURL": SQL_FACET, "query": sql});
        }
        let inputs: Vec<Value> = p
            .inputs
            .iter()
            .map(|topic| self.dataset(&self.kafka, topic, stream_contract(&applied, topic)))
            .collect();
        let outputs: Vec<Value> = match p.output.target() {
            Ok(Output::Stream(s)) => {
                let topic = format!("{}.{s}", spec.domain);
                let contract = stream_contract(&applied, &topic);
                vec![self.dataset(&self.kafka, &topic, contract)]
            }
            Ok(Output::Table { name, .. }) | Ok(Output::View { name, .. }) => {
                vec![self.dataset(
                    &self.config.namespace,
                    &format!("{}.{name}", spec.domain),
                    None,
                )]
            }
            Err(_) => Vec::new(),
        };
        Some(json!({
            "eventType": event_type,
            "eventTime": event_time(e.at_ms),
            "run": {"runId": e.run_id.to_string(), "facets": run_facets},
            "job": {
                "namespace": self.config.namespace,
                "name": format!("{}.{}", e.domain, e.pipeline),
                "facets": job_facets,
            },
            "inputs": inputs,
            "outputs": outputs,
            "producer": PRODUCER,
            "schemaURL": RUN_EVENT,
        }))
    }

    fn dataset(&self, namespace: &str, name: &str, contract: Option<Contract>) -> Value {
        let mut facets = json!({});
        if let Some(c) = contract {
            let fields: Vec<Value> = c
                .fields()
                .into_iter()
                .map(|(name, kind)| json!({"name": name, "type": kind}))
                .collect();
            facets["schema"] =
                json!({"_producer": PRODUCER, "_schemaURL": SCHEMA_FACET, "fields": fields});
        }
        json!({"namespace": namespace, "name": name, "facets": facets})
    }
}

fn stream_contract(applied: &[DomainSpec], topic: &str) -> Option<Contract> {
    applied
        .iter()
        .flat_map(|d| &d.streams)
        .find(|s| s.topic == topic)
        .and_then(|s| Contract::parse(s.format, &s.schema).ok())
}

/// RFC 3339 with milliseconds, in UTC.
fn event_time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
