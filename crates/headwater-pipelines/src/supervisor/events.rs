//! Runs starting, completing and failing, for whoever listens (the node's audit trail and
//! OpenLineage).

use std::sync::{Arc, OnceLock};

use tokio::sync::mpsc;

/// A pipeline run started, completed or failed. A table pipeline's run is one run; a streaming
/// pipeline's run lasts from a (re)start to its failure.
#[derive(Debug, Clone, PartialEq)]
pub struct RunEvent {
    /// The pipeline's domain.
    pub domain: String,
    /// The pipeline's name in its domain.
    pub pipeline: String,
    /// The run, the same in its start and its end.
    pub run_id: uuid::Uuid,
    /// When, in milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// What happened.
    pub kind: RunEventKind,
}

/// What happened to a run.
#[derive(Debug, Clone, PartialEq)]
pub enum RunEventKind {
    /// It started.
    Start,
    /// It completed.
    Complete,
    /// It failed; it will be restarted after `retry_in_ms`.
    Fail {
        /// Why, as the pipeline's status shows it.
        error: String,
        /// Failures in a row, this one included.
        attempt: u32,
        /// When it runs again.
        retry_in_ms: u64,
    },
}

/// Where run events go once someone listens; shared by every unit of a supervisor.
#[derive(Debug, Clone, Default)]
pub(super) struct Events(Arc<OnceLock<mpsc::UnboundedSender<RunEvent>>>);

impl Events {
    /// Every event from now on; `None` if someone listens already.
    pub(super) fn listen(&self) -> Option<mpsc::UnboundedReceiver<RunEvent>> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.0.set(tx).ok().map(|()| rx)
    }

    /// Reports `kind` of `domain.pipeline`'s run `run_id`, if someone listens.
    pub(super) fn report(
        &self,
        domain: &str,
        pipeline: &str,
        run_id: uuid::Uuid,
        kind: RunEventKind,
    ) {
        if let Some(tx) = self.0.get() {
            let _ = tx.send(RunEvent {
                domain: domain.to_string(),
                pipeline: pipeline.to_string(),
                run_id,
                at_ms: crate::now_ms(),
                kind,
            });
        }
    }
}
