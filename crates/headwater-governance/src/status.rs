//! Eventual consistency made explicit: for every stream, who reads it (consumer groups and
//! pipelines), how far behind each is in records and seconds, whether the stream meets its
//! declared freshness, and whether every subscriber has processed a given offset.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use headwater_domains::{AppliedDomains, PipelineMode, StreamDef};
use headwater_log::now_ms;
use headwater_streams::{Positions, StreamError, StreamService};
use serde::Serialize;

use crate::PipelineService;

/// One reader of a stream and where it is.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Subscriber {
    /// A consumer group id, or `<domain>.<pipeline>`.
    pub name: String,
    /// `group` for a consumer group with committed offsets (a streaming pipeline reads as
    /// group `_pipeline.<domain>.<name>`); `pipeline` for a batch pipeline, placed where its
    /// table was last built from.
    pub kind: &'static str,
    /// Next offset it will process, per partition.
    pub positions: BTreeMap<i32, i64>,
    /// Records it has not processed yet, summed over partitions (a partition it has no
    /// position in counts from offset 0).
    pub lag_records: i64,
    /// Age of the oldest record it has not processed; 0 when caught up.
    pub lag_seconds: f64,
}

/// Where a stream is and who reads it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StreamStatus {
    /// The topic, `<domain>.<stream>`.
    pub stream: String,
    /// The domain declaring it.
    pub domain: String,
    /// The offset the next record will get, per partition.
    pub end_offsets: BTreeMap<i32, i64>,
    /// Timestamp of the newest record, in milliseconds since the Unix epoch; `null` when the
    /// stream is empty.
    pub newest_ms: Option<i64>,
    /// The declared freshness, in milliseconds; `null` when none is declared.
    pub freshness_ms: Option<u64>,
    /// False when the newest record is older than the declared freshness, or there is none;
    /// `null` when no freshness is declared.
    pub fresh: Option<bool>,
    /// Every consumer group with a committed offset on the stream and every batch pipeline
    /// reading it.
    pub subscribers: Vec<Subscriber>,
}

/// Lag, freshness and consistency of every applied stream.
#[derive(Debug)]
pub struct StatusService {
    streams: Arc<StreamService>,
    pipelines: Arc<PipelineService>,
    applied: Arc<AppliedDomains>,
}

impl StatusService {
    /// Status of the streams `applied` declares, read from `streams` and `pipelines`.
    pub fn new(
        streams: Arc<StreamService>,
        pipelines: Arc<PipelineService>,
        applied: Arc<AppliedDomains>,
    ) -> Self {
        StatusService {
            streams,
            pipelines,
            applied,
        }
    }

    /// The timestamp of the record at `offset` of a partition, if it exists.
    fn timestamp_at(&self, topic: &str, partition: i32, offset: i64) -> Option<i64> {
        let mut at = Positions([(partition, offset)].into());
        let end = Positions([(partition, offset + 1)].into());
        self.streams
            .read(topic, &mut at, Some(&end), None, 1)
            .ok()?
            .first()
            .map(|e| e.timestamp)
    }

    fn subscriber(
        &self,
        topic: &str,
        name: String,
        kind: &'static str,
        positions: BTreeMap<i32, i64>,
        end: &BTreeMap<i32, i64>,
    ) -> Subscriber {
        let mut lag_records = 0;
        let mut oldest: Option<i64> = None;
        for (p, e) in end {
            let at = positions.get(p).copied().unwrap_or(0);
            if at < *e {
                lag_records += e - at;
                if let Some(ts) = self.timestamp_at(topic, *p, at) {
                    oldest = Some(oldest.map_or(ts, |o| o.min(ts)));
                }
            }
        }
        Subscriber {
            name,
            kind,
            positions,
            lag_records,
            lag_seconds: oldest
                .map(|ts| ((now_ms() - ts).max(0)) as f64 / 1000.0)
                .unwrap_or(0.0),
        }
    }

    /// Where every subscriber of `def`'s stream is.
    pub async fn stream_status(
        &self,
        domain: &str,
        def: &StreamDef,
    ) -> Result<StreamStatus, StreamError> {
        let topic = def.topic.as_str();
        let end = self.streams.end_positions(topic)?.0;
        let partitions: Vec<i32> = end.keys().copied().collect();
        let mut subscribers = Vec::new();
        for (group, positions) in self.streams.group_positions(topic, &partitions).await {
            subscribers.push(self.subscriber(topic, group, "group", positions, &end));
        }
        for spec in self.applied.all() {
            for (name, p) in &spec.pipelines {
                if !p.inputs.iter().any(|i| i == topic) || p.mode != PipelineMode::Batch {
                    continue;
                }
                let table = p.output.table.clone().unwrap_or_default();
                let positions = self
                    .pipelines
                    .engine()
                    .tables()
                    .meta(&spec.domain, &table)
                    .and_then(|m| m.inputs.get(topic).cloned())
                    .unwrap_or_default();
                subscribers.push(self.subscriber(
                    topic,
                    format!("{}.{name}", spec.domain),
                    "pipeline",
                    positions,
                    &end,
                ));
            }
        }
        let newest_ms = end
            .iter()
            .filter(|(_, e)| **e > 0)
            .filter_map(|(p, e)| self.timestamp_at(topic, *p, e - 1))
            .max();
        let fresh = def
            .freshness_ms
            .map(|f| newest_ms.is_some_and(|n| now_ms() - n <= f as i64));
        Ok(StreamStatus {
            stream: topic.to_string(),
            domain: domain.to_string(),
            end_offsets: end,
            newest_ms,
            freshness_ms: def.freshness_ms,
            fresh,
            subscribers,
        })
    }

    /// Every applied domain's streams.
    pub async fn all(&self) -> Vec<StreamStatus> {
        let mut out = Vec::new();
        for spec in self.applied.all() {
            for s in &spec.streams {
                if let Ok(st) = self.stream_status(&spec.domain, s).await {
                    out.push(st);
                }
            }
        }
        out
    }

    /// Whether every subscriber of `topic` has processed `offsets` (per partition; an offset is
    /// processed when a subscriber's next position is past it). With `wait`, waits up to that
    /// long for it to become true.
    pub async fn processed(
        &self,
        topic: &str,
        offsets: &BTreeMap<i32, i64>,
        wait: Duration,
    ) -> Result<(bool, StreamStatus), StreamError> {
        let (domain, def) = self
            .applied
            .stream(topic)
            .ok_or_else(|| StreamError::UnknownStream(topic.to_string()))?;
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let status = self.stream_status(&domain, &def).await?;
            let done = status.subscribers.iter().all(|s| {
                offsets
                    .iter()
                    .all(|(p, o)| s.positions.get(p).is_some_and(|at| at > o))
            });
            if done || tokio::time::Instant::now() >= deadline {
                return Ok((done, status));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
