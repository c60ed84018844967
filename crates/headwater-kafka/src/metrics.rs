//! Counters of what the Kafka front end moved, per topic, for the node's `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TopicLabel {
    pub topic: String,
}

/// Per-topic counters, updated once per partition of a request (never per record).
#[derive(Debug, Clone, Default)]
pub struct KafkaMetrics {
    produced_records: Family<TopicLabel, Counter>,
    produced_bytes: Family<TopicLabel, Counter>,
    fetched_records: Family<TopicLabel, Counter>,
    fetched_bytes: Family<TopicLabel, Counter>,
}

impl KafkaMetrics {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "headwater_produced_records",
            "Records appended through Produce, per topic",
            self.produced_records.clone(),
        );
        registry.register(
            "headwater_produced_bytes",
            "Bytes of record batches appended through Produce, per topic",
            self.produced_bytes.clone(),
        );
        registry.register(
            "headwater_fetched_records",
            "Records returned by Fetch, per topic",
            self.fetched_records.clone(),
        );
        registry.register(
            "headwater_fetched_bytes",
            "Bytes of record batches returned by Fetch, per topic",
            self.fetched_bytes.clone(),
        );
    }

    /// `batches` as appended (a dead-letter split keeps only the valid records).
    pub(crate) fn produced(&self, topic: &str, batches: &[u8]) {
        count(&self.produced_records, &self.produced_bytes, topic, batches);
    }

    pub(crate) fn fetched(&self, topic: &str, batches: &[u8]) {
        if !batches.is_empty() {
            count(&self.fetched_records, &self.fetched_bytes, topic, batches);
        }
    }
}

/// Adds `batches`' records and bytes to `topic`'s counters.
fn count(
    records: &Family<TopicLabel, Counter>,
    bytes: &Family<TopicLabel, Counter>,
    topic: &str,
    batches: &[u8],
) {
    let label = TopicLabel {
        topic: topic.to_string(),
    };
    records.get_or_create(&label).inc_by(records_in(batches));
    bytes.get_or_create(&label).inc_by(batches.len() as u64);
}

/// Records in a run of v2 batches, from their headers (record count at bytes 57..61).
fn records_in(mut batches: &[u8]) -> u64 {
    let mut n = 0u64;
    while let (Some(len), Some(count)) = (batches.get(8..12), batches.get(57..61)) {
        let (Ok(len), Ok(count)) = (<[u8; 4]>::try_from(len), <[u8; 4]>::try_from(count)) else {
            break;
        };
        n += u64::try_from(i32::from_be_bytes(count)).unwrap_or(0);
        let size = 12 + usize::try_from(i32::from_be_bytes(len)).unwrap_or(usize::MAX - 12);
        batches = batches.get(size..).unwrap_or(&[]);
    }
    n
}
