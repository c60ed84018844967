//! A streaming pipeline that writes a stream: records are read as they arrive, in micro-batches,
//! and the pipeline's SQL (projection and filter) turns each into output records.
//!
//! Exactly once, without transactions: the pipeline reads as consumer group
//! `_pipeline.<domain>.<name>`, and the commit metadata holds its checkpoint. It names the
//! pipeline's own idempotent producer id and next sequence number per output partition.
//!
//! Each micro-batch goes through three steps:
//!
//! 1. It commits an intent: the old positions, with the positions the micro-batch ends at.
//! 2. It writes its output with those sequence numbers.
//! 3. It commits the new positions.
//!
//! After a crash between steps 1 and 3, the same records are read again and give the same
//! output in the same order and partitions, with the same sequence numbers. The log answers what
//! it already has as duplicates and appends the rest, so nothing is lost or doubled.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::json::writer::{JsonArray, WriterBuilder};
use datafusion::catalog::MemorySchemaProvider;
use datafusion::common::TableReference;
use datafusion::datasource::MemTable;
use datafusion::prelude::{SessionConfig, SessionContext};
use headwater_domains::{Output, PipelineSpec};
use serde::{Deserialize, Serialize};

use crate::engine::Functions;
use crate::sink::{ProducerId, StreamSink};
use crate::source::{Offsets, StreamRecord, StreamSource};
use crate::{table_schema, to_batches};

/// Records read per input per micro-batch.
const MICRO_BATCH: usize = 5_000;

/// What the group's commit metadata holds.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Checkpoint {
    pub producer: Option<ProducerId>,
    /// Next sequence number per output partition.
    pub sequences: BTreeMap<i32, i32>,
    /// While a micro-batch's output is being written: the input positions it ends at.
    pub intent: Option<BTreeMap<String, Offsets>>,
    /// The SQL that wrote the output so far: a redo with other SQL would give other rows.
    #[serde(default)]
    pub sql: Option<String>,
}

/// Counters a running streaming pipeline reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Flow {
    pub records_in: u64,
    pub records_out: u64,
    /// Windowed pipelines: records that came after their windows' allowed lateness.
    pub late_dropped: u64,
    /// When the micro-batch now being processed started, if one is.
    pub busy_since_ms: Option<i64>,
}

impl Flow {
    /// These counters, marked busy from now.
    pub fn busy(self) -> Flow {
        Flow {
            busy_since_ms: Some(crate::now_ms()),
            ..self
        }
    }
}

/// What a streaming pipeline reads from, writes to and waits on.
#[derive(Debug, Clone)]
pub struct Io {
    pub source: Arc<dyn StreamSource>,
    pub sink: Arc<dyn StreamSink>,
    /// Woken on every append to the log.
    pub appended: Arc<tokio::sync::Notify>,
    pub functions: Functions,
}

