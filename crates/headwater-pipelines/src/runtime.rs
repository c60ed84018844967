//! The supervisor: every pipeline declared by an applied domain runs as its own unit, on its
//! own thread with its own async runtime. A failed or panicking run is caught and retried with
//! exponential backoff while every other pipeline keeps running; deploying, changing or
//! removing one pipeline never restarts another.
//!
//! Why a thread per pipeline: a pipeline runs code the node does not control (SQL over any
//! data, functions). On the node's shared async workers, one micro-batch that spins on the CPU
//! or blocks in a function would hold a worker that produce, fetch and every other pipeline
//! need; with two cores, two such pipelines would stop the node. On its own thread it holds
//! only itself: the node reports it `stuck` after [`STUCK_AFTER`] and everything else goes on.

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
use crate::features::Feature;
use crate::now_ms;
use crate::sink::StreamSink;
use crate::source::Offsets;
use crate::streaming::{run_stream, Flow, Io};
use crate::view_pipeline::run_view;
use crate::view_store::{ViewFiles, ViewStore};
use crate::windowed::run_windowed;

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
        /// Windowed pipelines: records dropped for arriving after their allowed lateness.
        late_dropped: u64,
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
    /// A micro-batch or run has gone on for longer than [`STUCK_AFTER`]: something in it spins
    /// or blocks. It holds only its own thread.
    Stuck {
        busy_since_ms: i64,
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
    /// When the micro-batch or run in progress started.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub busy_since_ms: Option<i64>,
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
    _thread: Isolated,
}

