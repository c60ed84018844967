//! Where a streaming pipeline writes and keeps its position: the other half of the narrow
//! interface of [`crate::StreamSource`].

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

use crate::source::Offsets;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A group's committed offsets per topic, and the commit metadata (the checkpoint).
pub type Committed = (BTreeMap<String, Offsets>, Option<String>);

/// A producer identity of the node's own, for exactly-once writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ProducerId {
    pub id: i64,
    pub epoch: i16,
}

pub trait StreamSink: Send + Sync + std::fmt::Debug + 'static {
    /// A new idempotent producer id.
    fn init_producer(&self) -> BoxFuture<'_, Result<ProducerId, String>>;
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
    ) -> BoxFuture<'a, Result<(), String>>;
    /// A consumer group's committed offsets per topic, and the metadata string of the first.
    fn committed<'a>(
        &'a self,
        group: &'a str,
        topics: &'a [String],
    ) -> BoxFuture<'a, Result<Committed, String>>;
    /// Commits offsets per topic for `group`, with `metadata` on every partition.
    fn commit<'a>(
        &'a self,
        group: &'a str,
        offsets: &'a BTreeMap<String, Offsets>,
        metadata: &'a str,
    ) -> BoxFuture<'a, Result<(), String>>;
}
