//! The supervisor: every pipeline declared by an applied domain runs as its own unit, on its
//! own thread with its own async runtime (see [`mod@unit`] for why). A failed or panicking run is
//! caught and retried with exponential backoff while every other pipeline keeps running;
//! deploying, changing or removing one pipeline never restarts another.
//!
//! - [`mod@unit`]: a unit's thread and what its life reports;
//! - [`mod@table_unit`], [`mod@stream_unit`]: the life of a pipeline writing a table, and of a
//!   streaming one;
//! - [`schedule`]: when a unit runs next (cron, backoff);
//! - [`status`]: what each pipeline is doing, and when it counts as stuck;
//! - [`events`]: runs starting, completing and failing, for the audit trail and OpenLineage;
//! - [`rebuild`]: rebuilding a table or a view from its inputs.

mod events;
mod rebuild;
mod schedule;
mod status;
mod stream_unit;
mod table_unit;
mod unit;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use headwater_domains::{Output, PipelineMode, PipelineSpec};
use parking_lot::Mutex;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

pub use events::{RunEvent, RunEventKind};
pub use status::{PipelineStatus, State, STUCK_AFTER};

use crate::engine::Engine;
use crate::features::Feature;
use crate::micro_batch::StreamContext;
use crate::output::table::{Progress, RunReport};
use crate::sink::StreamSink;
use crate::source::Offsets;
use crate::state_files::StateFiles;
use crate::view_store::ViewStore;
use crate::{now_ms, PipelineError};
use events::Events;
use schedule::next_run;
use stream_unit::Target;
use table_unit::RunRequest;
use unit::{isolate, Reporter, Unit};

/// Runs every deployed pipeline as an isolated, restartable unit, and serves their feature
/// views. The entry point of a node's pipelines: [`Supervisor::sync_domain`] when a domain is
/// applied.
pub struct Supervisor {
    engine: Arc<Engine>,
    /// What streaming pipelines read, write and wait on.
    streams: StreamContext,
    state_files: StateFiles,
    units: Mutex<BTreeMap<(String, String), Unit>>,
    /// Served feature views by (domain, view).
    views: Mutex<BTreeMap<(String, String), Arc<ViewStore>>>,
    stuck_after_ms: AtomicU64,
    /// Where runs starting, completing and failing are reported, once someone listens (the
    /// node's audit trail and OpenLineage).
    events: Events,
}

/// A served feature view, for listings.
#[derive(Debug, Clone, Serialize)]
pub struct ViewInfo {
    /// The view's domain.
    pub domain: String,
    /// The view's name in its domain.
    pub view: String,
    /// The pipeline that keeps it.
    pub pipeline: String,
    /// The record field it is keyed by.
    pub key: String,
    /// What it computes per key.
    pub features: Vec<Feature>,
    /// Keys it holds.
    pub keys: u64,
    /// Per input, the offsets its state includes records up to.
    pub positions: BTreeMap<String, Offsets>,
    /// When its state was last written, in milliseconds since the Unix epoch.
    pub updated_ms: Option<i64>,
}

impl std::fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supervisor")
            .field("pipelines", &self.units.lock().len())
            .finish()
    }
}

impl Supervisor {
    /// A supervisor running nothing yet. Streaming pipelines write through `sink` and wake on
    /// `appended`; `data_dir` holds their state (`views/<domain>/<view>.redb`,
    /// `pipelines/<domain>/<name>.redb`).
    pub fn new(
        engine: Arc<Engine>,
        sink: Arc<dyn StreamSink>,
        appended: Arc<tokio::sync::Notify>,
        data_dir: &std::path::Path,
    ) -> Self {
        Supervisor {
            streams: StreamContext {
                source: engine.source().clone(),
                sink,
                appended,
                functions: engine.functions().clone(),
            },
            engine,
            state_files: StateFiles::new(data_dir),
            units: Mutex::new(BTreeMap::new()),
            views: Mutex::new(BTreeMap::new()),
            stuck_after_ms: (STUCK_AFTER.as_millis() as u64).into(),
            events: Events::default(),
        }
    }

    /// Every run's start, completion and failure from now on, as they happen (a failure is
    /// followed by a restart after its backoff). One listener; a second call returns `None`.
    pub fn run_events(&self) -> Option<mpsc::UnboundedReceiver<RunEvent>> {
        self.events.listen()
    }

    /// How long a micro-batch or run may take before its pipeline is reported stuck.
    pub fn set_stuck_after(&self, limit: Duration) {
        self.stuck_after_ms
            .store(limit.as_millis() as u64, Ordering::Relaxed);
    }