/// A unit's thread. Dropping it stops the unit at its next await; a thread stuck in code that
/// never yields cannot be stopped and is left behind (it is logged).
struct Isolated {
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for Isolated {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// How long one micro-batch or run may take before the pipeline is reported stuck.
pub const STUCK_AFTER: Duration = Duration::from_secs(30);

/// Runs `work` on a thread of its own: a current-thread runtime for streaming pipelines, a
/// multi-threaded one (for DataFusion's parallel scans) for batch pipelines.
fn isolate(
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

pub struct Runtime {
    engine: Arc<Engine>,
    /// What streaming pipelines read, write and wait on.
    io: Io,
    view_files: ViewFiles,
    units: Mutex<BTreeMap<(String, String), Unit>>,
    /// Served feature views by (domain, view).
    views: Mutex<BTreeMap<(String, String), Arc<ViewStore>>>,
    stuck_after_ms: std::sync::atomic::AtomicU64,
    /// Where runs starting, completing and failing are reported, once someone listens (the
    /// node's audit trail and OpenLineage).
    lifecycle: Lifecycle,
}

/// A pipeline run started, completed or failed. A batch run is one run; a streaming pipeline's
/// run lasts from a (re)start to its failure.
#[derive(Debug, Clone, PartialEq)]
pub struct RunEvent {
    pub domain: String,
    pub pipeline: String,
    pub run_id: uuid::Uuid,
    pub at_ms: i64,
    pub kind: RunEventKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum RunEventKind {
    Start,
    Complete,
    /// It will be restarted after `retry_in_ms`.
    Fail {
        error: String,
        /// Failures in a row, this one included.
        attempt: u32,
        retry_in_ms: u64,
    },
}

type Lifecycle = Arc<std::sync::OnceLock<mpsc::UnboundedSender<RunEvent>>>;

fn report(
    lifecycle: &Lifecycle,
    domain: &str,
    pipeline: &str,
    run_id: uuid::Uuid,
    kind: RunEventKind,
) {
    if let Some(tx) = lifecycle.get() {
        let _ = tx.send(RunEvent {
            domain: domain.to_string(),
            pipeline: pipeline.to_string(),
            run_id,
            at_ms: now_ms(),
            kind,
        });
    }
}

/// A served feature view, for listings.
#[derive(Debug, Clone, Serialize)]
pub struct ViewInfo {
    pub domain: String,
    pub view: String,
    pub pipeline: String,
    pub key: String,
    pub features: Vec<Feature>,
    pub keys: u64,
    pub positions: BTreeMap<String, Offsets>,
    pub updated_ms: Option<i64>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("pipelines", &self.units.lock().len())
            .finish()
    }
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
    /// `data_dir` holds the feature views (`views/<domain>/<view>.redb`).
    pub fn new(
        engine: Arc<Engine>,
        sink: Arc<dyn StreamSink>,
        appended: Arc<tokio::sync::Notify>,
        data_dir: &std::path::Path,
    ) -> Self {
        Runtime {
            io: Io {
                source: engine.source().clone(),
                sink,
                appended,
                functions: engine.functions().clone(),
            },
            engine,
            view_files: ViewFiles::new(data_dir),
            units: Mutex::new(BTreeMap::new()),
            views: Mutex::new(BTreeMap::new()),
            stuck_after_ms: (STUCK_AFTER.as_millis() as u64).into(),
            lifecycle: Default::default(),
        }
    }

    /// Every run's start, completion and failure from now on, as they happen (a failure is
    /// followed by a restart after its backoff). One listener; a second call returns `None`.
    pub fn run_events(&self) -> Option<mpsc::UnboundedReceiver<RunEvent>> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.lifecycle.set(tx).ok().map(|()| rx)
    }

    /// How long a micro-batch or run may take before its pipeline is reported stuck.
    pub fn set_stuck_after(&self, limit: Duration) {
        self.stuck_after_ms.store(
            limit.as_millis() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
    }

    /// Makes `domain`'s running pipelines match `pipelines`: new ones start, changed ones
    /// restart, removed ones stop; unchanged ones and other domains' are not touched.
    pub fn sync_domain(&self, domain: &str, pipelines: &BTreeMap<String, PipelineSpec>) {
        let mut units = self.units.lock();
        units.retain(|(d, n), _| d != domain || pipelines.contains_key(n));
        let served: Vec<String> = pipelines
            .values()
            .filter_map(|p| match p.output.target() {
                Ok(headwater_domains::Output::View { name, .. }) => Some(name.to_string()),
                _ => None,
            })
            .collect();
        self.views
            .lock()
            .retain(|(d, v), _| d != domain || served.contains(v));
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
            busy_since_ms: None,
        }));
        let (tx, rx) = mpsc::channel(16);
        let task = match spec.mode {
            PipelineMode::Batch => isolate(
                format!("{domain}.{name}"),
                true,
                batch_loop(
                    self.engine.clone(),
                    domain.to_string(),
                    name.to_string(),
                    spec.clone(),
                    (status.clone(), self.lifecycle.clone()),
                    rx,
                ),
            ),
            PipelineMode::Streaming => {
                let target = match spec.output.target() {
                    Ok(headwater_domains::Output::View {
                        name: view,
                        key,
                        features,
                    }) => self
                        .view_files
                        .open(domain, view, key, Feature::from_spec(features))
                        .map(|store| {
                            store.fence();
                            let store = Arc::new(store);
                            self.views
                                .lock()
                                .insert((domain.to_string(), view.to_string()), store.clone());
                            Target::View(store)
                        })
                        .map_err(|e| e.to_string()),
                    Ok(_) if spec.window.is_some() => self
                        .view_files
                        .pipeline_state(domain, name)
                        .map(Target::Windowed)
                        .map_err(|e| e.to_string()),
                    Ok(_) => Ok(Target::Stream),
                    Err(e) => Err(e.to_string()),
                };
                match target {
                    Ok(target) => isolate(
                        format!("{domain}.{name}"),
                        false,
                        stream_loop(
                            self.io.clone(),
                            target,
                            domain.to_string(),
                            name.to_string(),
                            spec.clone(),
                            (status.clone(), self.lifecycle.clone()),
                        ),
                    ),
                    Err(reason) => {
                        status.lock().state = State::Stopped { reason };
                        isolate(format!("{domain}.{name}"), false, async {})
                    }
                }
            }
        };
        Unit {
            spec,
            status,
            requests: tx,
            _thread: task,
        }
    }

