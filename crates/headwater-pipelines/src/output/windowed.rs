//! Streaming pipelines over event-time windows: tumbling or hopping, closed by a watermark,
//! re-emitted for records up to an allowed lateness.
//!
//! Records are buffered by event time until no window containing them can fire again. The
//! watermark is the oldest of the input partitions' newest event times, minus the declared
//! `watermark`. A window
//! `[start, end)` fires once the watermark reaches `end`: the pipeline's SQL runs over its
//! records (with `window_start` and `window_end` columns added) and the rows go to the output
//! stream. A record for a window that already fired, arriving before the watermark passes
//! `end + allowed_lateness`, fires that window again with it; a later record is dropped and
//! counted in the pipeline's state.
//!
//! Exactly once: the buffer, the positions read and the rows about to be written (with the
//! producer sequence numbers they get) are one redb transaction under
//! `<data>/pipelines/<domain>/<name>.redb`. The rows are then written with the pipeline's
//! idempotent producer and the pending rows cleared. After a crash the pending rows are written
//! again with the same sequence numbers, and the log drops what it already has.

use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;
use std::sync::Arc;

use datafusion::arrow::datatypes::Schema;
use headwater_domains::{Output, WindowSpec};
use redb::{Database, ReadableDatabase, TableDefinition};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::arrow_schema::window_table_schema;
use crate::error::Fault;
use crate::micro_batch::{
    next_micro_batch, pipeline_group, start_positions, transform_with, wait_for_inputs, Flow,
    StreamContext,
};
use crate::output::Deployed;
use crate::sink::ProducerId;
use crate::source::{Offsets, StreamRecord};
use crate::state_files::StateFile;
use crate::PipelineError;

/// Buffered records by (event time, arrival sequence).
const BUFFER: TableDefinition<'static, (i64, u64), &[u8]> = TableDefinition::new("buffer");
const META: TableDefinition<'static, &str, &str> = TableDefinition::new("meta");
const CHECKPOINT: &str = "checkpoint";

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Checkpoint {
    positions: BTreeMap<String, Offsets>,
    producer: Option<ProducerId>,
    /// Next sequence number per output partition.
    sequences: BTreeMap<i32, i32>,
    /// Rows computed but maybe not all written, with the sequences they start at.
    pending: Option<(Vec<Value>, BTreeMap<i32, i32>)>,
    /// Newest event time seen per input partition (`<input>/<partition>`).
    partition_max: BTreeMap<String, i64>,
    /// The watermark reached; it never goes back.
    watermark: Option<i64>,
    /// Every window ending at or before this has fired.
    fired_until: Option<i64>,
    next_seq: u64,
    late_dropped: u64,
}

/// A buffered record: what SQL needs of it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Buffered {
    input: String,
    partition: i32,
    offset: i64,
    timestamp: i64,
    key: Option<String>,
    value: String,
}

#[derive(Debug, Clone, Copy)]
struct Windows {
    size: i64,
    hop: i64,
    watermark: i64,
    lateness: i64,
}

impl Windows {
    fn of(spec: &WindowSpec) -> Windows {
        Windows {
            size: spec.size.millis as i64,
            hop: spec.hop.unwrap_or(spec.size).millis as i64,
            watermark: spec.watermark.map_or(0, |w| w.millis as i64),
            lateness: spec.allowed_lateness.map_or(0, |w| w.millis as i64),
        }
    }

    /// The watermark: the oldest of the partitions' newest event times, less the allowed
    /// disorder. Partitions are read one after another, so one partition's newest event says
    /// nothing of another's.
    fn watermark_of(&self, partition_max: &BTreeMap<String, i64>) -> Option<i64> {
        partition_max.values().min().map(|m| m - self.watermark)
    }

    fn align(&self, t: i64) -> i64 {
        t - t.rem_euclid(self.hop)
    }

    /// Starts of the windows holding event time `ts`.
    fn starts(&self, ts: i64) -> impl Iterator<Item = i64> {
        let (size, hop) = (self.size, self.hop);
        let last = self.align(ts);
        (0..size / hop)
            .map(move |i| last - i * hop)
            .filter(move |s| *s <= ts && ts < s + size)
    }
}

/// A record's event time: its `time` field, else its Kafka timestamp.
fn event_time(record: &StreamRecord, field: Option<&str>) -> i64 {
    crate::rows::event_time(field.and_then(|f| record.value.get(f)), record.timestamp)
}

fn db_error(pipeline: &str, e: impl std::fmt::Display) -> PipelineError {
    Fault::WindowState {
        pipeline: pipeline.to_string(),
        reason: e.to_string(),
    }
    .into()
}

fn load(db: &Database, pipeline: &str) -> Result<Checkpoint, PipelineError> {
    let txn = db.begin_read().map_err(|e| db_error(pipeline, e))?;
    let table = match txn.open_table(META) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Checkpoint::default()),
        Err(e) => return Err(db_error(pipeline, e)),
    };
    match table.get(CHECKPOINT).map_err(|e| db_error(pipeline, e))? {
        Some(text) => serde_json::from_str(text.value()).map_err(|e| db_error(pipeline, e)),
        None => Ok(Checkpoint::default()),
    }
}

