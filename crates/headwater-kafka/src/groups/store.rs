//! Committed consumer offsets, kept in the internal topic `_headwater.consumer_offsets`.
//!
//! Each commit appends one record batch: key `[group, topic, partition]` and value
//! `{"offset": .., "metadata": ..}` as JSON, or a null value when a group's offsets are deleted.
//! The topic syncs every append (`headwater.fsync=always`) so an acknowledged commit survives a
//! crash, and it is replayed into memory when the node starts.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use bytes::Bytes;
use headwater_log::Log;
use parking_lot::Mutex;

use crate::{InternalTopic, StateError};
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
    topic: InternalTopic,
    offsets: Mutex<OffsetsByGroup>,
}

impl OffsetStore {
    pub(crate) fn open(log: &Arc<Log>) -> Result<Self, StateError> {
        let store = OffsetStore {
            topic: InternalTopic::open(log, OFFSETS_TOPIC)?,
            offsets: Mutex::new(HashMap::new()),
        };
        let mut map = store.offsets.lock();
        let applied = store.topic.replay(|key, value| {
            let Some(key) = key.and_then(|k| serde_json::from_slice::<Key>(k).ok()) else {
                return;
            };
            let value = value.and_then(|v| serde_json::from_slice::<Committed>(v).ok());
            apply(&mut map, key, value);
        })?;
        tracing::info!(
            records = applied,
            groups = map.len(),
            "replayed committed offsets"
        );
        drop(map);
        Ok(store)
    }

    /// Durably records commits (or, with `None`, deletions), then applies them in memory.
    pub(crate) async fn write(
        &self,
        entries: Vec<(Key, Option<Committed>)>,
    ) -> Result<(), StateError> {
        let records = entries
            .iter()
            .map(|(key, value)| {
                (
                    serde_json::to_vec(key).ok().map(Bytes::from),
                    value
                        .as_ref()
                        .and_then(|v| serde_json::to_vec(v).ok())
                        .map(Bytes::from),
                )
            })
            .collect();
        self.topic.append(records).await?;
        let mut map = self.offsets.lock();
        for (key, value) in entries {
            apply(&mut map, key, value);
        }
        Ok(())
    }

    pub(crate) fn get(&self, group: &str, topic: &str, partition: i32) -> Option<Committed> {
        self.offsets
            .lock()
            .get(group)
            .and_then(|g| g.get(&(topic.to_string(), partition)).cloned())
    }

    /// Every committed offset of a group.
    pub(crate) fn group(&self, group: &str) -> BTreeMap<(String, i32), Committed> {
        self.offsets.lock().get(group).cloned().unwrap_or_default()
    }

    pub(crate) fn groups(&self) -> Vec<String> {
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
