//! The narrow interface through which pipelines read streams: the embedded log in-process
//! today, an Apache Kafka cluster through a client next, with nothing else in this crate
//! changing.
//!
//! The model is pull: a pipeline keeps its own positions (an [`Offsets`] per stream) and asks
//! for the records after them, up to an end it chose (a snapshot of the ends for a table run,
//! the ends now for a micro-batch). The source keeps no per-reader state, so one source serves
//! every pipeline and query of the node.

use std::collections::BTreeMap;

use headwater_contracts::Contract;

/// One record of a stream, its value decoded to JSON with the contract version it was written
/// with.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamRecord {
    /// The partition it was read from.
    pub partition: i32,
    /// Its offset in the partition.
    pub offset: i64,
    /// Kafka timestamp, milliseconds since the Unix epoch.
    pub timestamp: i64,
    /// The record key as text, if it has one.
    pub key: Option<String>,
    /// The value decoded to JSON.
    pub value: serde_json::Value,
}

/// Next offset to read, per partition.
pub type Offsets = BTreeMap<i32, i64>;

/// Reads streams for pipelines and queries. See the module doc for the model.
pub trait StreamSource: Send + Sync + std::fmt::Debug + 'static {
    /// The latest contract of `topic`, if it has one.
    fn contract(&self, topic: &str) -> Option<Contract>;
    /// Where each partition of `topic` ends now (its high watermark); `None` if there is no
    /// such stream.
    fn end_offsets(&self, topic: &str) -> Option<Offsets>;
    /// Where each partition starts (records before were removed by retention).
    fn start_offsets(&self, topic: &str) -> Option<Offsets>;
    /// Reads up to `max` records from `positions` (moved past what was read), not past `end`.
    fn read(
        &self,
        topic: &str,
        positions: &mut Offsets,
        end: &Offsets,
        max: usize,
    ) -> Result<Vec<StreamRecord>, SourceError>;
}

/// Why a backing does not let pipelines use a stream at all, for reading
/// ([`SourceError::Refused`]) or writing ([`SinkError::Refused`](crate::SinkError::Refused)).
#[derive(Debug, thiserror::Error)]
pub enum StreamRefused {
    /// No stream has this name.
    #[error("stream '{stream}' does not exist; declare it in its domain's manifest and `headwater apply`")]
    UnknownStream {
        /// The stream named.
        stream: String,
    },
    /// The backing does not let pipelines use this stream (an internal topic of the node; with
    /// Kafka, a topic the node's principal may not read or write).
    #[error("{reason}")]
    NotAllowed {
        /// The stream named.
        stream: String,
        /// The backing's reason, saying what would allow it.
        reason: String,
    },
}

/// Why a [`StreamSource`] could not read.
///
/// Written for both backings: the embedded log answers in-process, a Kafka cluster answers a
/// fetch per partition. Only [`SourceError::Unavailable`] is worth retrying as it is; the
/// others need a fix (a manifest, a permission, damaged data).
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The stream does not exist or the backing does not let pipelines read it.
    #[error(transparent)]
    Refused(#[from] StreamRefused),
    /// A partition could not be read at an offset: damaged data, a batch that does not decode,
    /// a fetch the broker answered with an error for that partition.
    #[error("cannot read {stream} partition {partition} at offset {offset}: {reason}")]
    ReadFailed {
        /// The stream read.
        stream: String,
        /// The partition that failed.
        partition: i32,
        /// The offset it failed at.
        offset: i64,
        /// What the backing said.
        reason: String,
    },
    /// The read failed and the backing says why as text only. The embedded log's read errors
    /// are of this kind today; the text names the partition and offset.
    #[error("{reason}")]
    Backing {
        /// The stream read.
        stream: String,
        /// What the backing said.
        reason: String,
    },
    /// The backing cannot be reached or did not answer in time (a broker down, a leader
    /// moving). Retryable.
    #[error("the stream backing is unavailable for '{stream}': {reason}")]
    Unavailable {
        /// The stream read.
        stream: String,
        /// What the backing said.
        reason: String,
    },
}

impl SourceError {
    /// Whether the same read may succeed later without anyone changing anything.
    pub fn is_retryable(&self) -> bool {
        matches!(self, SourceError::Unavailable { .. })
    }
}
