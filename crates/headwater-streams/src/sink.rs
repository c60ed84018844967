//! Streaming pipelines write and checkpoint through the node's Kafka front end, as any client:
//! an idempotent producer id from InitProducerId, produces whose sequence numbers make a re-run
//! a duplicate, and group offsets with the checkpoint in their metadata.

use std::collections::BTreeMap;

use bytes::Bytes;
use headwater_kafka::kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use headwater_kafka::kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use headwater_kafka::kafka_protocol::messages::{
    InitProducerIdRequest, OffsetCommitRequest, OffsetFetchRequest,
};
use headwater_kafka::kafka_protocol::protocol::StrBytes;
use headwater_kafka::{now_ms, partition_for_key, producer_batch, Headers};
use headwater_pipelines::{
    BoxFuture, Committed, Offsets, ProducerId, SinkError, StreamRefused, StreamSink,
};

use crate::publish::{encode_value, key_of};
use crate::service::CLIENT;
use crate::{StreamError, StreamService};

/// An output record: key, value, headers.
type OutRecord = (Option<Bytes>, Option<Bytes>, Headers);

impl StreamSink for StreamService {
    fn init_producer(&self) -> BoxFuture<'_, Result<ProducerId, SinkError>> {
        Box::pin(async move {
            let request = InitProducerIdRequest::default()
                .with_transactional_id(None)
                .with_transaction_timeout_ms(-1)
                .with_producer_id((-1).into())
                .with_producer_epoch(-1);
            match self.broker.request(4, request, CLIENT).await {
                Some(r) if r.error_code == 0 => Ok(ProducerId {
                    id: r.producer_id.0,
                    epoch: r.producer_epoch,
                }),
                Some(r) => Err(SinkError::ProducerRefused { code: r.error_code }),
                None => Err(SinkError::Unavailable {
                    reason: "no InitProducerId response".into(),
                }),
            }
        })
    }

    fn write<'a>(
        &'a self,
        topic: &'a str,
        events: Vec<serde_json::Value>,
        producer: ProducerId,
        sequences: &'a mut BTreeMap<i32, i32>,
    ) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async move {
            if events.is_empty() {
                return Ok(());
            }
            let t = self
                .topic(topic)
                .map_err(|e| SinkError::from(refused(topic, e)))?;
            let partitions = t.partitions().len().max(1) as i32;
            let key_field = self.key_field(topic);
            let contract = self.latest_contract(topic);
            let mut by_partition: BTreeMap<i32, Vec<OutRecord>> = BTreeMap::new();
            for (i, event) in events.iter().enumerate() {
                let value = encode_value(contract.as_ref(), event).map_err(|e| {
                    SinkError::InvalidRecord {
                        stream: topic.to_string(),
                        index: i,
                        reason: e.to_string(),
                    }
                })?;
                let key = key_of(event, key_field.as_deref());
                // Only the event and its index decide the partition: a redone micro-batch
                // lands exactly where the first attempt did.
                let p = match &key {
                    Some(k) => partition_for_key(k, partitions),
                    None => (i % partitions as usize) as i32,
                };
                by_partition
                    .entry(p)
                    .or_default()
                    .push((key, Some(value), Headers::new()));
            }
            let now = now_ms();
            let mut batches = Vec::new();
            let mut counts = Vec::new();
            for (p, records) in by_partition {
                let seq = sequences.get(&p).copied().unwrap_or(0);
                counts.push((p, records.len() as i32));
                batches.push((
                    p,
                    producer_batch(records, now, (producer.id, producer.epoch, seq)).map_err(
                        |e| SinkError::Internal {
                            reason: e.to_string(),
                        },
                    )?,
                ));
            }
            for (p, result) in
                self.produce(topic, batches)
                    .await
                    .map_err(|e| SinkError::Unavailable {
                        reason: e.to_string(),
                    })?
            {
                result.map_err(|refused| SinkError::ProduceRefused {
                    stream: topic.to_string(),
                    partition: p,
                    reason: refused.to_string(),
                })?;
            }
            for (p, n) in counts {
                let seq = sequences.entry(p).or_insert(0);
                *seq = seq.wrapping_add(n);
            }
            Ok(())
        })
    }

    fn committed<'a>(
        &'a self,
        group: &'a str,
        topics: &'a [String],
    ) -> BoxFuture<'a, Result<Committed, SinkError>> {
        Box::pin(async move {
            let mut wanted = Vec::new();
            for t in topics {
                let parts: Vec<i32> = self
                    .topic(t)
                    .map_err(|e| SinkError::from(refused(t, e)))?
                    .partitions()
                    .iter()
                    .map(|p| p.index())
                    .collect();
                wanted.push(
                    OffsetFetchRequestTopic::default()
                        .with_name(StrBytes::from_string(t.clone()).into())
                        .with_partition_indexes(parts),
                );
            }
            let request = OffsetFetchRequest::default()
                .with_group_id(StrBytes::from_string(group.to_string()).into())
                .with_topics(Some(wanted));
            let Some(r) = self.broker.request(7, request, CLIENT).await else {
                return Err(SinkError::Unavailable {
                    reason: "no OffsetFetch response".into(),
                });
            };
            let mut out: BTreeMap<String, Offsets> = BTreeMap::new();
            let mut metadata = None;
            for t in r.topics {
                for p in t.partitions {
                    if p.error_code != 0 || p.committed_offset < 0 {
                        continue;
                    }
                    if metadata.is_none() {
                        metadata = p
                            .metadata
                            .as_ref()
                            .map(|m| m.to_string())
                            .filter(|m| !m.is_empty());
                    }
                    out.entry(t.name.0.to_string())
                        .or_default()
                        .insert(p.partition_index, p.committed_offset);
                }
            }
            Ok((out, metadata))
        })
    }

    fn commit<'a>(
        &'a self,
        group: &'a str,
        offsets: &'a BTreeMap<String, Offsets>,
        metadata: &'a str,
    ) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async move {
            let topics = offsets
                .iter()
                .map(|(t, parts)| {
                    OffsetCommitRequestTopic::default()
                        .with_name(StrBytes::from_string(t.clone()).into())
                        .with_partitions(
                            parts
                                .iter()
                                .map(|(p, o)| {
                                    OffsetCommitRequestPartition::default()
                                        .with_partition_index(*p)
                                        .with_committed_offset(*o)
                                        .with_committed_metadata(Some(StrBytes::from_string(
                                            metadata.to_string(),
                                        )))
                                })
                                .collect(),
                        )
                })
                .collect();
            let request = OffsetCommitRequest::default()
                .with_group_id(StrBytes::from_string(group.to_string()).into())
                .with_generation_id_or_member_epoch(-1)
                .with_topics(topics);
            let Some(r) = self.broker.request(8, request, CLIENT).await else {
                return Err(SinkError::Unavailable {
                    reason: "no OffsetCommit response".into(),
                });
            };
            match r
                .topics
                .iter()
                .flat_map(|t| &t.partitions)
                .find(|p| p.error_code != 0)
            {
                None => Ok(()),
                Some(p) => Err(SinkError::CommitRefused {
                    group: group.to_string(),
                    code: p.error_code,
                }),
            }
        })
    }
}

/// Why the service does not serve `topic` to pipelines, for reading or writing.
pub(crate) fn refused(topic: &str, e: StreamError) -> StreamRefused {
    match e {
        StreamError::UnknownStream(stream) => StreamRefused::UnknownStream { stream },
        other => StreamRefused::NotAllowed {
            stream: topic.to_string(),
            reason: other.to_string(),
        },
    }
}
