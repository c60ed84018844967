//! Publishing JSON events: one JSON value per line, encoded in the stream's contract (Avro or
//! JSON, Confluent-framed with the latest schema id), keyed by the stream's declared key field.
//!
//! Each line is checked first so one bad line does not take its neighbours down with it:
//! on a `reject` stream an invalid line is refused and the others are produced; on a
//! `dead-letter` stream it is produced too and the front end's gate dead-letters it, exactly as
//! for a Kafka producer.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::Ordering;

use bytes::Bytes;
use headwater_kafka::{now_ms, partition_for_key, plain_batch, Headers};
use headwater_log::Validation;
use serde::Serialize;

use crate::{StreamError, StreamService};

/// One line's fate.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LineOutcome {
    /// The line's number in the published text, counting from the request's `first_line`
    /// (1 unless given).
    pub line: usize,
    /// Why the line was refused or dead-lettered: not JSON, not encodable in the contract, the
    /// rule it breaks, or the partition's refusal.
    pub error: String,
}

/// What became of the lines of one publish (the answer to
/// `POST /v1/streams/{domain}/{stream}/events`). Blank lines are skipped and appear nowhere.
#[derive(Debug, Clone, Serialize, Default)]
pub struct PublishOutcome {
    /// The stream published to, `<domain>.<stream>`.
    pub stream: String,
    /// Lines written to the stream itself.
    pub published: usize,
    /// Lines not stored anywhere.
    pub refused: Vec<LineOutcome>,
    /// Lines stored in the dead-letter stream instead of the stream.
    pub dead_lettered: Vec<LineOutcome>,
    /// The dead-letter stream, when lines went there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dead_letter_stream: Option<String>,
}

/// A line ready to produce.
struct Encoded {
    line: usize,
    partition: i32,
    key: Option<Bytes>,
    value: Bytes,
}

/// An event that does not fit its stream's contract.
#[derive(Debug, thiserror::Error)]
#[error("contract: the event {0}")]
pub(crate) struct DoesNotFit(#[from] headwater_contracts::EncodeError);

/// An event in its stream's wire form: Confluent-framed with the latest schema id and encoded
/// with that contract, or JSON text on a stream without a contract.
pub(crate) fn encode_value(
    contract: Option<&(u32, headwater_contracts::Contract)>,
    event: &serde_json::Value,
) -> Result<Bytes, DoesNotFit> {
    let Some((id, c)) = contract else {
        return Ok(Bytes::from(event.to_string()));
    };
    let payload = c.encode_json(event)?;
    let mut framed = Vec::with_capacity(payload.len() + 5);
    framed.push(0);
    framed.extend_from_slice(&id.to_be_bytes());
    framed.extend_from_slice(&payload);
    Ok(Bytes::from(framed))
}

/// The Kafka key of an event: the declared key field's value, as text.
pub(crate) fn key_of(event: &serde_json::Value, field: Option<&str>) -> Option<Bytes> {
    match event.get(field?)? {
        serde_json::Value::String(s) => Some(Bytes::from(s.clone())),
        serde_json::Value::Null => None,
        other => Some(Bytes::from(other.to_string())),
    }
}

impl StreamService {
    /// Publishes the JSON lines of `body` to `topic`; `first_line` numbers the body's first line
    /// (a client sending a long input in chunks keeps line numbers true).
    pub async fn publish(
        &self,
        topic_name: &str,
        body: &str,
        first_line: usize,
    ) -> Result<PublishOutcome, StreamError> {
        let topic = self.topic(topic_name)?;
        let partitions = topic.partitions().len().max(1) as i32;
        let validation = topic.config().validation;
        let key_field = self.key_field(topic_name);
        // The latest contract, if the stream has one: its id frames every value.
        let contract = self.latest_contract(topic_name);
        if contract.is_none() && validation != Validation::None {
            return Err(StreamError::NoContract {
                topic: topic_name.to_string(),
            });
        }
        let mut out = PublishOutcome {
            stream: topic_name.to_string(),
            ..PublishOutcome::default()
        };
        let mut ready = Vec::new();
        for (i, text) in body.lines().enumerate() {
            let line = first_line + i;
            if text.trim().is_empty() {
                continue;
            }
            let event: serde_json::Value = match serde_json::from_str(text) {
                Ok(v) => v,
                Err(e) => {
                    out.refused.push(LineOutcome {
                        line,
                        error: format!("not JSON: {e}"),
                    });
                    continue;
                }
            };
            let value = match encode_value(contract.as_ref(), &event) {
                Ok(v) => v,
                Err(e) => {
                    out.refused.push(LineOutcome {
                        line,
                        error: e.to_string(),
                    });
                    continue;
                }
            };
            if validation != Validation::None {
                if let Err(why) = self.gate.check_one(topic_name, Some(&value)) {
                    let outcome = LineOutcome {
                        line,
                        error: why.to_string(),
                    };
                    if validation == Validation::Reject {
                        out.refused.push(outcome);
                        continue;
                    }
                    out.dead_lettered.push(outcome);
                }
            }
            let key = key_of(&event, key_field.as_deref());
            let partition = match &key {
                Some(k) => partition_for_key(k, partitions),
                None => {
                    (self.next_partition.fetch_add(1, Ordering::Relaxed) % partitions as usize)
                        as i32
                }
            };
            ready.push(Encoded {
                line,
                partition,
                key,
                value,
            });
        }
        let mut by_partition: BTreeMap<i32, Vec<Encoded>> = BTreeMap::new();
        for e in ready {
            by_partition.entry(e.partition).or_default().push(e);
        }
        let mut batches = Vec::new();
        for (p, events) in &by_partition {
            let records = events
                .iter()
                .map(|e| (e.key.clone(), Some(e.value.clone()), Headers::new()))
                .collect();
            let batch = plain_batch(records, now_ms()).map_err(|e| StreamError::Produce {
                topic: topic_name.to_string(),
                message: format!("cannot encode a batch: {e}"),
            })?;
            batches.push((*p, batch));
        }
        let dead_lines: HashSet<usize> = out.dead_lettered.iter().map(|d| d.line).collect();
        for (p, result) in self.produce(topic_name, batches).await? {
            let events = by_partition.remove(&p).unwrap_or_default();
            match result {
                Ok(_) => {
                    let dead = events
                        .iter()
                        .filter(|e| dead_lines.contains(&e.line))
                        .count();
                    out.published += events.len() - dead;
                }
                Err(message) => {
                    for e in events {
                        out.dead_lettered.retain(|d| d.line != e.line);
                        out.refused.push(LineOutcome {
                            line: e.line,
                            error: format!("partition {p}: {message}"),
                        });
                    }
                }
            }
        }
        out.refused.sort_by_key(|o| o.line);
        if !out.dead_lettered.is_empty() {
            out.dead_letter_stream = Some(format!("{topic_name}.dlq"));
        }
        Ok(out)
    }
}
