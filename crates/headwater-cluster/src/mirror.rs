//! A state topic's records in memory, kept up to date by a background reader: how a node reads
//! its state on the cluster, and how it sees what other nodes write.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::RwLock;
use rdkafka::consumer::Consumer;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::watch;

use crate::{ClusterError, StateTopic};

/// How long the first read waits for a record it knows exists before it gives up.
const CATCH_UP_STALL: Duration = Duration::from_secs(30);

/// One record of a state topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateRecord {
    /// Its offset.
    pub offset: i64,
    /// Its key.
    pub key: Option<Bytes>,
    /// Its value; none for a tombstone.
    pub value: Option<Bytes>,
}

/// A state topic followed in memory. Dropping the last handle stops its reader.
#[derive(Debug)]
pub struct StateMirror {
    topic: StateTopic,
    records: Arc<RwLock<Vec<StateRecord>>>,
    /// The offset after the last record read: moves each time the reader catches a record.
    end: watch::Receiver<i64>,
    stop: Arc<AtomicBool>,
}

impl Drop for StateMirror {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl StateMirror {
    pub(crate) async fn start(topic: StateTopic) -> Result<Arc<StateMirror>, ClusterError> {
        let cluster = topic.cluster().clone();
        let name = topic.name().to_string();
        let reader = cluster.reader()?;
        let timeout = Duration::from_millis(cluster.config().connect_timeout_ms);
        let watermarks = {
            let name = name.clone();
            tokio::task::spawn_blocking(move || {
                let marks = reader.fetch_watermarks(&name, 0, timeout);
                (reader, marks)
            })
        };
        let (reader, marks) = watermarks
            .await
            .map_err(|e| cluster.topic_error(&name, format!("reading its end stopped: {e}")))?;
        let (low, high) =
            marks.map_err(|e| cluster.client_error("reading a state topic's end", e))?;
        let mut assignment = TopicPartitionList::new();
        assignment
            .add_partition_offset(&name, 0, Offset::Offset(low))
            .and_then(|()| reader.assign(&assignment))
            .map_err(|e| cluster.client_error("reading a state topic", e))?;

        let records = Arc::new(RwLock::new(Vec::new()));
        let (tx, end) = watch::channel(low);
        let stop = Arc::new(AtomicBool::new(false));
        let follow = {
            let (records, stop, name) = (records.clone(), stop.clone(), name.clone());
            move || {
                while !stop.load(Ordering::Relaxed) {
                    match reader.poll(Duration::from_millis(100)) {
                        Some(Ok(m)) => {
                            let record = StateRecord {
                                offset: m.offset(),
                                key: m.key().map(Bytes::copy_from_slice),
                                value: m.payload().map(Bytes::copy_from_slice),
                            };
                            records.write().push(record);
                            tx.send_replace(m.offset() + 1);
                        }
                        Some(Err(e)) => {
                            tracing::warn!(topic = %name, "reading a state topic: {e}");
                        }
                        None => {}
                    }
                }
            }
        };
        std::thread::Builder::new()
            .name(format!("follow {name}"))
            .spawn(follow)
            .map_err(|e| cluster.topic_error(&name, format!("starting its reader: {e}")))?;

        let mirror = Arc::new(StateMirror {
            topic,
            records,
            end,
            stop,
        });
        mirror.wait_for(high, CATCH_UP_STALL).await?;
        Ok(mirror)
    }

    /// The topic followed.
    pub fn topic(&self) -> &StateTopic {
        &self.topic
    }

    /// The records from offset `from` on, in order.
    pub fn records_from(&self, from: i64) -> Vec<StateRecord> {
        let records = self.records.read();
        let start = records.partition_point(|r| r.offset < from);
        records[start..].to_vec()
    }

    /// The offset after the last record read; changes each time one arrives (from any node).
    pub fn end(&self) -> watch::Receiver<i64> {
        self.end.clone()
    }

    /// Appends one record, durably on the cluster, and returns once this mirror holds it too
    /// (what a node writes, it reads back at once).
    pub async fn append(
        &self,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
    ) -> Result<i64, ClusterError> {
        let offset = self.topic.append(key, value).await?;
        let timeout = Duration::from_millis(self.topic.cluster().config().connect_timeout_ms);
        self.wait_for(offset + 1, timeout).await?;
        Ok(offset)
    }

    /// Waits until the mirror has read every record before `offset`.
    async fn wait_for(&self, offset: i64, stall: Duration) -> Result<(), ClusterError> {
        let mut end = self.end.clone();
        let started = Instant::now();
        let reached = tokio::time::timeout(stall, end.wait_for(|e| *e >= offset)).await;
        match reached {
            Ok(Ok(_)) => Ok(()),
            _ => Err(self.topic.cluster().topic_error(
                self.topic.name(),
                format!(
                    "reading it stalled at offset {} of {offset} for {} ms: check the cluster's \
                     health (scripts/kafka-cluster status, or its brokers' logs)",
                    *self.end.borrow(),
                    started.elapsed().as_millis()
                ),
            )),
        }
    }
}
