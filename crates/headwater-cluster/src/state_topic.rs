//! A topic holding Headwater's own state on the cluster (`_headwater.*`), the cluster backing of
//! the embedded node's internal topics: one partition, kept forever, replicated as the cluster
//! replicates, written by an idempotent producer and read whole at start.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::admin::{AdminOptions, NewTopic, TopicReplication};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::producer::FutureRecord;

use crate::{Cluster, ClusterError, StateMirror};

/// One state topic on the cluster.
#[derive(Debug, Clone)]
pub struct StateTopic {
    name: String,
    cluster: Arc<Cluster>,
}

impl StateTopic {
    /// Opens the topic, creating it on first use with the cluster's default replication factor
    /// (so `min.insync.replicas` of the cluster applies) and no retention: state is never aged
    /// out. A node that finds it already created (by another node) uses it as it is.
    pub async fn open(cluster: &Arc<Cluster>, name: &str) -> Result<StateTopic, ClusterError> {
        let topic = NewTopic::new(name, 1, TopicReplication::Fixed(-1))
            .set("retention.ms", "-1")
            .set("retention.bytes", "-1")
            .set("cleanup.policy", "delete");
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_millis(
            cluster.config().connect_timeout_ms,
        )));
        let results = cluster
            .admin()
            .create_topics([&topic], &options)
            .await
            .map_err(|e| cluster.client_error("creating a state topic", e))?;
        for result in results {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((_, RDKafkaErrorCode::TopicAuthorizationFailed))
                | Err((_, RDKafkaErrorCode::ClusterAuthorizationFailed)) => {
                    return Err(cluster.topic_error(
                        name,
                        "the cluster does not let Headwater's user create it: make that user a \
                         super user (super.users) or grant it CREATE on the cluster"
                            .to_string(),
                    ))
                }
                Err((_, code)) => {
                    return Err(cluster.topic_error(name, format!("creating it failed: {code}")))
                }
            }
        }
        Ok(StateTopic {
            name: name.to_string(),
            cluster: cluster.clone(),
        })
    }

    /// The topic's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Appends one record (no value: a tombstone) and returns its offset once every in-sync
    /// replica has it.
    pub async fn append(
        &self,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
    ) -> Result<i64, ClusterError> {
        let mut record = FutureRecord::<[u8], [u8]>::to(&self.name).partition(0);
        if let Some(value) = value {
            record = record.payload(value);
        }
        if let Some(key) = key {
            record = record.key(key);
        }
        let timeout = Duration::from_millis(self.cluster.config().connect_timeout_ms);
        match self.cluster.producer().send(record, timeout).await {
            Ok(delivery) => Ok(delivery.offset),
            Err((e, _)) => Err(self.cluster.client_error("appending to a state topic", e)),
        }
    }

    /// Follows the topic: reads it whole, then keeps a copy in memory that a background reader
    /// keeps up to date with what every node appends. Returns once the copy holds everything
    /// the topic had when it was called.
    pub async fn follow(&self) -> Result<Arc<StateMirror>, ClusterError> {
        StateMirror::start(self.clone()).await
    }

    pub(crate) fn cluster(&self) -> &Arc<Cluster> {
        &self.cluster
    }
}
