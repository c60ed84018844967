//! What every streaming pipeline shares, whatever it writes: reading its inputs in
//! micro-batches from its positions, and running its SQL over one micro-batch.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::json::writer::{JsonArray, WriterBuilder};
use datafusion::common::TableReference;
use datafusion::datasource::MemTable;
use datafusion::prelude::{SessionConfig, SessionContext};
use serde::Serialize;

use crate::engine::{register_schema, Functions};
use crate::error::Fault;
use crate::sink::StreamSink;
use crate::source::{Offsets, StreamRecord, StreamSource};
use crate::{table_schema, to_batches, PipelineError};

/// Records read per input per micro-batch.
const MICRO_BATCH: usize = 5_000;

/// Counters a running streaming pipeline reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub(crate) struct Flow {
    pub(crate) records_in: u64,
    pub(crate) records_out: u64,
    /// Windowed pipelines: records that came after their windows' allowed lateness.
    pub(crate) late_dropped: u64,
    /// When the micro-batch now being processed started, if one is.
    pub(crate) busy_since_ms: Option<i64>,
}

impl Flow {
    /// These counters, marked busy from now.
    pub(crate) fn busy(self) -> Flow {
        Flow {
            busy_since_ms: Some(crate::now_ms()),
            ..self
        }
    }
}

/// What a streaming pipeline reads from, writes to and waits on.
#[derive(Debug, Clone)]
pub(crate) struct StreamContext {
    pub(crate) source: Arc<dyn StreamSource>,
    pub(crate) sink: Arc<dyn StreamSink>,
    /// Woken on every append to the log.
    pub(crate) appended: Arc<tokio::sync::Notify>,
    pub(crate) functions: Functions,
}

/// The consumer group a streaming pipeline reads as: its positions are visible to lag, status
/// and `/v1/consistency` like any subscriber's.
pub fn pipeline_group(domain: &str, name: &str) -> String {
    format!("_pipeline.{domain}.{name}")
}

/// Inputs of a domain applied after this one appear a moment later: waits for them.
pub(crate) async fn wait_for_inputs(source: &Arc<dyn StreamSource>, inputs: &[String]) {
    while let Some(missing) = inputs.iter().find(|i| source.end_offsets(i).is_none()) {
        tracing::debug!(input = %missing, "pipeline waits for its input to exist");
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

/// Where to read each input from: `saved` positions over the start of each partition.
pub(crate) fn start_positions(
    source: &Arc<dyn StreamSource>,
    inputs: &[String],
    saved: &BTreeMap<String, Offsets>,
) -> Result<BTreeMap<String, Offsets>, PipelineError> {
    let mut positions = BTreeMap::new();
    for input in inputs {
        let mut at = source
            .start_offsets(input)
            .ok_or_else(|| PipelineError::UnknownInput {
                stream: input.clone(),
            })?;
        if let Some(c) = saved.get(input) {
            at.extend(c.iter().map(|(p, o)| (*p, *o)));
        }
        positions.insert(input.clone(), at);
    }
    Ok(positions)
}

/// What one micro-batch read: the positions it ends at, its records per input, their count.
pub(crate) type MicroBatch = (
    BTreeMap<String, Offsets>,
    Vec<(String, Vec<StreamRecord>)>,
    usize,
);

/// Waits for records past `positions` and reads them as a micro-batch.
pub(crate) async fn next_micro_batch(
    ctx: &StreamContext,
    inputs: &[String],
    positions: &BTreeMap<String, Offsets>,
) -> Result<MicroBatch, PipelineError> {
    loop {
        let notified = ctx.appended.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let batch = read_micro_batch(&ctx.source, inputs, positions, None)?;
        if batch.2 > 0 || batch.0 != *positions {
            return Ok(batch);
        }
        let _ = tokio::time::timeout(std::time::Duration::from_millis(500), notified).await;
    }
}

/// Reads the next micro-batch from `positions`: up to [`MICRO_BATCH`] records per input, or
/// exactly up to `redo` when redoing an interrupted one.
pub(crate) fn read_micro_batch(
    source: &Arc<dyn StreamSource>,
    inputs: &[String],
    positions: &BTreeMap<String, Offsets>,
    redo: Option<&BTreeMap<String, Offsets>>,
) -> Result<MicroBatch, PipelineError> {
    let mut next = positions.clone();
    let mut out = Vec::new();
    let mut read = 0usize;
    for input in inputs {
        let at = next.entry(input.clone()).or_default();
        let end = match redo {
            Some(intent) => intent.get(input).cloned().unwrap_or_else(|| at.clone()),
            None => source.end_offsets(input).unwrap_or_default(),
        };
        let mut records = Vec::new();
        loop {
            let before = at.clone();
            let limit = if redo.is_some() {
                MICRO_BATCH * 4
            } else {
                MICRO_BATCH - records.len().min(MICRO_BATCH)
            };
            let chunk = source
                .read(input, at, &end, limit.max(1))
                .map_err(|source| PipelineError::Read {
                    stream: input.clone(),
                    source,
                })?;
            records.extend(chunk);
            let done = end.iter().all(|(p, e)| at.get(p).is_some_and(|x| x >= e));
            if *at == before || done || (redo.is_none() && records.len() >= MICRO_BATCH) {
                break;
            }
        }
        read += records.len();
        out.push((input.clone(), records));
    }
    Ok((next, out, read))
}

/// Runs the SQL over one micro-batch per input; rows come out in input order (one partition,
/// no repartitioning), so a redone micro-batch gives the same output.
pub(crate) async fn transform(
    ctx: &StreamContext,
    sql: &str,
    inputs: &[(String, Vec<StreamRecord>)],
) -> Result<Vec<serde_json::Value>, PipelineError> {
    let schemas = inputs
        .iter()
        .map(|(topic, _)| {
            (
                topic.clone(),
                table_schema(ctx.source.contract(topic).as_ref()),
            )
        })
        .collect();
    transform_with(ctx, &schemas, sql, inputs).await
}

/// [`transform`] with each input's table schema given.
pub(crate) async fn transform_with(
    ctx: &StreamContext,
    schemas: &BTreeMap<String, SchemaRef>,
    sql: &str,
    inputs: &[(String, Vec<StreamRecord>)],
) -> Result<Vec<serde_json::Value>, PipelineError> {
    let session = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(1));
    ctx.functions.register(&session);
    for (topic, records) in inputs {
        let schema = schemas.get(topic).cloned().ok_or_else(|| Fault::Broken {
            what: format!("no table schema for input '{topic}'"),
        })?;
        let batches = to_batches(records, &schema)?;
        let (domain, table) = topic.split_once('.').unwrap_or(("public", topic));
        register_schema(&session, domain);
        let mem = MemTable::try_new(schema, vec![batches])?;
        session.register_table(TableReference::partial(domain, table), Arc::new(mem))?;
    }
    let batches = crate::read_only::sql(&session, sql)
        .await?
        .collect()
        .await?;
    let mut buf = Vec::new();
    let mut writer = WriterBuilder::new().build::<_, JsonArray>(&mut buf);
    for b in &batches {
        writer.write(b)?;
    }
    writer.finish()?;
    drop(writer);
    if buf.is_empty() {
        return Ok(Vec::new());
    }
    serde_json::from_slice(&buf).map_err(|source| {
        Fault::Json {
            what: "reading the SQL's rows as JSON".into(),
            source,
        }
        .into()
    })
}