/// Buffered records with event time in `[from, to)`.
fn buffered(
    db: &Database,
    pipeline: &str,
    from: i64,
    to: i64,
) -> Result<Vec<(i64, Buffered)>, PipelineError> {
    let txn = db.begin_read().map_err(|e| db_error(pipeline, e))?;
    let table = match txn.open_table(BUFFER) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
        Err(e) => return Err(db_error(pipeline, e)),
    };
    let mut out = Vec::new();
    for item in table
        .range((from, 0)..(to, 0))
        .map_err(|e| db_error(pipeline, e))?
    {
        let (k, v) = item.map_err(|e| db_error(pipeline, e))?;
        let b: Buffered = postcard::from_bytes(v.value()).map_err(|e| db_error(pipeline, e))?;
        out.push((k.value().0, b));
    }
    Ok(out)
}

/// Saves the checkpoint and, in the same transaction, buffers `new` records and forgets those
/// older than `purge_before`; unless a newer unit of the pipeline has taken the file.
fn save(
    file: &StateFile,
    pipeline: &str,
    checkpoint: &Checkpoint,
    new: &[((i64, u64), Buffered)],
    purge_before: Option<i64>,
) -> Result<(), PipelineError> {
    let e = |x: &dyn std::fmt::Display| db_error(pipeline, x);
    let saved = file.write(|db| {
        let txn = db.begin_write().map_err(|x| e(&x))?;
        {
            let mut buffer = txn.open_table(BUFFER).map_err(|x| e(&x))?;
            for (k, b) in new {
                let bytes = postcard::to_allocvec(b).map_err(|x| e(&x))?;
                buffer.insert(*k, bytes.as_slice()).map_err(|x| e(&x))?;
            }
            if let Some(before) = purge_before {
                buffer
                    .retain_in((i64::MIN, 0)..(before, 0), |_, _| false)
                    .map_err(|x| e(&x))?;
            }
            let mut meta = txn.open_table(META).map_err(|x| e(&x))?;
            let text = serde_json::to_string(checkpoint).map_err(|x| e(&x))?;
            meta.insert(CHECKPOINT, text.as_str()).map_err(|x| e(&x))?;
        }
        txn.commit().map_err(|x| e(&x))
    });
    saved.unwrap_or_else(|| {
        Err(PipelineError::Superseded {
            pipeline: pipeline.to_string(),
        })
    })
}

/// Writes pending rows (again, after a crash: the log drops the duplicates) and clears them.
async fn flush(
    ctx: &StreamContext,
    file: &StateFile,
    pipeline: &str,
    output: &str,
    checkpoint: &mut Checkpoint,
) -> Result<usize, PipelineError> {
    let Some((rows, mut sequences)) = checkpoint.pending.take() else {
        return Ok(0);
    };
    let producer = checkpoint
        .producer
        .ok_or_else(|| db_error(pipeline, "pending rows without a producer"))?;
    let n = rows.len();
    ctx.sink
        .write(output, rows, producer, &mut sequences)
        .await?;
    checkpoint.sequences = sequences;
    save(file, pipeline, checkpoint, &[], None)?;
    Ok(n)
}

