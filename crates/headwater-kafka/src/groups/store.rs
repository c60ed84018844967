//! Committed consumer offsets, kept in the internal topic `_headwater.consumer_offsets`.
//!
//! Each commit appends one record batch: key `[group, topic, partition]` and value
//! `{"offset": .., "metadata": ..}` as JSON, or a null value when a group's offsets are deleted.
//! The topic syncs every append (`headwater.fsync=always`) so an acknowledged commit survives a
//! crash, and it is replayed into memory when the node starts.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use headwater_log::{Log, LogError, Partition};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

pub(crate) const OFFSETS_TOPIC: &str = "_headwater.consumer_offsets";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Committed {
    pub offset: i64,
    pub metadata: Option<String>,
}

type Key = (String, String, i32);
/// Committed offsets by group, then by (topic, partition).
type OffsetsByGroup = HashMap<String, BTreeMap<(String, i32), Committed>>;

#[derive(Debug)]
pub(crate) struct OffsetStore {
    partition: Arc<Partition>,
    offsets: Mutex<OffsetsByGroup>,
}

impl OffsetStore {
    pub fn open(log: &Arc<Log>) -> Result<Self, LogError> {
        let topic = match log.topic(OFFSETS_TOPIC) {
            Some(t) => t,
            None => {
                let mut cfg = BTreeMap::new();
                cfg.insert("headwater.fsync".to_string(), "always".to_string());
                log.create_topic(OFFSETS_TOPIC, 1, cfg)?
            }
        };
        let partition = topic
            .partition(0)
            .ok_or_else(|| LogError::UnknownPartition {
                topic: OFFSETS_TOPIC.to_string(),
                partition: 0,
            })?;
        let store = OffsetStore {
            partition,
            offsets: Mutex::new(HashMap::new()),
        };
        store.replay()?;
        Ok(store)
    }

    fn replay(&self) -> Result<(), LogError> {
        let mut offset = self.partition.start_offset();
        let end = self.partition.end_offset();
        let mut map = self.offsets.lock();
        let mut applied = 0usize;
        while offset < end {
            let data = self.partition.read(offset, 1 << 20)?;
            if data.is_empty() {
                break;
            }
            let mut buf = Bytes::from(data);
            while !buf.is_empty() {
                let set = match RecordBatchDecoder::decode(&mut buf) {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::error!(
                            topic = OFFSETS_TOPIC,
                            offset,
                            "skipping undecodable batch of committed offsets: {e}"
                        );
                        break;
                    }
                };
                for r in set.records {
                    offset = offset.max(r.offset + 1);
                    let Some(key) = r
                        .key
                        .as_ref()
                        .and_then(|k| serde_json::from_slice::<Key>(k).ok())
                    else {
                        continue;
                    };
                    let value = r
                        .value
                        .as_ref()
                        .and_then(|v| serde_json::from_slice::<Committed>(v).ok());
                    apply(&mut map, key, value);
                    applied += 1;
                }
            }
        }
        tracing::info!(
            records = applied,
            groups = map.len(),
            "replayed committed offsets"
        );
        Ok(())
    }

    /// Durably records commits (or, with `None`, deletions), then applies them in memory.
    pub async fn write(&self, entries: Vec<(Key, Option<Committed>)>) -> Result<(), LogError> {
        if entries.is_empty() {
            return Ok(());
        }
        let now = headwater_now_ms();
        let records: Vec<Record> = entries
            .iter()
            .enumerate()
            .map(|(i, (key, value))| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 0,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: i as i64,
                sequence: -1,
                timestamp: now,
                key: serde_json::to_vec(key).ok().map(Bytes::from),
                value: value
                    .as_ref()
                    .and_then(|v| serde_json::to_vec(v).ok())
                    .map(Bytes::from),
                headers: IndexMap::new(),
            })
            .collect();
        let mut buf = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut buf,
            &records,
            &RecordEncodeOptions {
                version: 2,
                compression: Compression::None,
            },
        )
        .map_err(|e| LogError::Io {
            op: "encode committed offsets",
            path: OFFSETS_TOPIC.into(),
            source: std::io::Error::other(e.to_string()),
        })?;
        let out = self.partition.append(&buf)?;
        self.partition.wait_durable(out.last_offset + 1).await?;
        let mut map = self.offsets.lock();
        for (key, value) in entries {
            apply(&mut map, key, value);
        }
        Ok(())
    }

    pub fn get(&self, group: &str, topic: &str, partition: i32) -> Option<Committed> {
        self.offsets
            .lock()
            .get(group)
            .and_then(|g| g.get(&(topic.to_string(), partition)).cloned())
    }

    /// Every committed offset of a group.
    pub fn group(&self, group: &str) -> BTreeMap<(String, i32), Committed> {
        self.offsets.lock().get(group).cloned().unwrap_or_default()
    }

    pub fn groups(&self) -> Vec<String> {
        self.offsets.lock().keys().cloned().collect()
    }
}

fn apply(map: &mut OffsetsByGroup, (group, topic, partition): Key, value: Option<Committed>) {
    match value {
        Some(c) => {
            map.entry(group).or_default().insert((topic, partition), c);
        }
        None => {
            if let Some(g) = map.get_mut(&group) {
                g.remove(&(topic, partition));
                if g.is_empty() {
                    map.remove(&group);
                }
            }
        }
    }
}

fn headwater_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
