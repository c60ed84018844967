//! Internal topics (`_headwater.*`): Headwater's own state kept as records, so the embedded
//! mode and a Kafka cluster keep state the same way.
//!
//! Each is one partition. On the embedded log it is synced on every append
//! (`headwater.fsync=always`); on a cluster it is replicated as the cluster replicates and
//! written with acks=all (`headwater_cluster::StateTopic`). Either way an acknowledged change
//! survives a crash, and its owner replays it whole at start.

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::sync::Arc;

use bytes::Bytes;
use headwater_cluster::{Cluster, ClusterError, StateMirror, StateTopic};
use headwater_log::batch::{self, plain_batch};
use headwater_log::{now_ms, Log, LogError, Partition};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::records::RecordBatchDecoder;

/// One thing [`InternalTopic::scan`] read.
#[derive(Debug)]
pub enum Scanned {
    /// One record, in offset order.
    Record {
        /// Its offset.
        offset: i64,
        /// Its key.
        key: Option<Bytes>,
        /// Its value.
        value: Option<Bytes>,
    },
    /// A batch covering offsets `first..=last` that does not decode.
    Broken {
        /// First offset of the batch.
        first: i64,
        /// Last offset of the batch.
        last: i64,
        /// The codec's message.
        error: String,
    },
}

/// Why an internal topic could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// On the embedded log.
    #[error(transparent)]
    Log(#[from] LogError),
    /// On the Kafka cluster.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
}

/// One internal topic: its single partition, read whole at start and appended to durably.
#[derive(Debug, Clone)]
pub struct InternalTopic {
    name: &'static str,
    backing: Backing,
}

#[derive(Debug, Clone)]
enum Backing {
    /// A partition of the embedded log.
    Log(Arc<Partition>),
    /// A topic on the cluster, followed in memory (and so updated by every node's appends).
    Cluster(Arc<StateMirror>),
}

impl InternalTopic {
    /// Opens the topic, creating it on first use.
    pub fn open(log: &Arc<Log>, name: &'static str) -> Result<Self, LogError> {
        let topic = match log.topic(name) {
            Some(t) => t,
            None => {
                let mut cfg = BTreeMap::new();
                cfg.insert("headwater.fsync".to_string(), "always".to_string());
                cfg.insert("retention.ms".to_string(), "-1".to_string());
                log.create_topic(name, 1, cfg)?
            }
        };
        let partition = topic
            .partition(0)
            .ok_or_else(|| LogError::UnknownPartition {
                topic: name.to_string(),
                partition: 0,
            })?;
        Ok(InternalTopic {
            name,
            backing: Backing::Log(partition),
        })
    }

    /// Opens the topic on a Kafka cluster, creating it on first use, and reads it whole.
    pub async fn on_cluster(
        cluster: &Arc<Cluster>,
        name: &'static str,
    ) -> Result<Self, StateError> {
        let mirror = StateTopic::open(cluster, name).await?.follow().await?;
        Ok(InternalTopic {
            name,
            backing: Backing::Cluster(mirror),
        })
    }

    /// Calls `apply(key, value)` for every record in order; returns how many there were. A
    /// batch that does not decode is logged and skipped.
    pub fn replay(
        &self,
        mut apply: impl FnMut(Option<&Bytes>, Option<&Bytes>),
    ) -> Result<usize, StateError> {
        let mut count = 0;
        self.scan(|read| match read {
            Scanned::Record { key, value, .. } => {
                apply(key.as_ref(), value.as_ref());
                count += 1;
            }
            Scanned::Broken { first, last, error } => tracing::error!(
                topic = self.name,
                first,
                last,
                "skipping an undecodable batch: {error}"
            ),
        })?;
        Ok(count)
    }

    /// Reads every record in order, with its offset; a batch that does not decode (its CRC
    /// fails, say) is reported with the offsets it covers and reading goes on after it.
    pub fn scan(&self, mut f: impl FnMut(Scanned)) -> Result<(), StateError> {
        self.scan_from(0, |read| {
            f(read);
            ControlFlow::Continue(())
        })
    }

