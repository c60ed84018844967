//! Reading a stream as JSON events: every partition from a position, records decoded with the
//! contract version their framing names (Avro included), for `headwater tail` and server-sent
//! events.
//!
//! A position is the next offset to read per partition. Written as `0:12,1:40` it is the
//! `id` of each server-sent event, so a client resuming with `Last-Event-ID` continues exactly
//! after the last event it saw.

use std::collections::BTreeMap;

use bytes::Bytes;
use headwater_contracts::registry::Registry;
use headwater_contracts::validate::{framing, Framing};
use headwater_kafka::kafka_protocol::records::RecordBatchDecoder;
use serde::Serialize;

use headwater_pipelines::StreamSink;

use crate::{PositionError, StreamError, StreamService};

/// Next offset to read, per partition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Positions(pub BTreeMap<i32, i64>);

impl Positions {
    /// Parses `0:12,1:40`.
    pub fn parse(text: &str) -> Result<Self, PositionError> {
        let mut map = BTreeMap::new();
        for part in text.split(',').filter(|p| !p.trim().is_empty()) {
            let (p, o) =
                part.trim()
                    .split_once(':')
                    .ok_or_else(|| PositionError::NotAPosition {
                        part: part.to_string(),
                    })?;
            let p = p.parse().map_err(|_| PositionError::Partition {
                partition: p.to_string(),
                part: part.to_string(),
            })?;
            let o = o.parse().map_err(|_| PositionError::Offset {
                offset: o.to_string(),
                part: part.to_string(),
            })?;
            map.insert(p, o);
        }
        Ok(Positions(map))
    }
}

impl std::fmt::Display for Positions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|(p, o)| format!("{p}:{o}")).collect();
        f.write_str(&parts.join(","))
    }
}

/// Where reading starts in each partition that has no position yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartAt {
    /// The oldest record still kept.
    Earliest,
    /// The end: only records written from now on.
    Latest,
    /// This offset, brought within what the partition holds.
    Offset(i64),
}

impl StartAt {
    /// Reads `earliest` (or `beginning`), `latest` (or `end`), or an offset.
    pub fn parse(text: &str) -> Result<Self, PositionError> {
        match text {
            "earliest" | "beginning" => Ok(StartAt::Earliest),
            "latest" | "end" => Ok(StartAt::Latest),
            n => n
                .parse()
                .map(StartAt::Offset)
                .map_err(|_| PositionError::Start {
                    text: n.to_string(),
                }),
        }
    }
}

/// One record, decoded.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Event {
    /// The partition the record is in.
    pub partition: i32,
    /// Its offset in that partition.
    pub offset: i64,
    /// The record's Kafka timestamp, in milliseconds since the Unix epoch.
    pub timestamp: i64,
    /// The key as text (bytes that are not UTF-8 replaced); `null` when the record has none.
    pub key: Option<String>,
    /// The value decoded with the contract version its framing names; an unframed value as
    /// its JSON, or as a string when it is not JSON; `{"undecodable": why, ...}` when that
    /// contract is unknown or cannot decode it; `null` when the record has no value.
    pub value: serde_json::Value,
    /// The record's headers as text; absent when it has none.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
}

fn text(b: &Bytes) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A value as JSON: decoded with the schema its framing names, else parsed as JSON, else text.
/// An undecodable value is shown with why, never dropped.
pub(crate) fn decode_value(reg: &Registry, value: Option<&Bytes>) -> serde_json::Value {
    let Some(value) = value else {
        return serde_json::Value::Null;
    };
    if let Framing::Confluent { schema_id } = framing(value) {
        return match reg.schema(schema_id) {
            Ok(s) => s.contract.decode_json(&value[5..]).unwrap_or_else(
                |e| serde_json::json!({"undecodable": e.to_string(), "schema_id": schema_id}),
            ),
            Err(_) => serde_json::json!({"undecodable": format!("unknown schema id {schema_id}")}),
        };
    }
    serde_json::from_slice(value).unwrap_or_else(|_| serde_json::Value::String(text(value)))
}

impl StreamService {
    /// Starting positions: a group's committed offsets where it has them, else `start`.
    pub async fn start_positions(
        &self,
        topic_name: &str,
        start: StartAt,
        group: Option<&str>,
    ) -> Result<Positions, StreamError> {
        let topic = self.topic(topic_name)?;
        let committed = match group {
            Some(g) => self.committed(topic_name, g).await?,
            None => BTreeMap::new(),
        };
        let mut out = BTreeMap::new();
        for p in topic.partitions() {
            let marks = p.watermarks();
            let offset = committed.get(&p.index()).copied().unwrap_or(match start {
                StartAt::Earliest => marks.log_start_offset,
                StartAt::Latest => marks.high_watermark,
                StartAt::Offset(o) => o,
            });
            out.insert(
                p.index(),
                offset.clamp(marks.log_start_offset, marks.high_watermark),
            );
        }
        Ok(Positions(out))
    }

