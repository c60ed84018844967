//! SQL over streams and tables with DataFusion.
//!
//! A query names tables as `<domain>.<name>`: a stream (read up to a snapshot of its end
//! offsets, decoded with its contract) or a Parquet table written by a pipeline. Only the
//! tables a query names are loaded.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::catalog::MemorySchemaProvider;
use datafusion::common::TableReference;
use datafusion::datasource::MemTable;
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::logical_expr::ScalarUDF;
use datafusion::prelude::{ParquetReadOptions, SessionConfig, SessionContext};

use serde::Deserialize;

use crate::source::{Offsets, StreamSource};
use crate::tables::Tables;
use crate::{table_schema, to_batches, PipelineError};

/// Records read per step while loading a stream.
const READ_CHUNK: usize = 20_000;

/// How far loading the inputs of a query has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Loaded {
    /// Records loaded so far.
    pub records: u64,
    /// Records to load: from each input's start to the end snapshotted.
    pub total: u64,
}

/// Bounds on one ad-hoc query (`[sql]` in the node's config): users share the node, so one
/// query may not take all of its memory or run forever. Pipelines' own SQL is not bounded by
/// these: its owners sized it in their manifest, and its runs are supervised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SqlLimits {
    /// Memory one query's operators and loaded streams may hold, in bytes. 512 MiB: room for
    /// sorting and grouping a few million rows while leaving most of a small node free.
    pub max_memory_bytes: u64,
    /// How long one query may run, in milliseconds, loading its inputs included. One minute:
    /// longer work belongs in a batch pipeline writing a table.
    pub timeout_ms: u64,
}

impl Default for SqlLimits {
    fn default() -> Self {
        SqlLimits {
            max_memory_bytes: 512 << 20,
            timeout_ms: 60_000,
        }
    }
}

/// One bounded query's deadline and runtime (whose memory pool caps what its operators hold).
struct Bounds {
    limits: SqlLimits,
    deadline: Instant,
    runtime: Arc<RuntimeEnv>,
}

impl Bounds {
    fn new(limits: SqlLimits) -> Result<Bounds, PipelineError> {
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_limit(
                usize::try_from(limits.max_memory_bytes).unwrap_or(usize::MAX),
                1.0,
            )
            // Nothing spills to disk: a user's query writes no files on the node.
            .with_disk_manager_builder(
                DiskManagerBuilder::default().with_mode(DiskManagerMode::Disabled),
            )
            .build_arc()?;
        Ok(Bounds {
            limits,
            deadline: Instant::now() + Duration::from_millis(limits.timeout_ms),
            runtime,
        })
    }

    fn timed_out(&self) -> PipelineError {
        PipelineError::TimedOut {
            limit_ms: self.limits.timeout_ms,
        }
    }

    /// DataFusion's "resources exhausted" as the limit the user ran into.
    fn explain(&self, e: PipelineError) -> PipelineError {
        use datafusion::error::DataFusionError;
        let exhausted = match &e {
            // DataFusion wraps it as it crosses operators and tasks; the root says what ran out.
            PipelineError::DataFusion { source } => match source.find_root() {
                DataFusionError::ResourcesExhausted(detail) => Some(detail.clone()),
                _ => None,
            },
            _ => None,
        };
        match exhausted {
            Some(detail) => PipelineError::OutOfMemory {
                limit_bytes: self.limits.max_memory_bytes,
                detail,
            },
            None => e,
        }
    }
}

/// Runs SQL over the node's streams (through a [`StreamSource`]) and its [`Tables`].
#[derive(Debug, Clone)]
pub struct Engine {
    source: Arc<dyn StreamSource>,
    tables: Tables,
    functions: Functions,
    limits: SqlLimits,
}

/// SQL functions the embedding application adds to every query and pipeline.
#[derive(Debug, Clone, Default)]
pub struct Functions(Arc<parking_lot::RwLock<Vec<ScalarUDF>>>);

impl Functions {
    /// Adds `f` to every session from now on.
    pub fn add(&self, f: ScalarUDF) {
        self.0.write().push(f);
    }

    /// Registers every function with `ctx`.
    pub fn register(&self, ctx: &SessionContext) {
        for f in self.0.read().iter() {
            ctx.register_udf(f.clone());
        }
    }
}

