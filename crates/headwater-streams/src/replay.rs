//! `headwater dlq replay`: after a fix (a new contract version, a changed rule, a repaired
//! producer), re-submit a stream's dead letters.
//!
//! A replay reads `<stream>.dlq` from a position to its end. Records valid now are produced to
//! the partition they were first sent to, with their original key, value and headers; records
//! still invalid are dead-lettered again with the current reason, so the next replay sees them
//! and nothing is lost or replayed twice. The position is committed as group
//! `headwater.dlq-replay`, so a replay without `--from` continues where the last one ended.
//! Between the produce and the commit a crash can replay a record twice (at-least-once).

use std::collections::BTreeMap;

use bytes::Bytes;
use headwater_domains::audit::Change;
use headwater_kafka::kafka_protocol::protocol::StrBytes;
use headwater_kafka::kafka_protocol::records::RecordBatchDecoder;
use headwater_kafka::{now_ms, partition_for_key, plain_batch, Headers};
use headwater_log::Validation;
use serde::Serialize;

use crate::gate::put_refusal;
use crate::service::original_headers;
use crate::service::PartitionRefused;
use crate::{Positions, StartAt, StreamError, StreamService};

/// The group whose committed offsets remember how far each dead-letter stream was replayed.
pub const REPLAY_GROUP: &str = "headwater.dlq-replay";

/// A dead letter that is still invalid; it was dead-lettered again with the current reason.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StillInvalid {
    /// Offset in the dead-letter stream.
    pub offset: i64,
    /// Why it is still invalid, as the gate says now: `rule: message (contract version)`.
    pub error: String,
}

/// What a replay of a stream's dead letters did (the answer to
/// `POST /v1/streams/{domain}/{stream}/dlq/replay`).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ReplayOutcome {
    /// The stream replayed into, `<domain>.<stream>`.
    pub stream: String,
    /// The stream read, `<domain>.<stream>.dlq`.
    pub dead_letter_stream: String,
    /// Dead-letter offsets read: `from` up to (not including) `to`.
    pub from: i64,
    /// Where the dead-letter stream ended when the replay began; the next replay without a
    /// start continues from here.
    pub to: i64,
    /// Dead letters valid now, produced to the stream.
    pub replayed: usize,
    /// Dead letters still invalid.
    pub still_invalid: Vec<StillInvalid>,
}

/// `payments.x-3@17` -> partition 3 of the stream the record first went to.
fn source_partition(headers: &Headers, topic: &str) -> Option<i32> {
    let source = headers.get(&StrBytes::from_static_str("headwater.source"))?;
    let source = std::str::from_utf8(source.as_ref()?).ok()?;
    let (at, _) = source.rsplit_once('@')?;
    at.strip_prefix(topic)?.strip_prefix('-')?.parse().ok()
}

type Outgoing = (Option<Bytes>, Option<Bytes>, Headers);
/// A dead letter as stored: (offset, key, value, headers).
type DeadLetter = (i64, Option<Bytes>, Option<Bytes>, Headers);

