//! The stream service: what the node does with streams on a user's or a pipeline's behalf.
//!
//! Everything here produces and commits through [`Broker::call`], the path a Kafka client's
//! request takes: the same contract gate, the same appends and fsync, the same group offsets.
//! Its modules only translate between JSON and records.

use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

use bytes::Bytes;
use headwater_kafka::kafka_protocol::messages::produce_request::{
    PartitionProduceData, TopicProduceData,
};
use headwater_kafka::kafka_protocol::messages::ProduceRequest;
use headwater_kafka::kafka_protocol::protocol::StrBytes;
use headwater_kafka::{Broker, Headers};
use headwater_log::Topic;

use headwater_domains::audit::Recorder;
use headwater_domains::AppliedDomains;

use crate::{ContractGate, SchemaRegistry};

/// What can go wrong with a stream on someone's behalf: the user's mistakes, each with what to
/// do about it, apart from the node's faults (a read or a write that failed).
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// No stream by that name.
    #[error(
        "stream '{0}' does not exist; declare it in its domain's manifest and `headwater apply`"
    )]
    UnknownStream(String),
    /// A `_headwater.*` topic, which only the node itself uses.
    #[error("'{0}' is an internal topic of the node and cannot be used here")]
    InternalTopic(String),
    /// A validated stream whose subject has no schema yet.
    #[error("stream '{topic}' validates records but subject '{topic}-value' has no schema; apply its domain's manifest")]
    NoContract {
        /// The stream.
        topic: String,
    },
    /// A replay asked of a stream that dead-letters nothing.
    #[error("stream '{topic}' has no dead-letter stream '{topic}.dlq': it is created for streams with `on_invalid: dead-letter`")]
    NoDeadLetterStream {
        /// The stream.
        topic: String,
    },
    /// A position or start point that does not parse.
    #[error("{0}")]
    Position(#[from] PositionError),
    /// The group's committed offsets could not be read or written (a group with live Kafka
    /// members refuses commits from outside its generation).
    #[error("{reason}: a group with live Kafka consumers cannot also be used here; pick another --group")]
    Group {
        /// The group.
        group: String,
        /// What the coordinator answered.
        reason: String,
    },
    /// The log could not be read (a fault of the node, not the request).
    #[error("cannot read {topic} partition {partition} at offset {offset}: {source}")]
    Read {
        /// The stream.
        topic: String,
        /// Its partition.
        partition: i32,
        /// Where reading started.
        offset: i64,
        /// What the log said.
        #[source]
        source: headwater_log::LogError,
    },
    /// A stored batch that does not decode (damage on disk: `headwater log verify` finds it).
    #[error("{topic} partition {partition} near offset {offset}: undecodable batch: {reason}")]
    Undecodable {
        /// The stream.
        topic: String,
        /// Its partition.
        partition: i32,
        /// The first offset not read.
        offset: i64,
        /// What the decoder said.
        reason: String,
    },
    /// Records could not be written.
    #[error("the node could not write to '{topic}': {message}")]
    Produce {
        /// The stream (and partition, when one refused).
        topic: String,
        /// Why, with what to do.
        message: String,
    },
}

impl StreamError {
    /// The HTTP status that says whose the error is: 4xx the caller's, 5xx the node's.
    pub fn http_status(&self) -> u16 {
        match self {
            StreamError::UnknownStream(_) => 404,
            StreamError::InternalTopic(_) => 403,
            StreamError::NoContract { .. }
            | StreamError::NoDeadLetterStream { .. }
            | StreamError::Position(_)
            | StreamError::Group { .. } => 422,
            StreamError::Read { .. } | StreamError::Undecodable { .. } => 500,
            StreamError::Produce { .. } => 503,
        }
    }
}

/// A partition's answer to a produce the node made: the Kafka error code and the front end's
/// message (a contract refusal names the record, the rule and the contract version).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", message.clone().unwrap_or_else(|| format!("error code {code}")))]
pub(crate) struct PartitionRefused {
    /// The Kafka error code.
    pub code: i16,
    /// What the front end said, when it said something.
    pub message: Option<String>,
}

/// A position (`0:12,1:40`) or start point (`earliest`, `latest`, an offset) that does not
/// parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PositionError {
    /// A part without a colon.
    #[error("position '{part}' is not PARTITION:OFFSET")]
    NotAPosition {
        /// The part.
        part: String,
    },
    /// A partition that is not a number.
    #[error("partition '{partition}' in '{part}' is not a number")]
    Partition {
        /// What was written as the partition.
        partition: String,
        /// The part.
        part: String,
    },
    /// An offset that is not a number.
    #[error("offset '{offset}' in '{part}' is not a number")]
    Offset {
        /// What was written as the offset.
        offset: String,
        /// The part.
        part: String,
    },
    /// A start point that is none of the three.
    #[error("'{text}' is not a start position; use earliest, latest or an offset")]
    Start {
        /// What was written.
        text: String,
    },
}

