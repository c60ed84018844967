//! DescribeCluster: the node as a cluster of one.

use std::ops::RangeInclusive;
use std::sync::Arc;

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};

use super::{Api, Call};
use crate::Broker;

/// DescribeCluster.
impl Api for DescribeClusterRequest {
    const SUPPORTED_VERSIONS: RangeInclusive<i16> = 0..=1;

    async fn handle(self, call: &Call<'_>) -> Option<DescribeClusterResponse> {
        Some(describe_cluster(call.broker))
    }
}

fn describe_cluster(broker: &Arc<Broker>) -> DescribeClusterResponse {
    let node = &broker.node;
    DescribeClusterResponse::default()
        .with_cluster_id(Broker::str(node.cluster_id.clone()))
        .with_controller_id(BrokerId(node.node_id))
        .with_brokers(vec![DescribeClusterBroker::default()
            .with_broker_id(BrokerId(node.node_id))
            .with_host(Broker::str(node.host.clone()))
            .with_port(node.port)])
}
