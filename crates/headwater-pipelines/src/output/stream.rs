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
use std::convert::Infallible;

use headwater_domains::Output;
use serde::{Deserialize, Serialize};

use crate::micro_batch::{
    pipeline_group, read_micro_batch, start_positions, transform, wait_for_inputs, Flow,
    StreamContext,
};
use crate::output::Deployed;
use crate::sink::ProducerId;
use crate::source::Offsets;
use crate::PipelineError;

/// What the group's commit metadata holds.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
struct Checkpoint {
    producer: Option<ProducerId>,
    /// Next sequence number per output partition.
    sequences: BTreeMap<i32, i32>,
    /// While a micro-batch's output is being written: the input positions it ends at.
    intent: Option<BTreeMap<String, Offsets>>,
    /// The SQL that wrote the output so far: a redo with other SQL would give other rows.
    #[serde(default)]
    sql: Option<String>,
}

/// Runs until an error: the caller restarts it with backoff, and it resumes from its checkpoint.
pub(crate) async fn run_stream_pipeline(
    ctx: &StreamContext,
    Deployed { domain, name, spec }: Deployed<'_>,
    flow: &(dyn Fn(Flow) + Send + Sync),
) -> Result<Infallible, PipelineError> {
    let (source, sink) = (&ctx.source, &ctx.sink);
    let Ok(Output::Stream(out)) = spec.output.target() else {
        return Err(PipelineError::WrongOutput {
            pipeline: format!("{domain}.{name}"),
            expected: "a stream",
        });
    };
    let output = format!("{domain}.{out}");
    let sql = spec
        .sql
        .clone()
        .unwrap_or_else(|| format!("SELECT * FROM {}", spec.inputs.join(", ")));
    let group = pipeline_group(domain, name);
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
        let notified = ctx.appended.notified();
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
        let rows = transform(ctx, &sql, &inputs).await?;
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
