//! A topic holding Headwater's own state on the cluster (`_headwater.*`), the cluster backing of
//! the embedded node's internal topics: one partition, kept forever, replicated as the cluster
//! replicates, written by an idempotent producer and read whole at start.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminOptions, NewTopic, TopicReplication};
use rdkafka::consumer::Consumer;
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::message::Message;
use rdkafka::producer::FutureRecord;
use rdkafka::{Offset, TopicPartitionList};

use crate::{Cluster, ClusterError};

/// How long a replay waits for the next record it knows exists before it gives up.
const REPLAY_STALL: Duration = Duration::from_secs(30);

/// One record of a state topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateRecord {
    /// Its offset.
    pub offset: i64,
    /// Its key.
    pub key: Option<Vec<u8>>,
    /// Its value; none for a tombstone.
    pub value: Option<Vec<u8>>,
}

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

    /// Appends one record and returns its offset once every in-sync replica has it.
    pub async fn append(&self, key: Option<&[u8]>, value: &[u8]) -> Result<i64, ClusterError> {
        let mut record = FutureRecord::<[u8], [u8]>::to(&self.name)
            .partition(0)
            .payload(value);
        if let Some(key) = key {
            record = record.key(key);
        }
        let timeout = Duration::from_millis(self.cluster.config().connect_timeout_ms);
        match self.cluster.producer().send(record, timeout).await {
            Ok(delivery) => Ok(delivery.offset),
            Err((e, _)) => Err(self.cluster.client_error("appending to a state topic", e)),
        }
    }

    /// Every record in order, up to the end the topic had when the read started.
    pub async fn read_all(&self) -> Result<Vec<StateRecord>, ClusterError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.read_all_blocking())
            .await
            .map_err(|e| {
                self.cluster
                    .topic_error(&self.name, format!("the read stopped: {e}"))
            })?
    }

    fn read_all_blocking(&self) -> Result<Vec<StateRecord>, ClusterError> {
        let reader = self.cluster.reader()?;
        let timeout = Duration::from_millis(self.cluster.config().connect_timeout_ms);
        let (low, high) = reader
            .fetch_watermarks(&self.name, 0, timeout)
            .map_err(|e| self.cluster.client_error("reading a state topic's end", e))?;
        let mut records = Vec::new();
        if high <= low {
            return Ok(records);
        }
        let mut assignment = TopicPartitionList::new();
        assignment
            .add_partition_offset(&self.name, 0, Offset::Offset(low))
            .map_err(|e| self.cluster.client_error("reading a state topic", e))?;
        reader
            .assign(&assignment)
            .map_err(|e| self.cluster.client_error("reading a state topic", e))?;
        let mut last_progress = Instant::now();
        let mut next = low;
        while next < high {
            match reader.poll(Duration::from_millis(200)) {
                Some(Ok(message)) => {
                    next = message.offset() + 1;
                    records.push(StateRecord {
                        offset: message.offset(),
                        key: message.key().map(<[u8]>::to_vec),
                        value: message.payload().map(<[u8]>::to_vec),
                    });
                    last_progress = Instant::now();
                }
                Some(Err(e)) => {
                    return Err(self.cluster.client_error("reading a state topic", e));
                }
                None if last_progress.elapsed() > REPLAY_STALL => {
                    return Err(self.cluster.topic_error(
                        &self.name,
                        format!(
                            "replay stalled at offset {next} of {high} for {} s: check the \
                             cluster's health (scripts/kafka-cluster status)",
                            REPLAY_STALL.as_secs()
                        ),
                    ));
                }
                None => {}
            }
        }
        Ok(records)
    }
}
