//! # headwater-log
//!
//! The embedded storage engine of a Headwater node: topics made of partitions made of segment
//! files that hold Kafka v2 record batches exactly as producers sent them (only the base offset is
//! assigned), with sparse offset and time indexes, CRC32C checks, torn-tail recovery, a per-topic
//! fsync policy with group commit, size and age rolls, and retention by time and bytes.
//!
//! It owns bytes on disk, offsets and the v2 record batch format: [`batch`] is the only place
//! that reads or rewrites batch bytes (header fields, CRCs, record-less spans) and that encodes
//! the batches Headwater writes itself, with the `kafka-protocol` record codec. It does not know
//! the network, Kafka requests, consumer groups or contracts: `headwater-kafka` builds those on
//! [`Log`].
//!
//! Entry point: [`Log::open`] on a data directory, then [`Log::create_topic`] and
//! [`Partition::append`] / [`Partition::read`].
//!
//! ```no_run
//! # fn main() -> Result<(), headwater_log::LogError> {
//! use headwater_log::{Log, LogConfig};
//! let log = Log::open("./headwater-data", LogConfig::default())?;
//! let topic = log.create_topic("payments.transaction_settled", 3, Default::default())?;
//! let partition = topic.partition(0).expect("partition 0 exists");
//! let bytes = partition.read(0, 1 << 20)?; // whole record batches from offset 0
//! # let _ = bytes; log.close()?; Ok(()) }
//! ```

pub mod batch;
mod config;
mod error;
mod flusher;
mod fsutil;
pub mod inspect;
mod log;
#[cfg(test)]
mod model_tests;
mod partition;
mod producer;
pub mod records;
mod segment;

pub use config::{FsyncPolicy, LogConfig, TopicConfig, Validation, TOPIC_CONFIG_KEYS};
pub use error::LogError;
pub use log::{validate_topic_name, Log, Topic};
pub use partition::{list_segments, AppendOutcome, Partition, Watermarks};
pub use segment::{now_ms, Segment};