impl StreamService {
    /// Re-submits `topic_name`'s dead letters from `from` (or after the last replay) on behalf
    /// of `by` (its audit name).
    pub async fn replay_dead_letters(
        &self,
        topic_name: &str,
        from: Option<i64>,
        by: &str,
    ) -> Result<ReplayOutcome, StreamError> {
        let topic = self.topic(topic_name)?;
        let partitions = topic.partitions().len().max(1) as i32;
        let validation = topic.config().validation;
        let dlq = format!("{topic_name}.dlq");
        let dlq_partition = self
            .topic(&dlq)
            .map_err(|_| StreamError::NoDeadLetterStream {
                topic: topic_name.to_string(),
            })?
            .partition(0)
            .ok_or_else(|| StreamError::UnknownStream(dlq.clone()))?;
        let start = match from {
            Some(o) => StartAt::Offset(o),
            None => StartAt::Earliest,
        };
        let group = from.is_none().then_some(REPLAY_GROUP);
        let mut positions = self.start_positions(&dlq, start, group).await?;
        let first = positions.0.get(&0).copied().unwrap_or(0);
        let end = Positions([(0, dlq_partition.watermarks().high_watermark)].into());
        let mut to_stream: BTreeMap<i32, Vec<Outgoing>> = BTreeMap::new();
        let mut again: Vec<Outgoing> = Vec::new();
        let mut still_invalid = Vec::new();
        let mut replayed = 0;
        loop {
            let before = positions.clone();
            let records = self.dead_letters(&dlq_partition, &mut positions, &end)?;
            if positions == before {
                break;
            }
            for (offset, key, value, headers) in records {
                let check = if validation == Validation::None {
                    Ok(())
                } else {
                    self.gate.check_one(topic_name, value.as_ref())
                };
                match check {
                    Ok(()) => {
                        let partition = source_partition(&headers, topic_name)
                            .filter(|p| *p < partitions)
                            .or_else(|| key.as_ref().map(|k| partition_for_key(k, partitions)))
                            .unwrap_or(0);
                        to_stream.entry(partition).or_default().push((
                            key,
                            value,
                            original_headers(&headers),
                        ));
                        replayed += 1;
                    }
                    Err(why) => {
                        let mut headers = headers;
                        put_refusal(&mut headers, &why);
                        headers.insert(
                            StrBytes::from_static_str("headwater.replayed_from"),
                            Some(Bytes::from(format!("{dlq}@{offset}"))),
                        );
                        still_invalid.push(StillInvalid {
                            offset,
                            error: why.to_string(),
                        });
                        again.push((key, value, headers));
                    }
                }
            }
        }
        let now = now_ms();
        let encode = |records: Vec<Outgoing>| {
            plain_batch(records, now).map_err(|e| StreamError::Produce {
                topic: topic_name.to_string(),
                message: format!("cannot encode a batch: {e}"),
            })
        };
        let mut batches = Vec::new();
        for (p, records) in to_stream {
            batches.push((p, encode(records)?));
        }
        self.expect_written(topic_name, self.produce(topic_name, batches).await?)?;
        if !again.is_empty() {
            let batch = encode(again)?;
            self.expect_written(&dlq, self.produce(&dlq, vec![(0, batch)]).await?)?;
        }
        let to = end.0.get(&0).copied().unwrap_or(first);
        self.commit(&dlq, REPLAY_GROUP, &Positions([(0, to)].into()))
            .await?;
        let outcome = ReplayOutcome {
            stream: topic_name.to_string(),
            dead_letter_stream: dlq,
            from: first,
            to,
            replayed,
            still_invalid,
        };
        let owner = self.applied.stream(topic_name).map(|(d, _)| d);
        let after = serde_json::json!({
            "from": outcome.from,
            "to": outcome.to,
            "replayed": outcome.replayed,
            "still_invalid": outcome.still_invalid.len(),
        });
        let change = Change::new(
            by,
            "dlq.replay",
            owner.as_deref(),
            topic_name,
            serde_json::Value::Null,
            after,
        );
        self.recorder.record(change).await;
        Ok(outcome)
    }

    /// The raw records of the dead-letter partition from `positions` up to `end`.
    fn dead_letters(
        &self,
        partition: &headwater_log::Partition,
        positions: &mut Positions,
        end: &Positions,
    ) -> Result<Vec<DeadLetter>, StreamError> {
        let from = positions.0.get(&0).copied().unwrap_or(0);
        let stop = end.0.get(&0).copied().unwrap_or(0);
        if from >= stop {
            return Ok(Vec::new());
        }
        let data = partition
            .read(from, 1 << 20)
            .map_err(|source| StreamError::Read {
                topic: partition.topic().to_string(),
                partition: partition.index(),
                offset: from,
                source,
            })?;
        let mut buf = Bytes::from(data);
        let mut out = Vec::new();
        let mut next = from;
        while !buf.is_empty() {
            let set =
                RecordBatchDecoder::decode(&mut buf).map_err(|e| StreamError::Undecodable {
                    topic: partition.topic().to_string(),
                    partition: partition.index(),
                    offset: next,
                    reason: e.to_string(),
                })?;
            for r in set.records {
                if r.offset < next || r.offset >= stop {
                    continue;
                }
                next = r.offset + 1;
                out.push((r.offset, r.key, r.value, r.headers));
            }
        }
        positions.0.insert(0, next);
        Ok(out)
    }

    fn expect_written(
        &self,
        topic: &str,
        results: Vec<(i32, Result<i64, PartitionRefused>)>,
    ) -> Result<(), StreamError> {
        match results
            .into_iter()
            .find_map(|(p, r)| r.err().map(|e| (p, e)))
        {
            None => Ok(()),
            Some((p, message)) => Err(StreamError::Produce {
                topic: format!("{topic} partition {p}"),
                message: format!("{message}; nothing was committed, run the replay again"),
            }),
        }
    }
}
