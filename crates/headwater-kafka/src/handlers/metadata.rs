use std::sync::Arc;

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{
    BrokerId, DescribeClusterResponse, MetadataRequest, MetadataResponse, TopicName,
};

use super::{client_topic, INTERNAL_PREFIX};
use crate::Broker;

pub(crate) fn handle(broker: &Arc<Broker>, req: MetadataRequest, version: i16) -> MetadataResponse {
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

pub(crate) fn describe_cluster(broker: &Arc<Broker>) -> DescribeClusterResponse {
    let node = &broker.node;
    DescribeClusterResponse::default()
        .with_cluster_id(Broker::str(node.cluster_id.clone()))
        .with_controller_id(BrokerId(node.node_id))
        .with_brokers(vec![DescribeClusterBroker::default()
            .with_broker_id(BrokerId(node.node_id))
            .with_host(Broker::str(node.host.clone()))
            .with_port(node.port)])
}
