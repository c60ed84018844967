//! The supervisor: every pipeline declared by an applied domain runs as its own task. A failed
//! or panicking run is caught and retried with exponential backoff while every other pipeline
//! keeps running; deploying, changing or removing one pipeline never restarts another.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use futures_lite::FutureExt as _;
use headwater_domains::{PipelineMode, PipelineSpec};
use parking_lot::Mutex;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

use crate::batch::{run_batch, Progress, RunReport};
use crate::engine::Engine;
use crate::sink::StreamSink;
use crate::source::StreamSource;
use crate::streaming::{run_stream, Flow};

/// What a pipeline is doing now.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum State {
    /// Waiting for its schedule (`next_run_ms`) or a `headwater run`.
    Waiting {
        next_run_ms: Option<i64>,
    },
    Running {
        progress: Progress,
    },
    /// A streaming pipeline processing records as they arrive.
    Streaming {
        records_in: u64,
        records_out: u64,
    },
    /// The last run failed; it is retried at `retry_at_ms`.
    BackingOff {
        error: String,
        attempt: u32,
        retry_at_ms: i64,
    },
    Stopped {
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PipelineStatus {
    pub domain: String,
    pub name: String,
    pub mode: PipelineMode,
    #[serde(flatten)]
    pub state: State,
    pub last_run: Option<RunReport>,
    pub last_error: Option<String>,
    /// Failed runs since the pipeline was deployed.
    pub failures: u64,
    /// When the pipeline's task started: unchanged while other pipelines come and go.
    pub deployed_at_ms: i64,
}

type Reply = oneshot::Sender<Result<RunReport, String>>;

struct RunRequest {
    progress: Option<mpsc::UnboundedSender<Progress>>,
    done: Reply,
}

struct Unit {
    spec: PipelineSpec,
    status: Arc<Mutex<PipelineStatus>>,
    requests: mpsc::Sender<RunRequest>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Unit {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub struct Runtime {
    engine: Arc<Engine>,
    /// Where streaming pipelines write and keep their checkpoint.
    sink: Arc<dyn StreamSink>,
    /// Woken on every append to the log: streaming pipelines wait on it.
    appended: Arc<tokio::sync::Notify>,
    units: Mutex<BTreeMap<(String, String), Unit>>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("pipelines", &self.units.lock().len())
            .finish()
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The next time `schedule` fires after now, in ms since the epoch.
fn next_run(schedule: Option<&str>) -> Option<i64> {
    let cron = croner::Cron::from_str(schedule?).ok()?;
    cron.find_next_occurrence(&chrono::Utc::now(), false)
        .ok()
        .map(|t| t.timestamp_millis())
}

/// Retry delay after `attempt` consecutive failures: 1 s, 2 s, 4 s ... at most 5 minutes.
fn backoff(attempt: u32) -> Duration {
    Duration::from_secs(1u64 << attempt.min(8)).min(Duration::from_secs(300))
}

impl Runtime {
    pub fn new(
        engine: Arc<Engine>,
        sink: Arc<dyn StreamSink>,
        appended: Arc<tokio::sync::Notify>,
    ) -> Self {
        Runtime {
            engine,
            sink,
            appended,
            units: Mutex::new(BTreeMap::new()),
        }
    }

    /// Makes `domain`'s running pipelines match `pipelines`: new ones start, changed ones
    /// restart, removed ones stop; unchanged ones and other domains' are not touched.
    pub fn sync_domain(&self, domain: &str, pipelines: &BTreeMap<String, PipelineSpec>) {
        let mut units = self.units.lock();
        units.retain(|(d, n), _| d != domain || pipelines.contains_key(n));
        for (name, spec) in pipelines {
            let key = (domain.to_string(), name.clone());
            if units.get(&key).is_some_and(|u| u.spec == *spec) {
                continue;
            }
            let unit = self.start(domain, name, spec.clone());
            tracing::info!(domain, pipeline = %name, "pipeline deployed");
            units.insert(key, unit);
        }
    }

    fn start(&self, domain: &str, name: &str, spec: PipelineSpec) -> Unit {
        let status = Arc::new(Mutex::new(PipelineStatus {
            domain: domain.to_string(),
            name: name.to_string(),
            mode: spec.mode,
            state: State::Waiting {
                next_run_ms: next_run(spec.schedule.as_deref()),
            },
            last_run: None,
            last_error: None,
            failures: 0,
            deployed_at_ms: now_ms(),
        }));
        let (tx, rx) = mpsc::channel(16);
        let task = match spec.mode {
            PipelineMode::Batch => tokio::spawn(batch_loop(
                self.engine.clone(),
                domain.to_string(),
                name.to_string(),
                spec.clone(),
                status.clone(),
                rx,
            )),
            PipelineMode::Streaming => match spec.output.target() {
                Ok(headwater_domains::Output::Stream(_)) => tokio::spawn(stream_loop(
                    self.engine.source().clone(),
                    self.sink.clone(),
                    self.appended.clone(),
                    domain.to_string(),
                    name.to_string(),
                    spec.clone(),
                    status.clone(),
                )),
                _ => {
                    status.lock().state = State::Stopped {
                        reason: "feature views are not served by this version yet".into(),
                    };
                    tokio::spawn(async {})
                }
            },
        };
        Unit {
            spec,
            status,
            requests: tx,
            task,
        }
    }

    pub fn statuses(&self) -> Vec<PipelineStatus> {
        self.units
            .lock()
            .values()
            .map(|u| u.status.lock().clone())
            .collect()
    }

    /// Runs a batch pipeline now (`headwater run`), reporting progress; waits for the result.
    pub async fn run(
        &self,
        domain: &str,
        name: &str,
        progress: Option<mpsc::UnboundedSender<Progress>>,
    ) -> Result<RunReport, String> {
        let requests = {
            let units = self.units.lock();
            let unit = units
                .get(&(domain.to_string(), name.to_string()))
                .ok_or_else(|| {
                    format!("pipeline '{domain}.{name}' is not deployed; declare it in {domain}'s manifest and `headwater apply`")
                })?;
            if unit.spec.mode != PipelineMode::Batch {
                return Err(format!(
                    "pipeline '{domain}.{name}' is a streaming pipeline; it runs continuously"
                ));
            }
            unit.requests.clone()
        };
        let (done, wait) = oneshot::channel();
        requests
            .send(RunRequest { progress, done })
            .await
            .map_err(|_| format!("pipeline '{domain}.{name}' was removed"))?;
        wait.await
            .map_err(|_| format!("pipeline '{domain}.{name}' was redeployed during the run"))?
    }
}

/// A batch pipeline's life: wait for the schedule or a request, run, and on failure retry with
/// backoff.
async fn batch_loop(
    engine: Arc<Engine>,
    domain: String,
    name: String,
    spec: PipelineSpec,
    status: Arc<Mutex<PipelineStatus>>,
    mut requests: mpsc::Receiver<RunRequest>,
) {
    let mut attempt = 0u32;
    let mut retry_at: Option<tokio::time::Instant> = None;
    loop {
        let scheduled = next_run(spec.schedule.as_deref());
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
        let outcome = run_once(&engine, &domain, &name, &spec, &status, progress_tx).await;
        let mut s = status.lock();
        match &outcome {
            Ok(report) => {
                attempt = 0;
                retry_at = None;
                s.last_run = Some(report.clone());
                s.state = State::Waiting {
                    next_run_ms: next_run(spec.schedule.as_deref()),
                };
                tracing::info!(pipeline = %report.pipeline, rows = report.rows, records = report.records, "pipeline run finished");
            }
            Err(e) => {
                attempt += 1;
                s.failures += 1;
                s.last_error = Some(e.clone());
                let delay = backoff(attempt);
                retry_at = Some(tokio::time::Instant::now() + delay);
                s.state = State::BackingOff {
                    error: e.clone(),
                    attempt,
                    retry_at_ms: now_ms() + delay.as_millis() as i64,
                };
                tracing::warn!(domain = %domain, pipeline = %name, attempt, "pipeline run failed, retrying in {delay:?}: {e}");
            }
        }
        drop(s);
        if let Some(done) = done {
            let _ = done.send(outcome);
        }
    }
}

/// A streaming pipeline's life: run from its checkpoint until an error or a panic, then back
/// off and run again; other pipelines are not affected.
async fn stream_loop(
    source: Arc<dyn StreamSource>,
    sink: Arc<dyn StreamSink>,
    appended: Arc<tokio::sync::Notify>,
    domain: String,
    name: String,
    spec: PipelineSpec,
    status: Arc<Mutex<PipelineStatus>>,
) {
    let mut attempt = 0u32;
    loop {
        status.lock().state = State::Streaming {
            records_in: 0,
            records_out: 0,
        };
        let started = tokio::time::Instant::now();
        let report = {
            let status = status.clone();
            move |f: Flow| {
                status.lock().state = State::Streaming {
                    records_in: f.records_in,
                    records_out: f.records_out,
                };
            }
        };
        let run = run_stream(&source, &sink, &domain, &name, &spec, &appended, &report);
        let error = match std::panic::AssertUnwindSafe(run).catch_unwind().await {
            Ok(Ok(())) => "the pipeline stopped".to_string(),
            Ok(Err(e)) => e,
            Err(panic) => format!("the pipeline panicked: {}", panic_text(&panic)),
        };
        // A long healthy run starts the backoff over.
        if started.elapsed() > Duration::from_secs(60) {
            attempt = 0;
        }
        attempt += 1;
        let delay = backoff(attempt);
        {
            let mut s = status.lock();
            s.failures += 1;
            s.last_error = Some(error.clone());
            s.state = State::BackingOff {
                error: error.clone(),
                attempt,
                retry_at_ms: now_ms() + delay.as_millis() as i64,
            };
        }
        tracing::warn!(domain = %domain, pipeline = %name, attempt, "pipeline failed, restarting in {delay:?}: {error}");
        tokio::time::sleep(delay).await;
    }
}

fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown panic".into())
}

/// One run, isolated: an error or a panic inside it becomes this run's error.
async fn run_once(
    engine: &Arc<Engine>,
    domain: &str,
    name: &str,
    spec: &PipelineSpec,
    status: &Arc<Mutex<PipelineStatus>>,
    progress: Option<mpsc::UnboundedSender<Progress>>,
) -> Result<RunReport, String> {
    let report = {
        let status = status.clone();
        move |p: Progress| {
            status.lock().state = State::Running {
                progress: p.clone(),
            };
            if let Some(tx) = &progress {
                let _ = tx.send(p);
            }
        }
    };
    let run = run_batch(engine, domain, name, spec, &report);
    match std::panic::AssertUnwindSafe(run).catch_unwind().await {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(panic) => Err(format!("the run panicked: {}", panic_text(&panic))),
    }
}
