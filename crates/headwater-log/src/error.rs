use std::io;
use std::path::PathBuf;

use crate::batch::BatchError;

/// Everything the log can refuse or fail at. Each message names the thing and what to do.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "data dir {dir} is in use by another headwater node (lock file {lock} is held{holder}); stop that node or pass another --data-dir"
    )]
    DataDirLocked {
        dir: PathBuf,
        lock: PathBuf,
        holder: String,
    },
    #[error("topic '{0}' already exists")]
    TopicExists(String),
    #[error("topic '{0}' does not exist")]
    UnknownTopic(String),
    #[error("partition {partition} of topic '{topic}' does not exist")]
    UnknownPartition { topic: String, partition: i32 },
    #[error("invalid topic name '{name}': {reason}")]
    InvalidTopicName { name: String, reason: String },
    #[error("invalid partition count {count} for topic '{topic}': {reason}")]
    InvalidPartitions {
        topic: String,
        count: i64,
        reason: String,
    },
    #[error("topic config '{key}={value}' is invalid: {reason}")]
    InvalidConfig {
        key: String,
        value: String,
        reason: String,
    },
    #[error("unknown topic config '{key}'; known configs: {known}")]
    UnknownConfig { key: String, known: String },
    #[error(
        "invalid record batch at byte {position} of the request for {topic}-{partition}: {source}"
    )]
    InvalidBatch {
        topic: String,
        partition: i32,
        position: usize,
        #[source]
        source: BatchError,
    },
    #[error(
        "record batch of {size} bytes for {topic}-{partition} exceeds max.message.bytes={max}; raise the topic's max.message.bytes or send smaller batches"
    )]
    BatchTooLarge {
        topic: String,
        partition: i32,
        size: usize,
        max: u64,
    },
    #[error("offset {offset} is out of range for {topic}-{partition} (valid {start}..={end})")]
    OffsetOutOfRange {
        topic: String,
        partition: i32,
        offset: i64,
        start: i64,
        end: i64,
    },
    #[error(
        "corrupt record batch in {path} at byte {position} (offset {offset}): {source}; run `headwater log verify {path}`"
    )]
    Corrupt {
        path: PathBuf,
        position: u64,
        offset: i64,
        #[source]
        source: BatchError,
    },
    #[error(
        "producer {producer_id} epoch {epoch} is fenced on {topic}-{partition}: epoch {current} is current"
    )]
    ProducerFenced {
        topic: String,
        partition: i32,
        producer_id: i64,
        epoch: i16,
        current: i16,
    },
    #[error(
        "out of order sequence from producer {producer_id} on {topic}-{partition}: got {got}, expected {expected}"
    )]
    OutOfOrderSequence {
        topic: String,
        partition: i32,
        producer_id: i64,
        got: i32,
        expected: i32,
    },
    #[error("transactional record batches are not supported yet ({topic}-{partition})")]
    TransactionsUnsupported { topic: String, partition: i32 },
    #[error("the log is shutting down")]
    ShuttingDown,
}

impl LogError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |source| LogError::Io { op, path, source }
    }
}
