//! The node's pipelines: the engine and the runtime over its streams, plan-time checks of
//! pipeline declarations, the origin of each output field, and deployment when a domain is
//! applied.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use headwater_contracts::Contract;
use headwater_domains::{refuse_input, DomainSpec, Output, PipelineSpec};
use headwater_pipelines::{Engine, SqlLimits, StreamSink, StreamSource, Supervisor, Tables};

/// The pipelines of one node.
#[derive(Debug)]
pub struct PipelineService {
    engine: Arc<Engine>,
    supervisor: Supervisor,
}

impl PipelineService {
    /// Finishes table swaps a crash interrupted in `data_dir`, then runs pipelines reading
    /// `source` and writing `sink`; streaming pipelines wake on `appended`. Ad-hoc queries run
    /// within `sql`.
    pub fn new(
        source: Arc<dyn StreamSource>,
        sink: Arc<dyn StreamSink>,
        appended: Arc<tokio::sync::Notify>,
        data_dir: &Path,
        sql: SqlLimits,
    ) -> Self {
        let tables = Tables::new(data_dir);
        for done in tables.recover() {
            tracing::warn!("tables: {done}");
        }
        let engine = Arc::new(Engine::new(source, tables).with_limits(sql));
        PipelineService {
            supervisor: Supervisor::new(engine.clone(), sink, appended, data_dir),
            engine,
        }
    }

    /// The SQL engine over the node's streams and tables.
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// The supervisor running every deployed pipeline.
    pub fn supervisor(&self) -> &Supervisor {
        &self.supervisor
    }

    /// What applying `spec` changes in its pipelines, and why it may not: inputs its domain may
    /// not read, SQL that does not plan over its inputs' contracts.
    pub async fn plan(
        &self,
        spec: &DomainSpec,
        before: Option<&DomainSpec>,
        known: &[DomainSpec],
    ) -> (Vec<String>, Vec<String>) {
        let (mut changes, mut errors) = (Vec::new(), Vec::new());
        let empty = BTreeMap::new();
        let old = before.map(|b| &b.pipelines).unwrap_or(&empty);
        for (name, p) in &spec.pipelines {
            let full = format!("{}.{name}", spec.domain);
            match old.get(name) {
                None => changes.push(format!("+ deploy pipeline {full} ({})", describe(p))),
                Some(o) if o != p => {
                    changes.push(format!("~ redeploy pipeline {full} ({})", describe(p)))
                }
                Some(_) => {}
            }
            errors.extend(self.admission(spec, name, p, known).await);
            let contracts = input_contracts(known, &p.inputs);
            // The columns a view's key and features may name: the SQL's result, or the inputs'.
            let mut columns: Option<Vec<String>> = None;
            if let Some(sql) = &p.sql {
                match self.engine.check(sql, &contracts, p.window.is_some()).await {
                    Ok(schema) => {
                        columns = Some(schema.fields().iter().map(|f| f.name().clone()).collect())
                    }
                    Err(e) => errors.push(format!("pipeline {full}: the SQL does not plan: {e}")),
                }
            } else if !contracts.is_empty() {
                columns = Some(
                    contracts
                        .values()
                        .flat_map(|c| {
                            headwater_pipelines::table_schema(Some(c))
                                .fields()
                                .iter()
                                .map(|f| f.name().clone())
                                .collect::<Vec<_>>()
                        })
                        .collect(),
                );
            }
            if let (Some(columns), Ok(Output::View { key, features, .. })) =
                (&columns, p.output.target())
            {
                let fields = std::iter::once(("key", key)).chain(
                    features
                        .values()
                        .filter_map(|f| f.of.as_deref().map(|of| ("feature field", of))),
                );
                for (what, field) in fields {
                    if !columns.iter().any(|c| c == field) {
                        errors.push(format!(
                            "pipeline {full}: the view's {what} '{field}' is not a column of its input; the columns are [{}]",
                            columns.join(", ")
                        ));
                    }
                }
            }
        }
        for name in old.keys().filter(|n| !spec.pipelines.contains_key(*n)) {
            changes.push(format!("- stop pipeline {}.{name}", spec.domain));
        }
        (changes, errors)
    }