    pub fn statuses(&self) -> Vec<PipelineStatus> {
        let now = now_ms();
        self.units
            .lock()
            .values()
            .map(|u| {
                let mut s = u.status.lock().clone();
                if let Some(since) = s.busy_since_ms {
                    let busy = Duration::from_millis((now - since).max(0) as u64);
                    let limit = self.stuck_after_ms.load(std::sync::atomic::Ordering::Relaxed);
                    if busy > Duration::from_millis(limit) {
                        s.state = State::Stuck {
                            busy_since_ms: since,
                            reason: format!(
                                "one micro-batch or run has taken {}s: the pipeline's SQL or a function it calls spins or blocks. It runs on its own thread, so nothing else waits for it; fix it and apply the domain again",
                                busy.as_secs()
                            ),
                        };
                    }
                }
                s
            })
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

impl Runtime {
    /// The feature view `<domain>.<view>`, if a pipeline serves it.
    pub fn view(&self, domain: &str, view: &str) -> Option<Arc<ViewStore>> {
        // A scan, not a keyed get: the key would cost two allocations per lookup, and a node
        // serves tens of views, not thousands.
        self.views
            .lock()
            .iter()
            .find(|((d, v), _)| d == domain && v == view)
            .map(|(_, store)| store.clone())
    }

    pub fn views(&self) -> Vec<ViewInfo> {
        let stores: Vec<_> = self
            .views
            .lock()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let units = self.units.lock();
        stores
            .into_iter()
            .map(|((domain, view), store)| {
                let pipeline = units
                    .iter()
                    .find(|((d, _), u)| {
                        *d == domain
                            && matches!(u.spec.output.target(), Ok(headwater_domains::Output::View { name, .. }) if name == view)
                    })
                    .map(|((_, n), _)| n.clone())
                    .unwrap_or_default();
                let checkpoint = store.checkpoint().ok().flatten();
                ViewInfo {
                    pipeline,
                    key: store.key.clone(),
                    features: store.features.clone(),
                    keys: store.keys(),
                    positions: checkpoint
                        .as_ref()
                        .map(|c| c.positions.clone())
                        .unwrap_or_default(),
                    updated_ms: checkpoint.map(|c| c.updated_ms),
                    domain,
                    view,
                }
            })
            .collect()
    }

    /// The pipeline of `domain` called `name`, or writing the table or view `name`.
    fn resolve(&self, domain: &str, name: &str) -> Result<(String, PipelineSpec), String> {
        let units = self.units.lock();
        units
            .iter()
            .filter(|((d, _), _)| d == domain)
            .find(|((_, n), u)| {
                n == name
                    || match u.spec.output.target() {
                        Ok(headwater_domains::Output::Table { name: t, .. }) => t == name,
                        Ok(headwater_domains::Output::View { name: v, .. }) => v == name,
                        _ => false,
                    }
            })
            .map(|((_, n), u)| (n.clone(), u.spec.clone()))
            .ok_or_else(|| {
                format!("'{domain}.{name}' is not a pipeline, table or view of a deployed pipeline; list them with `headwater pipelines`")
            })
    }

    /// Rebuilds a table or view from its inputs: a table's pipeline runs again over the whole
    /// inputs; a view is emptied and its pipeline replays its inputs from the start. Reports
    /// progress and returns once the view has caught up with where the inputs ended when the
    /// rebuild began.
    pub async fn rebuild(
        &self,
        domain: &str,
        name: &str,
        progress: Option<mpsc::UnboundedSender<Progress>>,
    ) -> Result<RunReport, String> {
        let (pipeline, spec) = self.resolve(domain, name)?;
        let view = match spec.output.target() {
            Ok(headwater_domains::Output::Table { .. }) => {
                return self.run(domain, &pipeline, progress).await
            }
            Ok(headwater_domains::Output::View { name, .. }) => name.to_string(),
            _ => {
                return Err(format!(
                    "pipeline '{domain}.{pipeline}' writes a stream, whose events are already published and read by others; it is not rebuilt. Replay to a new stream instead"
                ))
            }
        };
        let started = std::time::Instant::now();
        let source = self.engine.source();
        let end: BTreeMap<String, Offsets> = spec
            .inputs
            .iter()
            .map(|i| (i.clone(), source.end_offsets(i).unwrap_or_default()))
            .collect();
        let start: BTreeMap<String, Offsets> = spec
            .inputs
            .iter()
            .map(|i| (i.clone(), source.start_offsets(i).unwrap_or_default()))
            .collect();
        let start = &start;
        let done_of = |positions: &BTreeMap<String, Offsets>| -> u64 {
            end.iter()
                .flat_map(|(topic, parts)| {
                    parts.iter().map(move |(p, e)| {
                        let from = start
                            .get(topic)
                            .and_then(|s| s.get(p))
                            .copied()
                            .unwrap_or(0);
                        let at = positions
                            .get(topic)
                            .and_then(|x| x.get(p))
                            .copied()
                            .unwrap_or(from);
                        (at.min(*e) - from).max(0) as u64
                    })
                })
                .sum()
        };
        let total = done_of(&end);
        let key = (domain.to_string(), pipeline.clone());
        let status = {
            let mut units = self.units.lock();
            let old = units.remove(&key);
            let store = self
                .view(domain, &view)
                .ok_or_else(|| format!("view '{domain}.{view}' is not open"))?;
            drop(old);
            store.clear().map_err(|e| e.to_string())?;
            let unit = self.start(domain, &pipeline, spec.clone());
            let status = unit.status.clone();
            units.insert(key, unit);
            status
        };
        tracing::info!(domain, view = %view, records = total, "rebuilding view from its inputs");
        let store = self
            .view(domain, &view)
            .ok_or_else(|| format!("view '{domain}.{view}' is not open"))?;
        loop {
            let positions = store
                .checkpoint()
                .map_err(|e| e.to_string())?
                .map(|c| c.positions)
                .unwrap_or_default();
            let records = done_of(&positions);
            if let Some(tx) = &progress {
                let _ = tx.send(Progress::Loading { records, total });
            }
            if records >= total {
                break;
            }
            if let State::BackingOff { error, .. } = &status.lock().state {
                return Err(format!("the rebuild failed: {error}"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(RunReport {
            pipeline: format!("{domain}.{pipeline}"),
            run: uuid::Uuid::new_v4().to_string(),
            table: view,
            rows: store.keys(),
            records: total,
            inputs: end,
            elapsed_ms: started.elapsed().as_millis() as u64,
            finished_at_ms: now_ms(),
        })
    }
}

/// A batch pipeline's life: wait for the schedule or a request, run, and on failure retry with
/// backoff.
async fn batch_loop(
    engine: Arc<Engine>,
    domain: String,
    name: String,
    spec: PipelineSpec,
    (status, lifecycle): (Arc<Mutex<PipelineStatus>>, Lifecycle),
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
        let run_id = uuid::Uuid::new_v4();
        report(&lifecycle, &domain, &name, run_id, RunEventKind::Start);
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
                self::report(&lifecycle, &domain, &name, run_id, RunEventKind::Complete);
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
                report(
                    &lifecycle,
                    &domain,
                    &name,
                    run_id,
                    RunEventKind::Fail {
                        error: e.clone(),
                        attempt,
                        retry_in_ms: delay.as_millis() as u64,
                    },
                );
            }
        }
        drop(s);
        if let Some(done) = done {
            let _ = done.send(outcome);
        }
    }
}

/// Where a streaming pipeline's output goes.
enum Target {
    Stream,
    Windowed(crate::view_store::StateFile),
    View(Arc<ViewStore>),
}

/// A streaming pipeline's life: run from its checkpoint until an error or a panic, then back
/// off and run again; other pipelines are not affected.
async fn stream_loop(
    io: Io,
    target: Target,
    domain: String,
    name: String,
    spec: PipelineSpec,
    (status, lifecycle): (Arc<Mutex<PipelineStatus>>, Lifecycle),
) {
    let mut attempt = 0u32;
    loop {
        status.lock().state = State::Streaming {
            records_in: 0,
            records_out: 0,
            late_dropped: 0,
        };
        let started = tokio::time::Instant::now();
        let run_id = uuid::Uuid::new_v4();
        self::report(&lifecycle, &domain, &name, run_id, RunEventKind::Start);
        let report = {
            let status = status.clone();
            move |f: Flow| {
                let mut s = status.lock();
                s.state = State::Streaming {
                    records_in: f.records_in,
                    records_out: f.records_out,
                    late_dropped: f.late_dropped,
                };
                s.busy_since_ms = f.busy_since_ms;
            }
        };
        let run = async {
            match &target {
                Target::Stream => run_stream(&io, &domain, &name, &spec, &report).await,
                Target::View(store) => run_view(&io, store, &domain, &name, &spec, &report).await,
                Target::Windowed(db) => run_windowed(&io, db, &domain, &name, &spec, &report).await,
            }
        };
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
            s.busy_since_ms = None;
            s.failures += 1;
            s.last_error = Some(error.clone());
            s.state = State::BackingOff {
                error: error.clone(),
                attempt,
                retry_at_ms: now_ms() + delay.as_millis() as i64,
            };
        }
        tracing::warn!(domain = %domain, pipeline = %name, attempt, "pipeline failed, restarting in {delay:?}: {error}");
        self::report(
            &lifecycle,
            &domain,
            &name,
            run_id,
            RunEventKind::Fail {
                error,
                attempt,
                retry_in_ms: delay.as_millis() as u64,
            },
        );
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
    status.lock().busy_since_ms = Some(now_ms());
    let run = run_batch(engine, domain, name, spec, &report);
    let outcome = match std::panic::AssertUnwindSafe(run).catch_unwind().await {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(panic) => Err(format!("the run panicked: {}", panic_text(&panic))),
    };
    status.lock().busy_since_ms = None;
    outcome
}
