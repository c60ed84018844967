//! The narrow interface through which pipelines read streams: the embedded log in-process today,
//! a Kafka cluster through a client later, with nothing else in this crate changing.

use std::collections::BTreeMap;

use headwater_contracts::Contract;

/// One record of a stream, its value decoded to JSON with the contract version it was written
/// with.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamRecord {
    pub partition: i32,
    pub offset: i64,
    /// Kafka timestamp, milliseconds since the Unix epoch.
    pub timestamp: i64,
    pub key: Option<String>,
    pub value: serde_json::Value,
}

/// Next offset to read, per partition.
pub type Offsets = BTreeMap<i32, i64>;

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
    ) -> Result<Vec<StreamRecord>, String>;
}
