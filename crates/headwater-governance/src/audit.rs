//! The node's audit trail: every change, sealed into a hash chain and appended to
//! `_headwater.audit` (see [`headwater_domains::audit`] for the chain itself).
//!
//! An entry is written after its change took effect. If the append fails the change stands and
//! the failure is logged as an error naming it: refusing a change that already happened would
//! not undo it.

use std::future::Future;
use std::ops::ControlFlow;
use std::pin::Pin;
use std::sync::Arc;

use headwater_domains::audit::{
    verify, AuditEntry, Change, Recorder, Stored, Unreadable, Verification, GENESIS,
};
use headwater_domains::AppliedDomains;
use headwater_kafka::{now_ms, AdminChange, InternalTopic, Scanned, StateError};
use headwater_log::Log;
use headwater_pipelines::RunEvent;
use serde_json::Value;
use tokio::sync::mpsc::UnboundedReceiver;

/// The internal topic holding the trail.
pub const AUDIT_TOPIC: &str = "_headwater.audit";

/// Who made a change when no one authenticated: a node without an auth config runs open.
pub const ANONYMOUS: &str = "anonymous";

/// The node's audit trail: its stored entries and the head of its chain.
#[derive(Debug)]
pub struct AuditTrail {
    topic: InternalTopic,
    /// The next entry's sequence number and the hash it follows. Held across the append so
    /// entries are sealed and stored in one order.
    head: tokio::sync::Mutex<(u64, String)>,
}

impl AuditTrail {
    /// Opens the trail, continuing the chain from its newest readable entry.
    pub fn open(log: &Arc<Log>) -> Result<Self, StateError> {
        Self::over(InternalTopic::open(log, AUDIT_TOPIC)?)
    }

    /// Opens the trail kept in `topic` (`_headwater.audit`, on the embedded log or a cluster).
    pub fn over(topic: InternalTopic) -> Result<Self, StateError> {
        let mut head = (0, GENESIS.to_string());
        topic.scan(|read| {
            if let Scanned::Record { value: Some(v), .. } = read {
                if let Ok(e) = serde_json::from_slice::<AuditEntry>(&v) {
                    head = (e.seq + 1, e.hash);
                }
            }
        })?;
        tracing::info!(entries = head.0, "audit trail opened");
        Ok(AuditTrail {
            topic,
            head: tokio::sync::Mutex::new(head),
        })
    }

    /// Appends `change`; a failure is logged, not returned (see the module's doc).
    pub async fn record(&self, change: Change) {
        let what = format!("{} on {}", change.action, change.target);
        if let Err(e) = self.append(change).await {
            tracing::error!(
                "the audit trail could not record {what}: {e}; the change took effect unrecorded"
            );
        }
    }

    async fn append(&self, change: Change) -> Result<AuditEntry, StateError> {
        let mut head = self.head.lock().await;
        let entry = AuditEntry::seal(change, head.0, now_ms(), &head.1);
        self.topic.append_json(None, &entry).await?;
        *head = (entry.seq + 1, entry.hash.clone());
        Ok(entry)
    }

    /// Every stored record in order, read back as an entry or as why it cannot be.
    pub fn stored(&self) -> Result<Vec<Stored>, StateError> {
        let mut out = Vec::new();
        self.read_from(0, |stored| {
            out.push(stored);
            ControlFlow::Continue(())
        })?;
        Ok(out)
    }

    /// Up to `limit` of the records after offset `after` (from the first without it) that
    /// `keep` keeps, in order, and the cursor to pass as `after` for the next page (`None`
    /// once the trail is read to its end). Reads no further than the page needs, so a long
    /// trail is never held in memory whole.
    pub fn page(
        &self,
        after: Option<i64>,
        limit: usize,
        keep: impl Fn(&Stored) -> bool,
    ) -> Result<(Vec<Stored>, Option<i64>), StateError> {
        let mut out = Vec::new();
        let mut next = None;
        self.read_from(after.map_or(0, |a| a.saturating_add(1)), |stored| {
            if out.len() == limit {
                next = out.last().map(|s: &Stored| s.offset);
                return ControlFlow::Break(());
            }
            if keep(&stored) {
                out.push(stored);
            }
            ControlFlow::Continue(())
        })?;
        Ok((out, next))
    }

    /// Reads the records from offset `from` as [`Stored`], until `f` says to stop.
    fn read_from(
        &self,
        from: i64,
        mut f: impl FnMut(Stored) -> ControlFlow<()>,
    ) -> Result<(), StateError> {
        self.topic.scan_from(from, |read| match read {
            Scanned::Record { offset, value, .. } => f(Stored {
                offset,
                entry: value.ok_or(Unreadable::NoValue).and_then(|v| {
                    serde_json::from_slice::<AuditEntry>(&v)
                        .map_err(|e| Unreadable::not_an_entry(&e))
                }),
            }),
            Scanned::Broken { first, last, error } => (first..=last).try_for_each(|offset| {
                f(Stored {
                    offset,
                    entry: Err(Unreadable::BrokenBatch {
                        first,
                        last,
                        reason: error.clone(),
                    }),
                })
            }),
        })
    }

    /// The whole chain checked (see [`headwater_domains::audit::verify`]).
    pub fn verify(&self) -> Result<Verification, StateError> {
        Ok(verify(self.stored()?))
    }
}

impl Recorder for AuditTrail {
    fn record(&self, change: Change) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(AuditTrail::record(self, change))
    }
}

/// Follows every pipeline run in `runs`: a failure is recorded as `pipeline.fail` (each is
/// followed by a restart after its backoff), and every start, completion and failure goes to
/// OpenLineage when it is configured. From a task on the current runtime.
pub fn follow_pipeline_runs(
    audit: &Arc<AuditTrail>,
    mut runs: UnboundedReceiver<RunEvent>,
    openlineage: Option<Arc<crate::OpenLineage>>,
) {
    let Ok(rt) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let audit = audit.clone();
    rt.spawn(async move {
        while let Some(run) = runs.recv().await {
            if let headwater_pipelines::RunEventKind::Fail {
                error,
                attempt,
                retry_in_ms,
            } = &run.kind
            {
                let target = format!("{}.{}", run.domain, run.pipeline);
                let after = serde_json::json!({
                    "error": error,
                    "attempt": attempt,
                    "restart_in_ms": retry_in_ms,
                    "run_id": run.run_id.to_string(),
                });
                let change = Change::new(
                    "node",
                    "pipeline.fail",
                    Some(&run.domain),
                    &target,
                    Value::Null,
                    after,
                );
                audit.record(change).await;
            }
            if let Some(ol) = &openlineage {
                ol.emit(&run).await;
            }
        }
    });
}

/// Records the changes made through Kafka's admin API (`topic.delete`) in `changes`, from a
/// task on the current runtime, as the signed-in principal that made them ([`ANONYMOUS`] on a
/// node without auth).
pub fn record_admin_changes(
    audit: &Arc<AuditTrail>,
    mut changes: UnboundedReceiver<AdminChange>,
    applied: &Arc<AppliedDomains>,
) {
    let Ok(rt) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let (audit, applied) = (audit.clone(), applied.clone());
    rt.spawn(async move {
        while let Some(c) = changes.recv().await {
            let owner = applied.stream(&c.topic).map(|(d, _)| d);
            let change = Change::new(
                c.principal.as_deref().unwrap_or(ANONYMOUS),
                c.action,
                owner.as_deref(),
                &c.topic,
                Value::Null,
                Value::Null,
            );
            audit.record(change).await;
        }
    });
}