/// What the node does with streams on a user's behalf.
#[derive(Debug)]
pub struct StreamService {
    pub(crate) broker: Arc<Broker>,
    pub(crate) registry: Arc<SchemaRegistry>,
    pub(crate) gate: Arc<ContractGate>,
    /// The applied domains: a stream's key field and owner.
    pub(crate) applied: Arc<AppliedDomains>,
    /// Where changes made here (dead letters replayed) are recorded.
    pub(crate) recorder: Arc<dyn Recorder>,
    /// Spreads records without a key over partitions, as Kafka's round-robin partitioner does.
    pub(crate) next_partition: AtomicUsize,
}

/// The client id the node's own requests carry in logs.
pub(crate) const CLIENT: &str = "headwater-http";

impl StreamService {
    /// Streams served through `broker`, checked by `gate` against `registry`'s contracts.
    pub fn new(
        broker: Arc<Broker>,
        registry: Arc<SchemaRegistry>,
        gate: Arc<ContractGate>,
        applied: Arc<AppliedDomains>,
        recorder: Arc<dyn Recorder>,
    ) -> Self {
        StreamService {
            broker,
            registry,
            gate,
            applied,
            recorder,
            next_partition: AtomicUsize::new(0),
        }
    }

    /// The schema registry whose contracts encode and decode records.
    pub fn registry(&self) -> &Arc<SchemaRegistry> {
        &self.registry
    }

    /// The applied domains this service reads stream definitions from.
    pub fn applied(&self) -> &Arc<AppliedDomains> {
        &self.applied
    }

    /// The key field declared for `topic`'s stream, if any.
    pub(crate) fn key_field(&self, topic: &str) -> Option<String> {
        self.applied.stream(topic).and_then(|(_, def)| def.key)
    }

    /// The Kafka front end this service produces and commits through.
    pub fn broker(&self) -> &Arc<Broker> {
        &self.broker
    }

    /// The latest contract of `topic`'s value subject and its schema id, if it has one.
    pub(crate) fn latest_contract(
        &self,
        topic: &str,
    ) -> Option<(u32, headwater_contracts::Contract)> {
        let reg = self.registry.read();
        reg.version(
            &format!("{topic}-value"),
            headwater_contracts::registry::VersionRef::Latest,
        )
        .ok()
        .map(|(_, id, schema)| (id, schema.contract.clone()))
    }

    /// Woken on every append to the log: followers wait on it instead of polling.
    pub fn appended(&self) -> Arc<tokio::sync::Notify> {
        self.broker.log().appended().clone()
    }

    /// A client-visible topic by name.
    pub(crate) fn topic(&self, name: &str) -> Result<Arc<Topic>, StreamError> {
        if name.starts_with("_headwater.") {
            return Err(StreamError::InternalTopic(name.to_string()));
        }
        self.broker
            .log()
            .topic(name)
            .ok_or_else(|| StreamError::UnknownStream(name.to_string()))
    }

    /// Produces one batch per partition with acks=all through the Kafka front end; returns,
    /// per partition, the base offset or the error the front end answered.
    pub(crate) async fn produce(
        &self,
        topic: &str,
        batches: Vec<(i32, Bytes)>,
    ) -> Result<Vec<(i32, Result<i64, PartitionRefused>)>, StreamError> {
        if batches.is_empty() {
            return Ok(Vec::new());
        }
        let request = ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(30_000)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(StrBytes::from_string(topic.to_string()).into())
                .with_partition_data(
                    batches
                        .into_iter()
                        .map(|(index, records)| {
                            PartitionProduceData::default()
                                .with_index(index)
                                .with_records(Some(records))
                        })
                        .collect(),
                )]);
        let Some(response) = self.broker.request(9, request, CLIENT).await else {
            return Err(StreamError::Produce {
                topic: topic.to_string(),
                message: "the front end gave no produce response".into(),
            });
        };
        Ok(response
            .responses
            .into_iter()
            .flat_map(|t| t.partition_responses)
            .map(|p| {
                let outcome = if p.error_code == 0 {
                    Ok(p.base_offset)
                } else {
                    Err(PartitionRefused {
                        code: p.error_code,
                        message: p.error_message.map(|m| m.to_string()),
                    })
                };
                (p.index, outcome)
            })
            .collect())
    }
}

/// Record headers minus the ones the node added when it dead-lettered the record.
pub(crate) fn original_headers(headers: &Headers) -> Headers {
    headers
        .iter()
        .filter(|(k, _)| !k.starts_with("headwater."))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}
