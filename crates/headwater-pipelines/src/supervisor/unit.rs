//! One deployed pipeline: a unit on a thread of its own, and what its life reports.
//!
//! Why a thread per pipeline: a pipeline runs code the node does not control (SQL over any
//! data, functions). On the node's shared async workers, one micro-batch that spins on the CPU
//! or blocks in a function would hold a worker that produce, fetch and every other pipeline
//! need; with two cores, two such pipelines would stop the node. On its own thread it holds
//! only itself: the node reports it `stuck` after [`super::STUCK_AFTER`] and everything else
//! goes on.

use std::sync::Arc;
use std::time::Duration;

use futures_lite::FutureExt as _;
use headwater_domains::PipelineSpec;
use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot};

use super::events::{Events, RunEventKind};
use super::schedule::backoff;
use super::status::{PipelineStatus, State};
use super::table_unit::RunRequest;
use crate::PipelineError;

/// A running pipeline, as the supervisor holds it.
pub(super) struct Unit {
    /// What it was deployed from: a different spec means a redeploy.
    pub(super) spec: PipelineSpec,
    pub(super) status: Arc<Mutex<PipelineStatus>>,
    /// Requests to run now (pipelines writing a table; nothing reads them otherwise).
    pub(super) requests: mpsc::Sender<RunRequest>,
    pub(super) _thread: Isolated,
}

/// A unit's thread. Dropping it stops the unit at its next await; a thread stuck in code that
/// never yields cannot be stopped and is left behind (it is logged).
pub(super) struct Isolated {
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for Isolated {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Runs `work` on a thread of its own: a current-thread runtime for streaming pipelines, a
/// multi-threaded one (for DataFusion's parallel scans) for pipelines writing a table.
pub(super) fn isolate(
    name: String,
    parallel: bool,
    work: impl std::future::Future<Output = ()> + Send + 'static,
) -> Isolated {
    let (stop, stopped) = oneshot::channel::<()>();
    let spawned = std::thread::Builder::new()
        .name(format!("pipeline {name}"))
        .spawn(move || {
            let runtime = if parallel {
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(std::thread::available_parallelism().map_or(2, |n| n.get()))
                    .thread_name(format!("pipeline {name}"))
                    .enable_all()
                    .build()
            } else {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
            };
            match runtime {
                Ok(rt) => rt.block_on(async move {
                    tokio::select! {
                        _ = work => {}
                        _ = stopped => {}
                    }
                }),
                Err(e) => {
                    tracing::error!(pipeline = %name, "cannot start the pipeline's runtime: {e}")
                }
            }
        });
    if let Err(e) = spawned {
        tracing::error!("cannot start a pipeline thread: {e}");
    }
    Isolated { stop: Some(stop) }
}

/// Runs `work`; a panic inside it becomes its error, so one pipeline's panic fails only its
/// own run.
pub(super) async fn catching_panics<T>(
    work: impl std::future::Future<Output = Result<T, PipelineError>>,
) -> Result<T, PipelineError> {
    match std::panic::AssertUnwindSafe(work).catch_unwind().await {
        Ok(result) => result,
        Err(panic) => Err(PipelineError::Panicked {
            message: panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".into()),
        }),
    }
}

/// What a unit's life reports: its status, and its runs' events.
#[derive(Debug, Clone)]
pub(super) struct Reporter {
    pub(super) domain: String,
    pub(super) name: String,
    pub(super) status: Arc<Mutex<PipelineStatus>>,
    pub(super) events: Events,
}

impl Reporter {
    /// Reports run `run_id` starting.
    pub(super) fn started(&self, run_id: uuid::Uuid) {
        self.event(run_id, RunEventKind::Start);
    }

    /// Reports run `run_id` completing.
    pub(super) fn completed(&self, run_id: uuid::Uuid) {
        self.event(run_id, RunEventKind::Complete);
    }

    /// Records run `run_id` failing for the `attempt`th time in a row: the status backs off,
    /// counts the failure and keeps its text. Returns how long to wait before running again.
    pub(super) fn failed(&self, run_id: uuid::Uuid, error: &str, attempt: u32) -> Duration {
        let delay = backoff(attempt);
        {
            let mut s = self.status.lock();
            s.busy_since_ms = None;
            s.failures += 1;
            s.last_error = Some(error.to_string());
            s.state = State::BackingOff {
                error: error.to_string(),
                attempt,
                retry_at_ms: crate::now_ms() + delay.as_millis() as i64,
            };
        }
        self.event(
            run_id,
            RunEventKind::Fail {
                error: error.to_string(),
                attempt,
                retry_in_ms: delay.as_millis() as u64,
            },
        );
        delay
    }

    fn event(&self, run_id: uuid::Uuid, kind: RunEventKind) {
        self.events.report(&self.domain, &self.name, run_id, kind);
    }
}