    /// The high watermark of every partition: where a non-following reader stops.
    pub fn end_positions(&self, topic_name: &str) -> Result<Positions, StreamError> {
        let topic = self.topic(topic_name)?;
        Ok(Positions(
            topic
                .partitions()
                .iter()
                .map(|p| (p.index(), p.watermarks().high_watermark))
                .collect(),
        ))
    }

    /// Reads up to `max` events from `positions` (moved past what was read, including records
    /// skipped by `key`), stopping at `end` where given.
    pub fn read(
        &self,
        topic_name: &str,
        positions: &mut Positions,
        end: Option<&Positions>,
        key: Option<&str>,
        max: usize,
    ) -> Result<Vec<Event>, StreamError> {
        let topic = self.topic(topic_name)?;
        let mut events = Vec::new();
        let reg = self.registry.read();
        for partition in topic.partitions() {
            let index = partition.index();
            let Some(from) = positions.0.get(&index).copied() else {
                continue;
            };
            let stop = end
                .and_then(|e| e.0.get(&index).copied())
                .unwrap_or(i64::MAX);
            if from >= stop || events.len() >= max {
                continue;
            }
            let data = match partition.read(from, 1 << 20) {
                Ok(d) => d,
                // Retention removed what the position points at: go on from the start.
                Err(headwater_log::LogError::OffsetOutOfRange { start, .. }) if from < start => {
                    positions.0.insert(index, start);
                    continue;
                }
                Err(source) => {
                    return Err(StreamError::Read {
                        topic: topic_name.to_string(),
                        partition: index,
                        offset: from,
                        source,
                    })
                }
            };
            let mut buf = Bytes::from(data);
            let mut next = from;
            'batches: while !buf.is_empty() {
                // A batch's records may not reach its end (records taken out by the contract
                // gate, or none at all): the next batch starts after its whole span.
                let span_end = headwater_log::batch::BatchHeader::parse(&buf)
                    .map(|h| h.base_offset + i64::from(h.last_offset_delta) + 1)
                    .ok();
                let set =
                    RecordBatchDecoder::decode(&mut buf).map_err(|e| StreamError::Undecodable {
                        topic: topic_name.to_string(),
                        partition: index,
                        offset: next,
                        reason: e.to_string(),
                    })?;
                for r in set.records {
                    if r.offset < next || r.control {
                        continue;
                    }
                    if r.offset >= stop || events.len() >= max {
                        break 'batches;
                    }
                    next = r.offset + 1;
                    let k = r.key.as_ref().map(text);
                    if key.is_some() && k.as_deref() != key {
                        continue;
                    }
                    events.push(Event {
                        partition: index,
                        offset: r.offset,
                        timestamp: r.timestamp,
                        key: k,
                        value: decode_value(&reg, r.value.as_ref()),
                        headers: r
                            .headers
                            .iter()
                            .map(|(k, v)| (k.to_string(), v.as_ref().map(text).unwrap_or_default()))
                            .collect(),
                    });
                }
                if let Some(end) = span_end {
                    next = next.max(end.min(stop));
                }
            }
            positions.0.insert(index, next);
        }
        Ok(events)
    }

    /// A group's committed offsets for `topic`, read as a Kafka client reads them.
    async fn committed(&self, topic: &str, group: &str) -> Result<BTreeMap<i32, i64>, StreamError> {
        let topics = [topic.to_string()];
        let (mut by_topic, _) = StreamSink::committed(self, group, &topics)
            .await
            .map_err(|e| StreamError::Group {
                group: group.to_string(),
                reason: e.to_string(),
            })?;
        Ok(by_topic.remove(topic).unwrap_or_default())
    }

    /// Commits `positions` for `group` as a Kafka consumer outside any generation would
    /// (refused while the group has live Kafka members).
    pub async fn commit(
        &self,
        topic: &str,
        group: &str,
        positions: &Positions,
    ) -> Result<(), StreamError> {
        let offsets = [(topic.to_string(), positions.0.clone())].into();
        StreamSink::commit(self, group, &offsets, "")
            .await
            .map_err(|e| StreamError::Group {
                group: group.to_string(),
                reason: e.to_string(),
            })
    }
}
