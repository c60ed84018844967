use std::io;
use std::path::PathBuf;

use crate::batch::BatchError;

/// Everything the log can refuse or fail at. Each message names the thing and what to do.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// A file system call failed (an internal or environment fault, not the caller's).
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done (`open segment`, `fsync segment`, ...).
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// Another node holds the data directory.
    #[error(
        "data dir {dir} is in use by another headwater node (lock file {lock} is held{holder}); stop that node or pass another --data-dir"
    )]
    DataDirLocked {
        /// The data directory.
        dir: PathBuf,
        /// Its lock file.
        lock: PathBuf,
        /// Who holds the lock, as the lock file says (may be empty).
        holder: String,
    },
    /// Creating a topic whose name is taken.
    #[error("topic '{0}' already exists")]
    TopicExists(String),
    /// A topic name the log does not hold.
    #[error("topic '{0}' does not exist")]
    UnknownTopic(String),
    /// A partition index the topic does not have.
    #[error("partition {partition} of topic '{topic}' does not exist")]
    UnknownPartition {
        /// The topic.
        topic: String,
        /// The index asked for.
        partition: i32,
    },
    /// A topic name the log cannot store.
    #[error("invalid topic name '{name}': {reason}")]
    InvalidTopicName {
        /// The name given.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A partition count that cannot be created.
    #[error("invalid partition count {count} for topic '{topic}': {reason}")]
    InvalidPartitions {
        /// The topic.
        topic: String,
        /// The count asked for.
        count: i64,
        /// Why it cannot be.
        reason: String,
    },
    /// A topic config value that does not parse or is out of range.
    #[error("topic config '{key}={value}' is invalid: {reason}")]
    InvalidConfig {
        /// The config key.
        key: String,
        /// The value given.
        value: String,
        /// What a valid value is.
        reason: String,
    },
    /// A topic config key the log does not know.
    #[error("unknown topic config '{key}'; known configs: {known}")]
    UnknownConfig {
        /// The key given.
        key: String,
        /// The keys there are, comma-separated.
        known: String,
    },
    /// A produced batch that is not a valid v2 batch.
    #[error(
        "invalid record batch at byte {position} of the request for {topic}-{partition}: {source}"
    )]
    InvalidBatch {
        /// The topic produced to.
        topic: String,
        /// The partition produced to.
        partition: i32,
        /// Byte position of the batch in the request's records.
        position: usize,
        /// What is wrong with the batch.
        #[source]
        source: BatchError,
    },
    /// A produced batch larger than the topic accepts.
    #[error(
        "record batch of {size} bytes for {topic}-{partition} exceeds max.message.bytes={max}; raise the topic's max.message.bytes or send smaller batches"
    )]
    BatchTooLarge {
        /// The topic produced to.
        topic: String,
        /// The partition produced to.
        partition: i32,
        /// The batch's size in bytes.
        size: usize,
        /// The topic's `max.message.bytes`.
        max: u64,
    },
    /// A read from an offset the partition does not hold.
    #[error("offset {offset} is out of range for {topic}-{partition} (valid {start}..={end})")]
    OffsetOutOfRange {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The offset asked for.
        offset: i64,
        /// The log start offset.
        start: i64,
        /// The end offset.
        end: i64,
    },
    /// A stored batch that no longer checks out.
    #[error(
        "corrupt record batch in {path} at byte {position} (offset {offset}): {source}; run `headwater log verify {path}`"
    )]
    Corrupt {
        /// The segment file.
        path: PathBuf,
        /// Byte position of the batch in the file.
        position: u64,
        /// Offset the batch was expected at.
        offset: i64,
        /// What is wrong with it.
        #[source]
        source: BatchError,
    },
    /// An idempotent producer's batch with an epoch older than the current one.
    #[error(
        "producer {producer_id} epoch {epoch} is fenced on {topic}-{partition}: epoch {current} is current"
    )]
    ProducerFenced {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The producer.
        producer_id: i64,
        /// The epoch it sent.
        epoch: i16,
        /// The epoch the log holds for it.
        current: i16,
    },
    /// An idempotent producer's batch that does not follow its last one.
    #[error(
        "out of order sequence from producer {producer_id} on {topic}-{partition}: got {got}, expected {expected}"
    )]
    OutOfOrderSequence {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The producer.
        producer_id: i64,
        /// The base sequence it sent.
        got: i32,
        /// The one the log expected.
        expected: i32,
    },
    /// A transactional batch: transactions are not built yet.
    #[error("transactional record batches are not supported yet ({topic}-{partition})")]
    TransactionsUnsupported {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
    },
    /// The log is closing and takes no more writes.
    #[error("the log is shutting down")]
    ShuttingDown,
}

impl LogError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |source| LogError::Io { op, path, source }
    }
}
