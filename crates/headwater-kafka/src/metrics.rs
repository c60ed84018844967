//! Counters of what the Kafka front end moved, per topic, for the node's `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

/// The label of per-topic counters.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TopicLabel {
    /// The topic's name.
    pub topic: String,
}

/// The label of connections the node closed: `connection_limit`, `sign_in_timeout`, `idle`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    /// Why it was closed.
    pub reason: String,
}

/// Per-topic counters, updated once per partition of a request (never per record), and the
/// connections the node's limits closed.
#[derive(Debug, Clone, Default)]
pub struct KafkaMetrics {
    produced_records: Family<TopicLabel, Counter>,
    produced_bytes: Family<TopicLabel, Counter>,
    fetched_records: Family<TopicLabel, Counter>,
    fetched_bytes: Family<TopicLabel, Counter>,
    connections_closed: Family<ReasonLabel, Counter>,
}

impl KafkaMetrics {
    /// Adds the counters to the node's `/metrics` registry.
    pub fn register(&self, registry: &mut Registry) {
        for (name, help, family) in [
            (
                "headwater_produced_records",
                "Records appended through Produce, per topic",
                &self.produced_records,
            ),
            (
                "headwater_produced_bytes",
                "Bytes of record batches appended through Produce, per topic",
                &self.produced_bytes,
            ),
            (
                "headwater_fetched_records",
                "Records returned by Fetch, per topic",
                &self.fetched_records,
            ),
            (
                "headwater_fetched_bytes",
                "Bytes of record batches returned by Fetch, per topic",
                &self.fetched_bytes,
            ),
        ] {
            registry.register(name, help, family.clone());
        }
        registry.register(
            "headwater_kafka_connections_refused",
            "Kafka connections the node closed by its limits, by reason (connection_limit, sign_in_timeout, idle)",
            self.connections_closed.clone(),
        );
    }

    /// A connection closed by a limit.
    pub(crate) fn connection_closed(&self, reason: &str) {
        self.connections_closed
            .get_or_create(&ReasonLabel {
                reason: reason.to_string(),
            })
            .inc();
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
    records
        .get_or_create(&label)
        .inc_by(headwater_log::batch::count_records(batches));
    bytes.get_or_create(&label).inc_by(batches.len() as u64);
}
