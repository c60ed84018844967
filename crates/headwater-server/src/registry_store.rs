//! The registry's state, persisted as events in `_headwater.schemas` and replayed at start.

use std::sync::Arc;

use bytes::Bytes;
use headwater_contracts::registry::{Registry, RegistryError, RegistryEvent};
use headwater_kafka::InternalTopic;
use headwater_log::{Log, LogError};
use parking_lot::RwLock;
use tokio::sync::Mutex;

pub(crate) const SCHEMAS_TOPIC: &str = "_headwater.schemas";

#[derive(Debug)]
pub struct SchemaRegistry {
    state: RwLock<Registry>,
    topic: InternalTopic,
    /// One change at a time: plan against the state, store the event, apply it.
    writer: Mutex<()>,
    /// Subjects of domain streams, by owning domain: only that domain's apply may change them.
    owned: RwLock<std::collections::HashMap<String, String>>,
}

/// A failed change: refused by the rules, or not stored.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    #[error(transparent)]
    Refused(#[from] RegistryError),
    #[error("could not store the change: {0}")]
    Storage(#[from] LogError),
}

impl SchemaRegistry {
    pub fn open(log: &Arc<Log>) -> Result<Self, LogError> {
        let topic = InternalTopic::open(log, SCHEMAS_TOPIC)?;
        let mut registry = Registry::new();
        let mut skipped = 0;
        let count = topic.replay(|_, value| {
            match value.and_then(|v| serde_json::from_slice::<RegistryEvent>(v).ok()) {
                Some(event) => registry.apply(&event),
                None => skipped += 1,
            }
        })?;
        if skipped > 0 {
            tracing::warn!(
                topic = SCHEMAS_TOPIC,
                skipped,
                "skipped unreadable registry events"
            );
        }
        tracing::info!(
            events = count,
            subjects = registry.subjects(false).len(),
            "replayed the schema registry"
        );
        Ok(SchemaRegistry {
            state: RwLock::new(registry),
            topic,
            writer: Mutex::new(()),
            owned: RwLock::new(std::collections::HashMap::new()),
        })
    }

    /// Marks `subject` as belonging to `domain`'s stream.
    pub fn set_owner(&self, subject: &str, domain: &str) {
        self.owned
            .write()
            .insert(subject.to_string(), domain.to_string());
    }

    /// The domain that owns `subject`, if a domain stream does.
    pub fn owner(&self, subject: &str) -> Option<String> {
        self.owned.read().get(subject).cloned()
    }

    /// The current state; hold the guard briefly (never across an await).
    pub fn read(&self) -> parking_lot::RwLockReadGuard<'_, Registry> {
        self.state.read()
    }

    /// Stores and applies an event that needs no check against the state (config, mode).
    pub async fn record(&self, event: RegistryEvent) -> Result<(), ChangeError> {
        self.change(|_| Ok((Some(event), ()))).await
    }

    /// Runs `plan` against the current state; stores and applies the event it returns.
    pub async fn change<T>(
        &self,
        plan: impl FnOnce(&Registry) -> Result<(Option<RegistryEvent>, T), RegistryError>,
    ) -> Result<T, ChangeError> {
        let _one_at_a_time = self.writer.lock().await;
        let (event, out) = plan(&self.state.read())?;
        if let Some(event) = event {
            let value = serde_json::to_vec(&event).map_err(|e| LogError::Io {
                op: "encode registry event",
                path: SCHEMAS_TOPIC.into(),
                source: std::io::Error::other(e),
            })?;
            self.topic
                .append(vec![(None, Some(Bytes::from(value)))])
                .await?;
            self.state.write().apply(&event);
        }
        Ok(out)
    }
}