/// Runs until an error; the caller restarts it with backoff and it resumes from its state.
pub(crate) async fn run_windowed_pipeline(
    ctx: &StreamContext,
    file: &StateFile,
    Deployed { domain, name, spec }: Deployed<'_>,
    flow: &(dyn Fn(Flow) + Send + Sync),
) -> Result<Infallible, PipelineError> {
    let pipeline = format!("{domain}.{name}");
    let (Ok(Output::Stream(out)), Some(window), Some(sql)) =
        (spec.output.target(), &spec.window, &spec.sql)
    else {
        return Err(PipelineError::WrongOutput {
            pipeline,
            expected: "a stream through windows (with `window` and `sql`)",
        });
    };
    let output = format!("{domain}.{out}");
    let w = Windows::of(window);
    let group = pipeline_group(domain, name);
    wait_for_inputs(&ctx.source, &spec.inputs).await;
    let db = &file.db;
    let mut cp = load(db, &pipeline)?;
    if cp.producer.is_none() {
        cp.producer = Some(ctx.sink.init_producer().await?);
    }
    let mut totals = Flow::default();
    totals.records_out += flush(ctx, file, &pipeline, &output, &mut cp).await? as u64;
    let mut positions = start_positions(&ctx.source, &spec.inputs, &cp.positions)?;
    let schemas: BTreeMap<String, Arc<Schema>> = spec
        .inputs
        .iter()
        .map(|i| {
            (
                i.clone(),
                window_table_schema(ctx.source.contract(i).as_ref()),
            )
        })
        .collect();
    loop {
        let (next, inputs, read) = next_micro_batch(ctx, &spec.inputs, &positions).await?;
        flow(totals.busy());
        let watermark_before = cp.watermark;
        let mut new = Vec::new();
        let mut refire = BTreeSet::new();
        for (input, records) in &inputs {
            for r in records {
                let ts = event_time(r, window.time.as_deref());
                let open = |s: i64| watermark_before.is_none_or(|wm| s + w.size + w.lateness > wm);
                if !w.starts(ts).any(open) {
                    cp.late_dropped += 1;
                    continue;
                }
                if let Some(fired) = cp.fired_until {
                    refire.extend(w.starts(ts).filter(|s| s + w.size <= fired && open(*s)));
                }
                let newest = cp
                    .partition_max
                    .entry(format!("{input}/{}", r.partition))
                    .or_insert(ts);
                *newest = (*newest).max(ts);
                new.push((
                    (ts, cp.next_seq),
                    Buffered {
                        input: input.clone(),
                        partition: r.partition,
                        offset: r.offset,
                        timestamp: r.timestamp,
                        key: r.key.clone(),
                        value: r.value.to_string(),
                    },
                ));
                cp.next_seq += 1;
            }
        }
        // Until every input partition has shown an event time, any of them could still hold
        // older records: the watermark waits (as Kafka Streams and Flink do).
        let unknown = next.iter().any(|(input, at)| {
            at.keys()
                .any(|p| !cp.partition_max.contains_key(&format!("{input}/{p}")))
        });
        if !unknown {
            cp.watermark = cp.watermark.max(w.watermark_of(&cp.partition_max));
        }
        let watermark = cp.watermark;
        // Windows whose end the watermark passed in this micro-batch (only those holding
        // records: a gap in event time fires nothing), and late-updated ones.
        let mut firing: BTreeSet<i64> = refire;
        if let Some(wm) = watermark {
            let after = cp.fired_until;
            let unfired = |s: &i64| s + w.size <= wm && after.is_none_or(|f| s + w.size > f);
            let lo = after.map_or(i64::MIN, |f| f - w.size);
            let times = buffered(db, &pipeline, lo, wm)?
                .into_iter()
                .map(|(ts, _)| ts)
                .chain(new.iter().map(|((ts, _), _)| *ts));
            for ts in times {
                firing.extend(w.starts(ts).filter(unfired));
            }
            cp.fired_until = Some(after.map_or(wm, |f| f.max(wm)));
        }
        let mut rows = Vec::new();
        if !firing.is_empty() {
            let mut per_input: BTreeMap<String, Vec<StreamRecord>> = BTreeMap::new();
            for start in &firing {
                let end = start + w.size;
                let mut members = buffered(db, &pipeline, *start, end)?;
                members.extend(
                    new.iter()
                        .filter(|((ts, _), _)| *start <= *ts && *ts < end)
                        .map(|((ts, _), b)| (*ts, b.clone())),
                );
                for (_, b) in members {
                    let mut value: Value = serde_json::from_str(&b.value).unwrap_or(Value::Null);
                    if let Value::Object(o) = &mut value {
                        o.insert("window_start".into(), Value::from(*start));
                        o.insert("window_end".into(), Value::from(end));
                    }
                    per_input.entry(b.input).or_default().push(StreamRecord {
                        partition: b.partition,
                        offset: b.offset,
                        timestamp: b.timestamp,
                        key: b.key,
                        value,
                    });
                }
            }
            let tables: Vec<(String, Vec<StreamRecord>)> = per_input.into_iter().collect();
            rows = transform_with(ctx, &schemas, sql, &tables).await?;
        }
        let purge_before = watermark.map(|wm| wm - w.lateness - w.size);
        let sequences = cp.sequences.clone();
        cp.positions = next.clone();
        cp.pending = (!rows.is_empty()).then_some((rows, sequences));
        save(file, &pipeline, &cp, &new, purge_before)?;
        totals.records_out += flush(ctx, file, &pipeline, &output, &mut cp).await? as u64;
        ctx.sink.commit(&group, &next, "windowed").await?;
        positions = next;
        totals.records_in += read as u64;
        totals.late_dropped = cp.late_dropped;
        flow(totals);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_fall_in_every_window_that_holds_them() {
        let tumbling = Windows {
            size: 60,
            hop: 60,
            watermark: 0,
            lateness: 0,
        };
        assert_eq!(tumbling.starts(125).collect::<Vec<_>>(), vec![120]);
        assert_eq!(tumbling.starts(-5).collect::<Vec<_>>(), vec![-60]);
        let hopping = Windows {
            size: 60,
            hop: 20,
            ..tumbling
        };
        assert_eq!(hopping.starts(125).collect::<Vec<_>>(), vec![120, 100, 80]);
        assert_eq!(hopping.starts(120).collect::<Vec<_>>(), vec![120, 100, 80]);
    }
}