    /// Reads the records from offset `from` on, as [`InternalTopic::scan`] does, until `f`
    /// says to stop.
    pub fn scan_from(
        &self,
        from: i64,
        mut f: impl FnMut(Scanned) -> ControlFlow<()>,
    ) -> Result<(), StateError> {
        match &self.backing {
            Backing::Log(partition) => Ok(scan_partition(partition, from, f)?),
            Backing::Cluster(mirror) => {
                for r in mirror.records_from(from) {
                    let read = Scanned::Record {
                        offset: r.offset,
                        key: r.key,
                        value: r.value,
                    };
                    if f(read).is_break() {
                        break;
                    }
                }
                Ok(())
            }
        }
    }

    /// Appends `value` as JSON (keyed by `key`, for a compacted state) and waits until it is on
    /// disk: how Headwater's own state is written.
    pub async fn append_json(
        &self,
        key: Option<&str>,
        value: &impl serde::Serialize,
    ) -> Result<(), StateError> {
        let bytes = serde_json::to_vec(value).map_err(|e| LogError::Io {
            op: "encode a record of",
            path: self.name.into(),
            source: std::io::Error::other(e),
        })?;
        let key = key.map(|k| Bytes::from(k.to_string()));
        self.append(vec![(key, Some(Bytes::from(bytes)))]).await
    }

    /// Appends records (key, value) as one batch and waits until they are on disk.
    pub async fn append(
        &self,
        records: Vec<(Option<Bytes>, Option<Bytes>)>,
    ) -> Result<(), StateError> {
        if records.is_empty() {
            return Ok(());
        }
        let partition = match &self.backing {
            Backing::Log(partition) => partition,
            Backing::Cluster(mirror) => {
                // One record at a time, in order. Not atomic as one embedded batch is: every
                // caller on a cluster appends a single record (one change, one audit entry).
                for (key, value) in records {
                    mirror.append(key.as_deref(), value.as_deref()).await?;
                }
                return Ok(());
            }
        };
        let records = records
            .into_iter()
            .map(|(key, value)| (key, value, IndexMap::new()))
            .collect();
        let buf = plain_batch(records, now_ms()).map_err(|e| LogError::Io {
            op: "encode internal records",
            path: self.name.into(),
            source: std::io::Error::other(e),
        })?;
        let out = partition.append(&buf)?;
        Ok(partition.wait_durable(out.last_offset + 1).await?)
    }
}

/// Reads a partition of the embedded log from `from` on, batch by batch.
fn scan_partition(
    partition: &Partition,
    from: i64,
    mut f: impl FnMut(Scanned) -> ControlFlow<()>,
) -> Result<(), LogError> {
    let mut offset = from.max(partition.start_offset());
    let end = partition.end_offset();
    while offset < end {
        let data = partition.read(offset, 1 << 20)?;
        if data.is_empty() {
            break;
        }
        let before = offset;
        let mut buf = Bytes::from(data);
        while let Some(size) = batch::whole_batch_len(&buf) {
            let mut bytes = buf.split_to(size);
            // A whole batch has its header, so its span is always there.
            let Some(span) = batch::span(&bytes) else {
                break;
            };
            match RecordBatchDecoder::decode(&mut bytes) {
                Ok(set) => {
                    for r in set.records {
                        if r.offset < offset {
                            continue;
                        }
                        let read = Scanned::Record {
                            offset: r.offset,
                            key: r.key,
                            value: r.value,
                        };
                        if f(read).is_break() {
                            return Ok(());
                        }
                    }
                }
                Err(e) => {
                    let read = Scanned::Broken {
                        first: span.base_offset,
                        last: span.last_offset(),
                        error: e.to_string(),
                    };
                    if f(read).is_break() {
                        return Ok(());
                    }
                }
            }
            offset = offset.max(span.next_offset());
        }
        if offset == before {
            // Nothing whole came back: the rest is not readable as batches.
            break;
        }
    }
    Ok(())
}
