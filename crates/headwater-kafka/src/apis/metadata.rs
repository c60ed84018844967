//! Metadata: the node as the only broker, and the topics a client may see.

use std::ops::RangeInclusive;
use std::sync::Arc;

use headwater_auth::TopicOp;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::ResponseError;

use super::{client_topic, Api, Call, INTERNAL_PREFIX};
use crate::authorize::{answer_topics, Checked, Guard, Refused};
use crate::Broker;

/// Metadata, with auto-creation of asked-for topics when the node allows it.
impl Api for MetadataRequest {
    const SUPPORTED_VERSIONS: RangeInclusive<i16> = 0..=12;

    fn authorize(mut self, guard: &Guard<'_>) -> Checked<Self> {
        let mut refused = Vec::new();
        if let Some(list) = self.topics.as_mut().filter(|l| !l.is_empty()) {
            list.retain(|t| match &t.name {
                Some(name) => guard.keep_topic(TopicOp::Describe, name, Vec::new(), &mut refused),
                None => true,
            });
            if list.is_empty() {
                // Every topic asked for was refused (an empty list asks for all in v0; the
                // answer is filtered to what may be seen either way).
                self.allow_auto_topic_creation = false;
            }
        }
        Checked::Handle(self, refused)
    }

    async fn handle(self, call: &Call<'_>) -> Option<MetadataResponse> {
        Some(metadata(call.broker, self, call.version))
    }

    fn merge(
        guard: &Guard<'_>,
        mut response: Self::Response,
        refused: Vec<Refused>,
    ) -> Self::Response {
        // Every answer, not only listings: a topic asked for by id had no name to check before
        // the handler ran.
        response
            .topics
            .retain(|t| t.name.as_ref().is_some_and(|n| guard.topic_visible(&n.0)));
        response.topics.extend(answer_topics(refused, |name, _, _| {
            MetadataResponseTopic::default()
                .with_name(Some(name))
                .with_error_code(ResponseError::TopicAuthorizationFailed.code())
        }));
        response
    }
}

fn metadata(broker: &Arc<Broker>, req: MetadataRequest, version: i16) -> MetadataResponse {
    let node = &broker.node;
    let brokers = vec![MetadataResponseBroker::default()
        .with_node_id(BrokerId(node.node_id))
        .with_host(Broker::str(node.host.clone()))
        .with_port(node.port)];
    // v0 asks for every topic with an empty list; v1+ uses null for that.
    let wanted: Option<Vec<String>> = match req.topics {
        None => None,
        Some(ts) if ts.is_empty() && version == 0 => None,
        Some(ts) => Some(
            ts.into_iter()
                .filter_map(|t| t.name.map(|n| n.0.to_string()))
                .collect(),
        ),
    };
    // Before v4 there is no flag and auto-creation follows the broker setting alone.
    let allow_create = version < 4 || req.allow_auto_topic_creation;
    let mut topics = Vec::new();
    match wanted {
        None => {
            for t in broker.log.topics() {
                if !t.name().starts_with(INTERNAL_PREFIX) {
                    topics.push(describe_topic(broker, &t));
                }
            }
        }
        Some(names) => {
            for name in names {
                match client_topic(broker, &name, allow_create) {
                    Ok(t) => topics.push(describe_topic(broker, &t)),
                    Err(e) => topics.push(
                        MetadataResponseTopic::default()
                            .with_name(Some(TopicName(Broker::str(name))))
                            .with_error_code(crate::error::log_error_code(&e).code()),
                    ),
                }
            }
        }
    }
    MetadataResponse::default()
        .with_brokers(brokers)
        .with_cluster_id(Some(Broker::str(node.cluster_id.clone())))
        .with_controller_id(BrokerId(node.node_id))
        .with_topics(topics)
}

fn describe_topic(broker: &Broker, t: &headwater_log::Topic) -> MetadataResponseTopic {
    let me = BrokerId(broker.node.node_id);
    let partitions = t
        .partitions()
        .iter()
        .map(|p| {
            MetadataResponsePartition::default()
                .with_partition_index(p.index())
                .with_leader_id(me)
                .with_leader_epoch(0)
                .with_replica_nodes(vec![me])
                .with_isr_nodes(vec![me])
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(Broker::str(t.name()))))
        .with_topic_id(t.id())
        .with_is_internal(false)
        .with_partitions(partitions)
}