/// What a query reads: a stream up to offsets, or a table.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// A stream, read up to `end`.
    Stream {
        /// `<domain>.<stream>`.
        topic: String,
        /// The end offsets snapshotted when the query was planned.
        end: Offsets,
    },
    /// A Parquet table written by a pipeline.
    Table {
        /// The table's domain.
        domain: String,
        /// The table's name in its domain.
        name: String,
    },
}

impl Engine {
    /// An engine over `source`'s streams and `tables`, with no added functions yet.
    pub fn new(source: Arc<dyn StreamSource>, tables: Tables) -> Self {
        Engine {
            source,
            tables,
            functions: Functions::default(),
            limits: SqlLimits::default(),
        }
    }

    /// The same engine with `limits` on each ad-hoc [`Engine::query`].
    pub fn with_limits(self, limits: SqlLimits) -> Self {
        Engine { limits, ..self }
    }

    /// The functions every query and pipeline gets; add to them here.
    pub fn functions(&self) -> &Functions {
        &self.functions
    }

    /// The tables queries read and pipelines write.
    pub fn tables(&self) -> &Tables {
        &self.tables
    }

    /// The streams queries and pipelines read.
    pub fn source(&self) -> &Arc<dyn StreamSource> {
        &self.source
    }

    fn session(&self) -> SessionContext {
        self.session_on(None)
    }

    /// A session on `runtime` (a bounded query's), or on DataFusion's default runtime.
    fn session_on(&self, runtime: Option<Arc<RuntimeEnv>>) -> SessionContext {
        let config = SessionConfig::new()
            .with_information_schema(true)
            .with_default_catalog_and_schema("datafusion", "public");
        let ctx = match runtime {
            Some(runtime) => SessionContext::new_with_config_rt(config, runtime),
            None => SessionContext::new_with_config(config),
        };
        self.functions.register(&ctx);
        ctx
    }

    /// The `<domain>.<name>` tables `sql` reads, resolved to streams (with their end offsets
    /// now) or tables.
    pub fn inputs_of(&self, sql: &str) -> Result<Vec<Input>, PipelineError> {
        let ctx = self.session();
        let state = ctx.state();
        let statement = state.sql_to_statement(sql, &Default::default())?;
        crate::read_only::check(&statement)?;
        let mut out = Vec::new();
        for r in state.resolve_table_references(&statement)? {
            let (Some(domain), name) = (r.schema(), r.table()) else {
                if r.table() == "tables"
                    || r.table() == "columns"
                    || r.schema() == Some("information_schema")
                {
                    continue;
                }
                return Err(PipelineError::UnqualifiedTable {
                    table: r.to_string(),
                });
            };
            if domain == "information_schema" {
                continue;
            }
            let topic = format!("{domain}.{name}");
            let input = if let Some(end) = self.source.end_offsets(&topic) {
                Input::Stream { topic, end }
            } else if self.tables.meta(domain, name).is_some() {
                Input::Table {
                    domain: domain.to_string(),
                    name: name.to_string(),
                }
            } else {
                return Err(PipelineError::UnknownTable { name: topic });
            };
            if !out.contains(&input) {
                out.push(input);
            }
        }
        Ok(out)
    }

    /// A session holding `inputs`: streams read up to their `end`, calling `progress` as records
    /// load.
    pub async fn session_with(
        &self,
        inputs: &[Input],
        progress: &(dyn Fn(Loaded) + Send + Sync),
    ) -> Result<SessionContext, PipelineError> {
        self.session_within(inputs, progress, None).await
    }

