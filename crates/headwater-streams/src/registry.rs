//! The schema registry's store: its state, persisted as events in `_headwater.schemas` and
//! replayed at start. Every stored change is also recorded in the node's audit trail.

use std::sync::Arc;

use headwater_contracts::registry::{Registry, RegistryError, RegistryEvent};
use headwater_domains::audit::{Change, Recorder};
use headwater_kafka::{InternalTopic, StateError};
use headwater_log::Log;
use parking_lot::RwLock;
use tokio::sync::Mutex;

/// The internal topic holding the registry's events.
pub const SCHEMAS_TOPIC: &str = "_headwater.schemas";

/// The registry's state and where its changes are stored and recorded.
#[derive(Debug)]
pub struct SchemaRegistry {
    state: RwLock<Registry>,
    topic: InternalTopic,
    /// One change at a time: plan against the state, store the event, apply it.
    writer: Mutex<()>,
    /// Subjects of domain streams, by owning domain: only that domain's apply may change them.
    owned: RwLock<std::collections::HashMap<String, String>>,
    /// Where every stored change is also recorded.
    recorder: Arc<dyn Recorder>,
}

/// A failed change: refused by the rules, or not stored.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    /// The registry's rules refuse the change (an incompatible schema, an unknown subject,
    /// ...): the caller's to fix. Nothing changed.
    #[error(transparent)]
    Refused(#[from] RegistryError),
    /// The event could not be appended to `_headwater.schemas`: a fault of the node. Nothing
    /// changed.
    #[error("could not store the change: {0}")]
    Storage(#[from] StateError),
}

impl SchemaRegistry {
    /// Replays `_headwater.schemas` from `log`; every change stored from now on is recorded
    /// with `recorder`.
    pub fn open(log: &Arc<Log>, recorder: Arc<dyn Recorder>) -> Result<Self, StateError> {
        Self::over(InternalTopic::open(log, SCHEMAS_TOPIC)?, recorder)
    }

    /// Replays `topic` (`_headwater.schemas` wherever it is kept: the embedded log or a
    /// cluster); every change stored from now on is recorded with `recorder`.
    pub fn over(topic: InternalTopic, recorder: Arc<dyn Recorder>) -> Result<Self, StateError> {
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
            recorder,
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

    /// Stores and applies an event that needs no check against the state (config, mode), on
    /// behalf of `principal` (as the audit trail names it).
    pub async fn record(&self, principal: &str, event: RegistryEvent) -> Result<(), ChangeError> {
        self.change(principal, |_| Ok((Some(event), ()))).await
    }

    /// Runs `plan` against the current state; stores and applies the event it returns, on
    /// behalf of `principal` (as the audit trail names it).
    pub async fn change<T>(
        &self,
        principal: &str,
        plan: impl FnOnce(&Registry) -> Result<(Option<RegistryEvent>, T), RegistryError>,
    ) -> Result<T, ChangeError> {
        let _one_at_a_time = self.writer.lock().await;
        let (event, out) = plan(&self.state.read())?;
        if let Some(event) = event {
            self.topic.append_json(None, &event).await?;
            self.state.write().apply(&event);
            self.recorder.record(self.audited(principal, &event)).await;
        }
        Ok(out)
    }

    /// The audit entry of a stored registry event: a new version's schema, what was deleted,
    /// or the setting changed.
    fn audited(&self, principal: &str, event: &RegistryEvent) -> Change {
        let (action, subject) = match event {
            RegistryEvent::Registered { subject, .. } => ("schema.register", Some(subject)),
            RegistryEvent::VersionDeleted { subject, .. } => {
                ("schema.delete_version", Some(subject))
            }
            RegistryEvent::SubjectDeleted { subject, .. } => {
                ("schema.delete_subject", Some(subject))
            }
            RegistryEvent::ConfigSet { subject, .. } => ("schema.config", subject.as_ref()),
            RegistryEvent::ModeSet { subject, .. } => ("schema.mode", subject.as_ref()),
        };
        let domain = subject.and_then(|s| self.owner(s));
        Change::new(
            principal,
            action,
            domain.as_deref(),
            subject.map_or("(global)", String::as_str),
            serde_json::Value::Null,
            serde_json::to_value(event).unwrap_or_default(),
        )
    }
}
