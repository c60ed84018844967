//! Where a streaming pipeline writes and keeps its position: the other half of the narrow
//! interface of [`crate::StreamSource`].
//!
//! Exactly-once output rests on two things every backing offers: an idempotent producer (a
//! repeated write with the same sequence numbers is recognised as a duplicate) and consumer
//! group offsets with a metadata string, where a pipeline keeps its checkpoint.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

use crate::source::{Offsets, StreamRefused};

/// A boxed future, so [`StreamSink`] stays object safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A group's committed offsets per topic, and the commit metadata (the checkpoint).
pub type Committed = (BTreeMap<String, Offsets>, Option<String>);

/// A producer identity of the node's own, for exactly-once writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ProducerId {
    /// The producer id.
    pub id: i64,
    /// Its epoch.
    pub epoch: i16,
}

/// Writes pipeline output and keeps pipeline positions. See the module doc.
pub trait StreamSink: Send + Sync + std::fmt::Debug + 'static {
    /// A new idempotent producer id.
    fn init_producer(&self) -> BoxFuture<'_, Result<ProducerId, SinkError>>;
    /// Writes `events` (JSON records, encoded with the stream's contract and keyed by its key
    /// field) to `topic`. `sequences` holds the next sequence number per partition and is
    /// advanced; the partition of each event depends only on the event and its index, so the
    /// same call repeated writes the same batches with the same numbers.
    fn write<'a>(
        &'a self,
        topic: &'a str,
        events: Vec<serde_json::Value>,
        producer: ProducerId,
        sequences: &'a mut BTreeMap<i32, i32>,
    ) -> BoxFuture<'a, Result<(), SinkError>>;
    /// A consumer group's committed offsets per topic, and the metadata string of the first.
    fn committed<'a>(
        &'a self,
        group: &'a str,
        topics: &'a [String],
    ) -> BoxFuture<'a, Result<Committed, SinkError>>;
    /// Commits offsets per topic for `group`, with `metadata` on every partition.
    fn commit<'a>(
        &'a self,
        group: &'a str,
        offsets: &'a BTreeMap<String, Offsets>,
        metadata: &'a str,
    ) -> BoxFuture<'a, Result<(), SinkError>>;
}

/// Why a [`StreamSink`] could not write or commit.
///
/// Written for both backings: the node's own Kafka front end in-process, a Kafka cluster
/// through a client. A backing reports what a retry may clear (no answer, a coordinator or
/// leader moving, a rebalance) as [`SinkError::Unavailable`], the only retryable kind; the
/// others need a fix. Kafka error codes are kept as numbers: both backings speak them.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The stream does not exist or the backing does not let pipelines write it.
    #[error(transparent)]
    Refused(#[from] StreamRefused),
    /// An output record does not fit the output stream's contract; nothing of the call was
    /// written.
    #[error("output record {index} to {stream}: {reason}")]
    InvalidRecord {
        /// The output stream.
        stream: String,
        /// The record's index in the call.
        index: usize,
        /// How it does not fit.
        reason: String,
    },
    /// The backing refused a partition's records: the contract gate (the reason names the
    /// rule), a fenced producer, a record too large.
    #[error("{stream} partition {partition}: {reason}")]
    ProduceRefused {
        /// The output stream.
        stream: String,
        /// The partition refused.
        partition: i32,
        /// The backing's reason.
        reason: String,
    },
    /// No producer id was granted.
    #[error("no producer id (Kafka error code {code})")]
    ProducerRefused {
        /// The Kafka error code answered.
        code: i16,
    },
    /// The group's offsets were not committed (with the embedded log: the group has live Kafka
    /// members, so its offsets are theirs).
    #[error("committing the checkpoint of group '{group}' failed (Kafka error code {code})")]
    CommitRefused {
        /// The consumer group.
        group: String,
        /// The Kafka error code answered.
        code: i16,
    },
    /// The backing did not answer or cannot be reached now. Retryable.
    #[error("the stream backing is unavailable: {reason}")]
    Unavailable {
        /// What did not answer, and how.
        reason: String,
    },
    /// A fault inside the backing that neither the records nor the group caused (a bug).
    #[error("internal error of the stream backing: {reason}")]
    Internal {
        /// What failed.
        reason: String,
    },
}

impl SinkError {
    /// Whether the same call may succeed later without anyone changing anything.
    pub fn is_retryable(&self) -> bool {
        matches!(self, SinkError::Unavailable { .. })
    }
}