    /// [`Engine::session_with`], within `bounds` when given: loading stops at the deadline,
    /// and the streams loaded count against the memory limit.
    async fn session_within(
        &self,
        inputs: &[Input],
        progress: &(dyn Fn(Loaded) + Send + Sync),
        bounds: Option<&Bounds>,
    ) -> Result<SessionContext, PipelineError> {
        let ctx = self.session_on(bounds.map(|b| b.runtime.clone()));
        let mut held: u64 = 0;
        let total: u64 = inputs
            .iter()
            .map(|i| match i {
                Input::Stream { topic, end } => {
                    let start = self.source.start_offsets(topic).unwrap_or_default();
                    end.iter()
                        .map(|(p, e)| (e - start.get(p).copied().unwrap_or(0)).max(0) as u64)
                        .sum()
                }
                Input::Table { .. } => 0,
            })
            .sum();
        let mut loaded = Loaded { records: 0, total };
        progress(loaded);
        for input in inputs {
            match input {
                Input::Stream { topic, end } => {
                    let schema = table_schema(self.source.contract(topic).as_ref());
                    let batches =
                        self.load_stream(topic, end, &schema, &mut loaded, progress, bounds)?;
                    held += batches
                        .iter()
                        .map(|b| b.get_array_memory_size() as u64)
                        .sum::<u64>();
                    if let Some(b) = bounds.filter(|b| held > b.limits.max_memory_bytes) {
                        return Err(PipelineError::OutOfMemory {
                            limit_bytes: b.limits.max_memory_bytes,
                            detail: format!("loading {topic} took {held} bytes"),
                        });
                    }
                    let (domain, name) = topic.split_once('.').unwrap_or(("public", topic));
                    register_schema(&ctx, domain);
                    let parts = spread(batches, ctx.copied_config().target_partitions());
                    let table = MemTable::try_new(schema, parts)?;
                    ctx.register_table(TableReference::partial(domain, name), Arc::new(table))?;
                }
                Input::Table { domain, name } => {
                    register_schema(&ctx, domain);
                    let meta = self.tables.meta(domain, name);
                    let partition_cols = meta
                        .map(|m| {
                            m.partition_by
                                .into_iter()
                                .map(|(c, t)| (c, DataType::from_str(&t).unwrap_or(DataType::Utf8)))
                                .collect()
                        })
                        .unwrap_or_default();
                    let dir = self.tables.dir(domain, name);
                    let options = ParquetReadOptions {
                        table_partition_cols: partition_cols,
                        ..Default::default()
                    };
                    ctx.register_parquet(
                        TableReference::partial(domain.as_str(), name.as_str()),
                        &format!("{}/", dir.display()),
                        options,
                    )
                    .await?;
                }
            }
        }
        Ok(ctx)
    }

    fn load_stream(
        &self,
        topic: &str,
        end: &Offsets,
        schema: &SchemaRef,
        loaded: &mut Loaded,
        progress: &(dyn Fn(Loaded) + Send + Sync),
        bounds: Option<&Bounds>,
    ) -> Result<Vec<RecordBatch>, PipelineError> {
        let mut positions = self.source.start_offsets(topic).unwrap_or_default();
        let mut out = Vec::new();
        loop {
            // Reading is synchronous: the deadline is checked between chunks, not by a timer.
            if let Some(b) = bounds.filter(|b| Instant::now() >= b.deadline) {
                return Err(b.timed_out());
            }
            let before = positions.clone();
            let records = self
                .source
                .read(topic, &mut positions, end, READ_CHUNK)
                .map_err(|source| PipelineError::Read {
                    stream: topic.to_string(),
                    source,
                })?;
            loaded.records += records.len() as u64;
            out.extend(to_batches(&records, schema)?);
            progress(*loaded);
            if positions == before
                || end
                    .iter()
                    .all(|(p, e)| positions.get(p).is_some_and(|at| at >= e))
            {
                return Ok(out);
            }
        }
    }

    /// Runs a read-only query over `inputs` (what [`Engine::inputs_of`] found in `sql`, which
    /// also checked it only reads; the caller checks who may read them), within the engine's
    /// [`SqlLimits`].
    pub async fn query(
        &self,
        sql: &str,
        inputs: &[Input],
    ) -> Result<(SchemaRef, Vec<RecordBatch>), PipelineError> {
        let bounds = Bounds::new(self.limits)?;
        let run = async {
            let ctx = self.session_within(inputs, &|_| {}, Some(&bounds)).await?;
            let df = crate::read_only::sql(&ctx, sql).await?;
            let schema = Arc::new(df.schema().as_arrow().clone());
            Ok::<_, PipelineError>((schema, df.collect().await?))
        };
        match tokio::time::timeout_at(bounds.deadline.into(), run).await {
            Ok(result) => result.map_err(|e| bounds.explain(e)),
            Err(_) => Err(bounds.timed_out()),
        }
    }

