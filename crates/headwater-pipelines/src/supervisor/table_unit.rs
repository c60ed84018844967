//! The life of a pipeline writing a table (`mode: batch`): wait for its schedule or a request,
//! run, and on failure run again after a backoff.

use std::sync::Arc;
use std::time::Duration;

use headwater_domains::PipelineSpec;
use tokio::sync::{mpsc, oneshot};

use super::schedule::next_run;
use super::status::State;
use super::unit::{catching_panics, Reporter};
use crate::engine::Engine;
use crate::output::table::{run_table_pipeline, Progress, RunReport};
use crate::{now_ms, PipelineError};

/// A request to run now (`headwater run`, a rebuild): progress goes to `progress`, the
/// outcome to `done`.
pub(super) struct RunRequest {
    pub(super) progress: Option<mpsc::UnboundedSender<Progress>>,
    pub(super) done: oneshot::Sender<Result<RunReport, PipelineError>>,
}

/// Runs `spec` at its schedule and on request until the unit is dropped (its requests close).
pub(super) async fn run(
    engine: Arc<Engine>,
    spec: PipelineSpec,
    reporter: Reporter,
    mut requests: mpsc::Receiver<RunRequest>,
) {
    let mut attempt = 0u32;
    let mut retry_at: Option<tokio::time::Instant> = None;
    loop {
        let scheduled = next_run(spec.schedule.as_deref(), chrono::Utc::now());
        let wake = match (retry_at, scheduled) {
            (Some(r), _) => Some(r),
            (None, Some(ms)) => Some(
                tokio::time::Instant::now() + Duration::from_millis((ms - now_ms()).max(0) as u64),
            ),
            (None, None) => None,
        };
        let request = match wake {
            Some(at) => tokio::select! {
                r = requests.recv() => match r { Some(r) => Some(r), None => return },
                _ = tokio::time::sleep_until(at) => None,
            },
            None => match requests.recv().await {
                Some(r) => Some(r),
                None => return,
            },
        };
        let (progress_tx, done) = match request {
            Some(r) => (r.progress, Some(r.done)),
            None => (None, None),
        };
        let run_id = uuid::Uuid::new_v4();
        reporter.started(run_id);
        let outcome = run_once(&engine, &spec, &reporter, progress_tx).await;
        match &outcome {
            Ok(report) => {
                attempt = 0;
                retry_at = None;
                {
                    let mut s = reporter.status.lock();
                    s.last_run = Some(report.clone());
                    s.state = State::Waiting {
                        next_run_ms: next_run(spec.schedule.as_deref(), chrono::Utc::now()),
                    };
                }
                tracing::info!(pipeline = %report.pipeline, rows = report.rows, records = report.records, "pipeline run finished");
                reporter.completed(run_id);
            }
            Err(e) => {
                attempt += 1;
                let delay = reporter.failed(run_id, &e.to_string(), attempt);
                retry_at = Some(tokio::time::Instant::now() + delay);
                tracing::warn!(domain = %reporter.domain, pipeline = %reporter.name, attempt, "pipeline run failed, retrying in {delay:?}: {e}");
            }
        }
        if let Some(done) = done {
            let _ = done.send(outcome);
        }
    }
}

/// One run, isolated: an error or a panic inside it becomes this run's error.
async fn run_once(
    engine: &Arc<Engine>,
    spec: &PipelineSpec,
    reporter: &Reporter,
    progress: Option<mpsc::UnboundedSender<Progress>>,
) -> Result<RunReport, PipelineError> {
    let report = {
        let status = reporter.status.clone();
        move |p: Progress| {
            status.lock().state = State::Running {
                progress: p.clone(),
            };
            if let Some(tx) = &progress {
                let _ = tx.send(p);
            }
        }
    };
    reporter.status.lock().busy_since_ms = Some(now_ms());
    let run = run_table_pipeline(engine, &reporter.domain, &reporter.name, spec, &report);
    let outcome = catching_panics(run).await;
    reporter.status.lock().busy_since_ms = None;
    outcome
}