    /// Each field of `p`'s output (a column, or a view's key and features) and the input
    /// columns (`<domain>.<stream>.<column>`) it is computed from: from the SQL's plan, or the
    /// inputs' own columns when there is no SQL.
    pub async fn output_origins(
        &self,
        p: &PipelineSpec,
        known: &[DomainSpec],
    ) -> BTreeMap<String, BTreeSet<String>> {
        let contracts = input_contracts(known, &p.inputs);
        let columns: BTreeMap<String, BTreeSet<String>> = match &p.sql {
            Some(sql) => self
                .engine
                .column_lineage(sql, &contracts, p.window.is_some())
                .await
                .unwrap_or_default()
                .into_iter()
                .collect(),
            None => contracts
                .iter()
                .flat_map(|(topic, c)| {
                    c.fields()
                        .into_iter()
                        .map(move |(f, _)| (f.clone(), BTreeSet::from([format!("{topic}.{f}")])))
                })
                .collect(),
        };
        match p.output.target() {
            Ok(Output::View { key, features, .. }) => features
                .iter()
                .filter_map(|(feature, f)| f.of.as_deref().map(|of| (feature.as_str(), of)))
                .chain(std::iter::once((key, key)))
                .map(|(field, of)| {
                    (
                        field.to_string(),
                        columns.get(of).cloned().unwrap_or_default(),
                    )
                })
                .collect(),
            _ => columns,
        }
    }

    /// Why pipeline `name` of `spec` may not run where `known` are the domains: an input its
    /// domain is not a reader of, or a classified field it exposes without the grant.
    async fn admission(
        &self,
        spec: &DomainSpec,
        name: &str,
        p: &PipelineSpec,
        known: &[DomainSpec],
    ) -> Vec<String> {
        let mut refusals = Vec::new();
        for input in &p.inputs {
            let readers = known
                .iter()
                .flat_map(|d| &d.streams)
                .find(|s| s.topic == *input)
                .map(|s| s.readers.as_slice());
            if let Some(why) = refuse_input(&spec.domain, input, readers) {
                refusals.push(format!("pipeline {}.{name}: {why}", spec.domain));
            }
        }
        refusals.extend(crate::exposure::refusals(self, spec, name, p, known).await);
        refusals
    }

    /// Runs those of `spec`'s pipelines that `applied` (the applied domains) admits, and stops
    /// the rest; touches no other domain's. Plan refuses a pipeline that would not be admitted,
    /// but readers and grants are checked again here, against applied state only, each time
    /// a domain's pipelines are (re)started. Returns why each one not run was refused.
    pub async fn deploy(&self, spec: &DomainSpec, applied: &[DomainSpec]) -> Vec<String> {
        let mut admitted = BTreeMap::new();
        let mut refused = Vec::new();
        for (name, p) in &spec.pipelines {
            let why = self.admission(spec, name, p, applied).await;
            if why.is_empty() {
                admitted.insert(name.clone(), p.clone());
            } else {
                for w in &why {
                    tracing::error!("not running: {w}");
                }
                refused.extend(why);
            }
        }
        self.supervisor.sync_domain(&spec.domain, &admitted);
        refused
    }
}

fn describe(p: &PipelineSpec) -> String {
    let mode = match p.mode {
        headwater_domains::PipelineMode::Batch => "batch",
        headwater_domains::PipelineMode::Streaming => "streaming",
    };
    let schedule = p
        .schedule
        .as_ref()
        .map(|s| format!(", schedule \"{s}\""))
        .unwrap_or_default();
    let output = match p.output.target() {
        Ok(Output::Table { name, .. }) => format!("table {name}"),
        Ok(Output::Stream(s)) => format!("stream {s}"),
        Ok(Output::View { name, .. }) => format!("view {name}"),
        Err(e) => e.to_string(),
    };
    format!(
        "{mode}{schedule}, reads {}, writes {output}",
        p.inputs.join(", ")
    )
}

/// The contracts of `inputs` as `known` domains declare them, by topic.
pub(crate) fn input_contracts(
    known: &[DomainSpec],
    inputs: &[String],
) -> BTreeMap<String, Contract> {
    known
        .iter()
        .flat_map(|d| &d.streams)
        .filter(|s| inputs.contains(&s.topic))
        .filter_map(|s| {
            Contract::parse(s.format, &s.schema)
                .ok()
                .map(|c| (s.topic.clone(), c))
        })
        .collect()
}