    /// Plans `sql` over empty tables of its inputs' schemas: a wrong column or function is found
    /// before anything runs. `contracts` overrides the node's latest contract per stream (a plan
    /// that registers a new version checks against it).
    /// `windowed` adds the `window_start` and `window_end` columns a windowed pipeline's
    /// inputs have.
    pub async fn check(
        &self,
        sql: &str,
        contracts: &BTreeMap<String, headwater_contracts::Contract>,
        windowed: bool,
    ) -> Result<SchemaRef, PipelineError> {
        let plan = self.logical_plan(sql, contracts, windowed).await?;
        Ok(Arc::new(plan.schema().as_arrow().clone()))
    }

    /// For each column `sql` produces, the input columns (`<domain>.<stream>.<column>`) it is
    /// computed from, planned over `contracts` as [`Engine::check`] plans it.
    pub async fn column_lineage(
        &self,
        sql: &str,
        contracts: &BTreeMap<String, headwater_contracts::Contract>,
        windowed: bool,
    ) -> Result<Vec<(String, std::collections::BTreeSet<String>)>, PipelineError> {
        let plan = self.logical_plan(sql, contracts, windowed).await?;
        Ok(crate::lineage::column_origins(&plan))
    }

    /// Every input column (`<domain>.<stream>.<column>`) `sql` reads anywhere (in its result,
    /// filters, joins or groupings), from the scans of its optimized plan.
    pub async fn columns_read(
        &self,
        sql: &str,
        contracts: &BTreeMap<String, headwater_contracts::Contract>,
        windowed: bool,
    ) -> Result<std::collections::BTreeSet<String>, PipelineError> {
        let plan = self.logical_plan(sql, contracts, windowed).await?;
        let optimized = self.session().state().optimize(&plan)?;
        Ok(crate::lineage::columns_scanned(&optimized))
    }

    async fn logical_plan(
        &self,
        sql: &str,
        contracts: &BTreeMap<String, headwater_contracts::Contract>,
        windowed: bool,
    ) -> Result<datafusion::logical_expr::LogicalPlan, PipelineError> {
        let ctx = self.session();
        let state = ctx.state();
        let statement = state.sql_to_statement(sql, &Default::default())?;
        crate::read_only::check(&statement)?;
        for r in state.resolve_table_references(&statement)? {
            let (Some(domain), name) = (r.schema(), r.table()) else {
                return Err(PipelineError::UnqualifiedTable {
                    table: r.to_string(),
                });
            };
            let topic = format!("{domain}.{name}");
            let contract = contracts
                .get(&topic)
                .cloned()
                .or_else(|| self.source.contract(&topic));
            register_schema(&ctx, domain);
            let schema = if windowed {
                crate::arrow_schema::window_table_schema(contract.as_ref())
            } else {
                table_schema(contract.as_ref())
            };
            ctx.register_table(
                TableReference::partial(domain, name),
                Arc::new(MemTable::try_new(schema, vec![vec![]])?),
            )?;
        }
        let df = crate::read_only::sql(&ctx, sql).await?;
        Ok(df.logical_plan().clone())
    }
}

/// Makes `domain` a schema of `ctx`'s catalog, so `<domain>.<name>` tables can be registered.
pub(crate) fn register_schema(ctx: &SessionContext, domain: &str) {
    if let Some(catalog) = ctx.catalog("datafusion") {
        if catalog.schema(domain).is_none() {
            let _ = catalog.register_schema(domain, Arc::new(MemorySchemaProvider::new()));
        }
    }
}

/// Deals batches round-robin into `n` partitions, so DataFusion scans them in parallel.
fn spread(batches: Vec<RecordBatch>, n: usize) -> Vec<Vec<RecordBatch>> {
    let n = n.max(1);
    let mut parts: Vec<Vec<RecordBatch>> = vec![Vec::new(); n];
    for (i, b) in batches.into_iter().enumerate() {
        parts[i % n].push(b);
    }
    parts.retain(|p| !p.is_empty());
    if parts.is_empty() {
        parts.push(Vec::new());
    }
    parts
}
