//! Who reads and writes a stream, as the front end has seen it: consumer groups with committed
//! offsets (asked as a Kafka admin asks: ListGroups, then OffsetFetch per group) and the client
//! ids that produced to it.

use std::collections::BTreeMap;

use headwater_kafka::kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use headwater_kafka::kafka_protocol::messages::{ListGroupsRequest, OffsetFetchRequest};
use headwater_kafka::kafka_protocol::protocol::StrBytes;

use crate::StreamService;

/// The client id the node's status requests carry.
const CLIENT: &str = "headwater-status";

impl StreamService {
    /// Every consumer group with committed offsets on `topic`'s `partitions`: (group, next
    /// offset per partition).
    pub async fn group_positions(
        &self,
        topic: &str,
        partitions: &[i32],
    ) -> Vec<(String, BTreeMap<i32, i64>)> {
        let broker = self.broker();
        let Some(list) = broker
            .request(4, ListGroupsRequest::default(), CLIENT)
            .await
        else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for g in list.groups {
            let request = OffsetFetchRequest::default()
                .with_group_id(g.group_id.clone())
                .with_topics(Some(vec![OffsetFetchRequestTopic::default()
                    .with_name(StrBytes::from_string(topic.to_string()).into())
                    .with_partition_indexes(partitions.to_vec())]));
            let Some(r) = broker.request(7, request, CLIENT).await else {
                continue;
            };
            let positions: BTreeMap<i32, i64> = r
                .topics
                .into_iter()
                .flat_map(|t| t.partitions)
                .filter(|p| p.error_code == 0 && p.committed_offset >= 0)
                .map(|p| (p.partition_index, p.committed_offset))
                .collect();
            if !positions.is_empty() {
                out.push((g.group_id.0.to_string(), positions));
            }
        }
        out
    }

    /// Client ids that produced to `topic` since the node started.
    pub fn producers_seen(&self, topic: &str) -> Vec<String> {
        self.broker().producers_seen(topic)
    }
}