    /// Makes `domain`'s running pipelines match `pipelines`: new ones start, changed ones
    /// restart, removed ones stop; unchanged ones and other domains' are not touched.
    pub fn sync_domain(&self, domain: &str, pipelines: &BTreeMap<String, PipelineSpec>) {
        let mut units = self.units.lock();
        units.retain(|(d, n), _| d != domain || pipelines.contains_key(n));
        let served: Vec<String> = pipelines
            .values()
            .filter_map(|p| match p.output.target() {
                Ok(Output::View { name, .. }) => Some(name.to_string()),
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

    /// Starts a unit running `spec`. This is where each kind of output gets its unit.
    fn start(&self, domain: &str, name: &str, spec: PipelineSpec) -> Unit {
        let waiting = State::Waiting {
            next_run_ms: next_run(spec.schedule.as_deref(), chrono::Utc::now()),
        };
        let status = Arc::new(Mutex::new(PipelineStatus::deployed(
            domain, name, spec.mode, waiting,
        )));
        let reporter = Reporter {
            domain: domain.to_string(),
            name: name.to_string(),
            status: status.clone(),
            events: self.events.clone(),
        };
        let (tx, rx) = mpsc::channel(16);
        let thread = match spec.mode {
            PipelineMode::Batch => isolate(
                format!("{domain}.{name}"),
                true,
                table_unit::run(self.engine.clone(), spec.clone(), reporter, rx),
            ),
            PipelineMode::Streaming => match self.target(domain, name, &spec) {
                Ok(target) => isolate(
                    format!("{domain}.{name}"),
                    false,
                    stream_unit::run(self.streams.clone(), target, spec.clone(), reporter),
                ),
                Err(e) => {
                    status.lock().state = State::Stopped {
                        reason: e.to_string(),
                    };
                    isolate(format!("{domain}.{name}"), false, async {})
                }
            },
        };
        Unit {
            spec,
            status,
            requests: tx,
            _thread: thread,
        }
    }

    /// Where a streaming pipeline's output goes, with its state opened (and a view served).
    fn target(
        &self,
        domain: &str,
        name: &str,
        spec: &PipelineSpec,
    ) -> Result<Target, PipelineError> {
        match spec.output.target() {
            Ok(Output::View {
                name: view,
                key,
                features,
            }) => {
                let store =
                    self.state_files
                        .view(domain, view, key, Feature::from_spec(features))?;
                store.fence();
                let store = Arc::new(store);
                self.views
                    .lock()
                    .insert((domain.to_string(), view.to_string()), store.clone());
                Ok(Target::View(store))
            }
            Ok(_) if spec.window.is_some() => self
                .state_files
                .pipeline_state(domain, name)
                .map(Target::Windowed),
            Ok(_) => Ok(Target::Stream),
            Err(reason) => Err(PipelineError::InvalidOutput {
                pipeline: format!("{domain}.{name}"),
                reason: reason.to_string(),
            }),
        }
    }

    /// Every deployed pipeline's status now.
    pub fn statuses(&self) -> Vec<PipelineStatus> {
        let now = now_ms();
        let limit = Duration::from_millis(self.stuck_after_ms.load(Ordering::Relaxed));
        self.units
            .lock()
            .values()
            .map(|u| u.status.lock().clone().seen_at(now, limit))
            .collect()
    }

    /// Runs a pipeline writing a table now (`headwater run`), reporting progress; waits for
    /// the result.
    pub async fn run(
        &self,
        domain: &str,
        name: &str,
        progress: Option<mpsc::UnboundedSender<Progress>>,
    ) -> Result<RunReport, PipelineError> {
        let pipeline = || format!("{domain}.{name}");
        let requests = {
            let units = self.units.lock();
            let unit = units
                .get(&(domain.to_string(), name.to_string()))
                .ok_or_else(|| PipelineError::NotDeployed {
                    domain: domain.to_string(),
                    name: name.to_string(),
                })?;
            if unit.spec.mode != PipelineMode::Batch {
                return Err(PipelineError::RunsContinuously {
                    pipeline: pipeline(),
                });
            }
            unit.requests.clone()
        };
        let (done, wait) = oneshot::channel();
        requests
            .send(RunRequest { progress, done })
            .await
            .map_err(|_| PipelineError::Removed {
                pipeline: pipeline(),
            })?;
        wait.await.map_err(|_| PipelineError::RedeployedDuringRun {
            pipeline: pipeline(),
        })?
    }

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

    /// Every served feature view.
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
                            && matches!(u.spec.output.target(), Ok(Output::View { name, .. }) if name == view)
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
}

#[cfg(test)]
mod tests {
    //! The supervisor over small fakes of the two stream traits: no node, no streams. Table
    //! pipelines run SQL without inputs; streaming ones wait for inputs that never come, which
    //! is enough to see units start and stop.

    use std::collections::BTreeMap;

    use headwater_contracts::Contract;
    use headwater_domains::OutputSpec;

    use super::*;
    use crate::sink::{BoxFuture, Committed, ProducerId, SinkError};
    use crate::source::{SourceError, StreamRecord, StreamRefused, StreamSource};
    use crate::tables::Tables;

    /// A source with no streams.
    #[derive(Debug)]
    struct NoStreams;

    impl StreamSource for NoStreams {
        fn contract(&self, _: &str) -> Option<Contract> {
            None
        }
        fn end_offsets(&self, _: &str) -> Option<Offsets> {
            None
        }
        fn start_offsets(&self, _: &str) -> Option<Offsets> {
            None
        }
        fn read(
            &self,
            topic: &str,
            _: &mut Offsets,
            _: &Offsets,
            _: usize,
        ) -> Result<Vec<StreamRecord>, SourceError> {
            Err(StreamRefused::UnknownStream {
                stream: topic.to_string(),
            }
            .into())
        }
    }

    /// A sink that is never reached.
    #[derive(Debug)]
    struct Unreachable;

    fn unavailable<'a, T: Send + 'a>() -> BoxFuture<'a, Result<T, SinkError>> {
        Box::pin(async {
            Err(SinkError::Unavailable {
                reason: "a test sink".into(),
            })
        })
    }

    impl StreamSink for Unreachable {
        fn init_producer(&self) -> BoxFuture<'_, Result<ProducerId, SinkError>> {
            unavailable()
        }
        fn write<'a>(
            &'a self,
            _: &'a str,
            _: Vec<serde_json::Value>,
            _: ProducerId,
            _: &'a mut BTreeMap<i32, i32>,
        ) -> BoxFuture<'a, Result<(), SinkError>> {
            unavailable()
        }
        fn committed<'a>(
            &'a self,
            _: &'a str,
            _: &'a [String],
        ) -> BoxFuture<'a, Result<Committed, SinkError>> {
            unavailable()
        }
        fn commit<'a>(
            &'a self,
            _: &'a str,
            _: &'a BTreeMap<String, Offsets>,
            _: &'a str,
        ) -> BoxFuture<'a, Result<(), SinkError>> {
            unavailable()
        }
    }

    fn supervisor(dir: &std::path::Path) -> Supervisor {
        let engine = Arc::new(Engine::new(Arc::new(NoStreams), Tables::new(dir)));
        Supervisor::new(engine, Arc::new(Unreachable), Default::default(), dir)
    }

    fn output() -> OutputSpec {
        OutputSpec {
            stream: None,
            table: None,
            partition_by: Vec::new(),
            view: None,
            key: None,
            features: BTreeMap::new(),
        }
    }

    fn spec(mode: PipelineMode, sql: Option<&str>, output: OutputSpec) -> PipelineSpec {
        PipelineSpec {
            description: String::new(),
            mode,
            schedule: None,
            // Streaming pipelines wait for it forever; table pipelines here read no stream.
            inputs: match mode {
                PipelineMode::Batch => Vec::new(),
                PipelineMode::Streaming => vec!["elsewhere.never".to_string()],
            },
            sql: sql.map(str::to_string),
            window: None,
            output,
        }
    }

    fn table(name: &str, sql: &str) -> PipelineSpec {
        let output = OutputSpec {
            table: Some(name.to_string()),
            ..output()
        };
        spec(PipelineMode::Batch, Some(sql), output)
    }

    fn to_stream(name: &str) -> PipelineSpec {
        let output = OutputSpec {
            stream: Some(name.to_string()),
            ..output()
        };
        spec(PipelineMode::Streaming, None, output)
    }

    fn to_view(name: &str) -> PipelineSpec {
        let output = OutputSpec {
            view: Some(name.to_string()),
            key: Some("id".to_string()),
            ..output()
        };
        spec(PipelineMode::Streaming, None, output)
    }

    fn pipelines(list: &[(&str, PipelineSpec)]) -> BTreeMap<String, PipelineSpec> {
        list.iter()
            .map(|(n, p)| (n.to_string(), p.clone()))
            .collect()
    }

    /// The status a unit reports through; its unit's thread holds it as long as it runs.
    fn status_of(s: &Supervisor, domain: &str, name: &str) -> Arc<Mutex<PipelineStatus>> {
        s.units
            .lock()
            .get(&(domain.to_string(), name.to_string()))
            .map(|u| u.status.clone())
            .unwrap_or_else(|| panic!("{domain}.{name} is not deployed"))
    }

    /// Waits until no unit's thread holds `status` any more: the unit stopped.
    fn stopped(status: &Arc<Mutex<PipelineStatus>>) -> bool {
        let until = std::time::Instant::now() + Duration::from_secs(10);
        while std::time::Instant::now() < until {
            if Arc::strong_count(status) == 1 {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    #[test]
    fn sync_domain_starts_and_stops_only_what_changed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = supervisor(dir.path());
        let same = ("same", table("t1", "SELECT 1 AS x"));
        let changed = |sql| ("changed", table("t2", sql));
        let first = [
            same.clone(),
            changed("SELECT 1 AS x"),
            ("removed", to_stream("out")),
            ("view", to_view("v")),
        ];
        s.sync_domain("a", &pipelines(&first));
        s.sync_domain("b", &pipelines(&[("other", table("t", "SELECT 1 AS x"))]));
        let before: Vec<_> = [
            ("a", "same"),
            ("a", "changed"),
            ("a", "removed"),
            ("b", "other"),
        ]
        .iter()
        .map(|(d, n)| status_of(&s, d, n))
        .collect();
        assert!(
            s.view("a", "v").is_some(),
            "a view pipeline serves its view"
        );

        let second = [same, changed("SELECT 2 AS x"), ("added", to_stream("out"))];
        s.sync_domain("a", &pipelines(&second));
        assert!(Arc::ptr_eq(&before[0], &status_of(&s, "a", "same")));
        assert!(!Arc::ptr_eq(&before[1], &status_of(&s, "a", "changed")));
        assert!(Arc::ptr_eq(&before[3], &status_of(&s, "b", "other")));
        let names: Vec<String> = s
            .statuses()
            .into_iter()
            .map(|p| format!("{}.{}", p.domain, p.name))
            .collect();
        assert_eq!(names, ["a.added", "a.changed", "a.same", "b.other"]);
        assert!(
            s.view("a", "v").is_none(),
            "a removed view is no longer served"
        );
        assert!(stopped(&before[1]), "the changed pipeline's old unit stops");
        assert!(stopped(&before[2]), "the removed pipeline's unit stops");
        assert!(
            Arc::strong_count(&before[0]) > 1,
            "the unchanged one runs on"
        );
        assert!(
            Arc::strong_count(&before[3]) > 1,
            "another domain's runs on"
        );
    }

    #[test]
    fn statuses_report_stuck_after_the_limit_set() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = supervisor(dir.path());
        s.sync_domain("a", &pipelines(&[("p", table("t", "SELECT 1 AS x"))]));
        status_of(&s, "a", "p").lock().busy_since_ms = Some(now_ms() - 5_000);
        assert!(matches!(s.statuses()[0].state, State::Waiting { .. }));
        s.set_stuck_after(Duration::from_secs(1));
        assert!(matches!(s.statuses()[0].state, State::Stuck { .. }));
    }

    #[tokio::test]
    async fn a_run_reports_and_a_failed_run_backs_off() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = supervisor(dir.path());
        let mut events = s.run_events().expect("the first listener");
        assert!(s.run_events().is_none(), "one listener");
        s.sync_domain(
            "a",
            &pipelines(&[
                ("good", table("t", "SELECT 1 AS x")),
                ("bad", table("u", "SELECT no_such_column")),
                ("live", to_stream("out")),
            ]),
        );

        let report = s.run("a", "good", None).await.expect("the run");
        assert_eq!((report.table.as_str(), report.rows), ("a.t", 1));
        let good = status_of(&s, "a", "good").lock().clone();
        assert_eq!(good.last_run.as_ref(), Some(&report));
        assert!(matches!(good.state, State::Waiting { next_run_ms: None }));

        let failed = s.run("a", "bad", None).await.expect_err("a bad column");
        assert!(
            matches!(failed, PipelineError::DataFusion { .. }),
            "{failed:?}"
        );
        let bad = status_of(&s, "a", "bad").lock().clone();
        assert_eq!(
            (bad.failures, bad.last_error),
            (1, Some(failed.to_string()))
        );
        assert!(
            matches!(bad.state, State::BackingOff { attempt: 1, .. }),
            "{:?}",
            bad.state
        );

        let mut kinds = Vec::new();
        while let Ok(e) = events.try_recv() {
            if e.pipeline != "live" {
                kinds.push((e.pipeline, e.kind));
            }
        }
        let fail = RunEventKind::Fail {
            error: failed.to_string(),
            attempt: 1,
            retry_in_ms: 2_000,
        };
        assert_eq!(
            kinds,
            [
                ("good".to_string(), RunEventKind::Start),
                ("good".to_string(), RunEventKind::Complete),
                ("bad".to_string(), RunEventKind::Start),
                ("bad".to_string(), fail),
            ]
        );

        let refused = |r: Result<RunReport, PipelineError>| r.expect_err("refused").to_string();
        assert!(refused(s.run("a", "nothing", None).await).contains("is not deployed"));
        assert!(refused(s.run("a", "live", None).await).contains("runs continuously"));
        assert!(refused(s.rebuild("a", "live", None).await).contains("it is not rebuilt"));
        assert!(refused(s.rebuild("a", "nothing", None).await).contains("headwater pipelines"));
    }
}