pub fn group_of(domain: &str, name: &str) -> String {
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
) -> Result<BTreeMap<String, Offsets>, String> {
    let mut positions = BTreeMap::new();
    for input in inputs {
        let mut at = source
            .start_offsets(input)
            .ok_or_else(|| format!("input '{input}' does not exist"))?;
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
    io: &Io,
    inputs: &[String],
    positions: &BTreeMap<String, Offsets>,
) -> Result<MicroBatch, String> {
    loop {
        let notified = io.appended.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let batch = read_micro_batch(&io.source, inputs, positions, None)?;
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
) -> Result<MicroBatch, String> {
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
            records.extend(source.read(input, at, &end, limit.max(1))?);
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

/// Runs until an error: the caller restarts it with backoff, and it resumes from its checkpoint.
pub async fn run_stream(
    io: &Io,
    domain: &str,
    name: &str,
    spec: &PipelineSpec,
    flow: &(dyn Fn(Flow) + Send + Sync),
) -> Result<(), String> {
    let (source, sink) = (&io.source, &io.sink);
    let Ok(Output::Stream(out)) = spec.output.target() else {
        return Err("this pipeline does not write a stream".into());
    };
    let output = format!("{domain}.{out}");
    let sql = spec
        .sql
        .clone()
        .unwrap_or_else(|| format!("SELECT * FROM {}", spec.inputs.join(", ")));
    let group = group_of(domain, name);
    wait_for_inputs(source, &spec.inputs).await;
    let (committed, meta) = sink.committed(&group, &spec.inputs).await?;
    let mut checkpoint: Checkpoint = meta
        .as_deref()
        .and_then(|m| serde_json::from_str(m).ok())
        .unwrap_or_default();
    if checkpoint.sql.as_deref() != Some(sql.as_str()) {
        // Redeployed with other SQL: its rows for an interrupted micro-batch would not match
        // what was written, so it starts a new producer and sequence. The interrupted
        // micro-batch is processed again with the new SQL (at least once across the change).
        if checkpoint.intent.take().is_some() {
            tracing::warn!(pipeline = %group, "redeployed with new SQL after an interrupted micro-batch: it is processed again");
        }
        checkpoint.producer = None;
        checkpoint.sequences.clear();
        checkpoint.sql = Some(sql.clone());
    }
    let producer = match checkpoint.producer {
        Some(p) => p,
        None => sink.init_producer().await?,
    };
    checkpoint.producer = Some(producer);
    let mut positions = start_positions(source, &spec.inputs, &committed)?;
    let mut totals = Flow::default();
    loop {
        let notified = io.appended.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        // A micro-batch whose output may be partly written is redone exactly.
        let redo = checkpoint.intent.take();
        if let Some(intent) = &redo {
            tracing::info!(pipeline = %group, "redoing the micro-batch a stop interrupted, up to {intent:?}");
        }
        let (next, inputs, read) =
            read_micro_batch(source, &spec.inputs, &positions, redo.as_ref())?;
        if read == 0 && redo.is_none() && next == positions {
            let _ = tokio::time::timeout(std::time::Duration::from_millis(500), notified).await;
            continue;
        }
        flow(totals.busy());
        let rows = transform(io, &sql, &inputs).await?;
        let before = Checkpoint {
            producer: Some(producer),
            sequences: checkpoint.sequences.clone(),
            intent: Some(next.clone()),
            sql: Some(sql.clone()),
        };
        sink.commit(
            &group,
            &positions,
            &serde_json::to_string(&before).unwrap_or_default(),
        )
        .await?;
        let written = rows.len();
        sink.write(&output, rows, producer, &mut checkpoint.sequences)
            .await?;
        checkpoint.intent = None;
        sink.commit(
            &group,
            &next,
            &serde_json::to_string(&checkpoint).unwrap_or_default(),
        )
        .await?;
        positions = next;
        totals.records_in += read as u64;
        totals.records_out += written as u64;
        flow(totals);
    }
}

/// Runs the SQL over one micro-batch per input; rows come out in input order (one partition,
/// no repartitioning), so a redone micro-batch gives the same output.
pub(crate) async fn transform(
    io: &Io,
    sql: &str,
    inputs: &[(String, Vec<StreamRecord>)],
) -> Result<Vec<serde_json::Value>, String> {
    let schemas = inputs
        .iter()
        .map(|(topic, _)| {
            (
                topic.clone(),
                table_schema(io.source.contract(topic).as_ref()),
            )
        })
        .collect();
    transform_with(io, &schemas, sql, inputs).await
}

/// [`transform`] with each input's table schema given.
pub(crate) async fn transform_with(
    io: &Io,
    schemas: &BTreeMap<String, SchemaRef>,
    sql: &str,
    inputs: &[(String, Vec<StreamRecord>)],
) -> Result<Vec<serde_json::Value>, String> {
    let ctx = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(1));
    io.functions.register(&ctx);
    for (topic, records) in inputs {
        let schema = schemas
            .get(topic)
            .cloned()
            .ok_or_else(|| format!("no table schema for input '{topic}'"))?;
        let batches = to_batches(records, &schema).map_err(|e| e.to_string())?;
        let (domain, table) = topic.split_once('.').unwrap_or(("public", topic));
        if let Some(catalog) = ctx.catalog("datafusion") {
            if catalog.schema(domain).is_none() {
                let _ = catalog.register_schema(domain, Arc::new(MemorySchemaProvider::new()));
            }
        }
        let mem = MemTable::try_new(schema, vec![batches]).map_err(|e| e.to_string())?;
        ctx.register_table(TableReference::partial(domain, table), Arc::new(mem))
            .map_err(|e| e.to_string())?;
    }
    let batches = ctx
        .sql(sql)
        .await
        .map_err(|e| e.to_string())?
        .collect()
        .await
        .map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    let mut writer = WriterBuilder::new().build::<_, JsonArray>(&mut buf);
    for b in &batches {
        writer.write(b).map_err(|e| e.to_string())?;
    }
    writer.finish().map_err(|e| e.to_string())?;
    drop(writer);
    if buf.is_empty() {
        return Ok(Vec::new());
    }
    serde_json::from_slice(&buf).map_err(|e| e.to_string())
}
