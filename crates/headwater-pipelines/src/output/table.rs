//! One run of a pipeline writing a table (`mode: batch` in its manifest): snapshot the inputs'
//! end offsets, load them, run the SQL, and replace the output table with the result (see
//! [`crate::tables`]). A run is a pure function of its inputs up to the snapshot, so running
//! again after a crash gives the same table: no output is lost or doubled.
//!
//! (Not to be confused with a Kafka record batch, which `headwater-log` owns.)

use std::collections::BTreeMap;
use std::time::Instant;

use datafusion::dataframe::DataFrameWriteOptions;
use headwater_domains::{Output, PipelineSpec};
use serde::Serialize;

use crate::engine::{Engine, Input, Loaded};
use crate::tables::{write_meta, TableMeta};
use crate::{now_ms, PipelineError};

/// What a finished run (or a view's rebuild) did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunReport {
    /// `<domain>.<pipeline>`.
    pub pipeline: String,
    /// The run's id.
    pub run: String,
    /// The table written (`<domain>.<table>`), or the view rebuilt.
    pub table: String,
    /// Rows written (a view: keys held).
    pub rows: u64,
    /// Input records read.
    pub records: u64,
    /// Per input stream, the offsets read up to (exclusive), per partition.
    pub inputs: BTreeMap<String, BTreeMap<i32, i64>>,
    /// How long the run took.
    pub elapsed_ms: u64,
    /// When it finished, in milliseconds since the Unix epoch.
    pub finished_at_ms: i64,
}

/// Progress of a run, for a progress bar.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum Progress {
    /// Reading the inputs: `records` of `total` loaded.
    Loading {
        /// Records loaded so far.
        records: u64,
        /// Records to load.
        total: u64,
    },
    /// Running the SQL.
    Querying,
    /// Writing the result.
    Writing,
}

/// Runs `spec` (a pipeline of `domain` writing a table) once.
pub async fn run_table_pipeline(
    engine: &Engine,
    domain: &str,
    name: &str,
    spec: &PipelineSpec,
    progress: &(dyn Fn(Progress) + Send + Sync),
) -> Result<RunReport, PipelineError> {
    let started = Instant::now();
    let pipeline = format!("{domain}.{name}");
    let (table, partition_by) = match spec.output.target() {
        Ok(Output::Table { name, partition_by }) => (name.to_string(), partition_by.to_vec()),
        _ => {
            return Err(PipelineError::WrongOutput {
                pipeline,
                expected: "a table",
            })
        }
    };
    let sql = spec.sql.as_deref().ok_or_else(|| PipelineError::NoSql {
        pipeline: pipeline.clone(),
    })?;
    let inputs = engine.inputs_of(sql)?;
    for i in &inputs {
        if let Input::Stream { topic, .. } = i {
            if !spec.inputs.contains(topic) {
                return Err(PipelineError::UndeclaredInput {
                    pipeline,
                    stream: topic.clone(),
                });
            }
        }
    }
    let read = std::sync::atomic::AtomicU64::new(0);
    let ctx = engine
        .session_with(&inputs, &|l: Loaded| {
            read.store(l.records, std::sync::atomic::Ordering::Relaxed);
            progress(Progress::Loading {
                records: l.records,
                total: l.total,
            })
        })
        .await?;
    // Records actually read: offsets of records that went to a dead-letter stream hold none.
    let records = read.load(std::sync::atomic::Ordering::Relaxed);
    progress(Progress::Querying);
    let df = crate::read_only::sql(&ctx, sql).await?;
    let schema = df.schema().as_arrow().clone();
    let mut partition_types = Vec::new();
    for col in &partition_by {
        let field =
            schema
                .field_with_name(col)
                .map_err(|_| PipelineError::UnknownPartitionColumn {
                    pipeline: pipeline.clone(),
                    column: col.clone(),
                    columns: schema.fields().iter().map(|f| f.name().clone()).collect(),
                })?;
        partition_types.push((col.clone(), field.data_type().to_string()));
    }
    progress(Progress::Writing);
    let run = uuid::Uuid::new_v4().simple().to_string();
    let staging = engine.tables().staging_dir(domain, &table, &run);
    std::fs::create_dir_all(&staging)
        .map_err(|e| PipelineError::io(format!("creating {}", staging.display()), e))?;
    let written = df
        .write_parquet(
            &format!("{}/", staging.display()),
            DataFrameWriteOptions::new().with_partition_by(partition_by.clone()),
            None,
        )
        .await?;
    let rows = written
        .first()
        .and_then(|b| {
            b.column(0)
                .as_any()
                .downcast_ref::<datafusion::arrow::array::UInt64Array>()
                .map(|a| a.value(0))
        })
        .unwrap_or(0);
    let input_offsets: BTreeMap<String, BTreeMap<i32, i64>> = inputs
        .iter()
        .filter_map(|i| match i {
            Input::Stream { topic, end } => Some((topic.clone(), end.clone())),
            Input::Table { .. } => None,
        })
        .collect();
    let finished = now_ms();
    write_meta(
        &staging,
        &TableMeta {
            pipeline: pipeline.clone(),
            run: run.clone(),
            inputs: input_offsets.clone(),
            partition_by: partition_types,
            rows,
            written_at_ms: finished,
        },
    )?;
    engine.tables().commit(domain, &table, &staging)?;
    Ok(RunReport {
        pipeline,
        run,
        table: format!("{domain}.{table}"),
        rows,
        records,
        inputs: input_offsets,
        elapsed_ms: started.elapsed().as_millis() as u64,
        finished_at_ms: finished,
    })
}
