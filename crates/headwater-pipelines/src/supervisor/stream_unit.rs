//! The life of a streaming pipeline: run from its checkpoint until an error or a panic, then
//! back off and run again; other pipelines are not affected.

use std::sync::Arc;
use std::time::Duration;

use headwater_domains::PipelineSpec;

use super::status::State;
use super::unit::{catching_panics, Reporter};
use crate::micro_batch::{Flow, StreamContext};
use crate::output::stream::run_stream_pipeline;
use crate::output::view::run_view_pipeline;
use crate::output::windowed::run_windowed_pipeline;
use crate::output::Deployed;
use crate::state_files::StateFile;
use crate::view_store::ViewStore;

/// Where a streaming pipeline's output goes: one arm per output kind.
pub(super) enum Target {
    /// A stream, record by record.
    Stream,
    /// A stream, window by window, with the pipeline's window state.
    Windowed(StateFile),
    /// A feature view.
    View(Arc<ViewStore>),
}

/// A run that lasted this long was healthy: its failure starts the backoff over.
const HEALTHY_RUN: Duration = Duration::from_secs(60);

/// Runs the pipeline until the unit is dropped, restarting it after each failure.
pub(super) async fn run(
    ctx: StreamContext,
    target: Target,
    spec: PipelineSpec,
    reporter: Reporter,
) {
    let (domain, name) = (reporter.domain.as_str(), reporter.name.as_str());
    let mut attempt = 0u32;
    loop {
        reporter.status.lock().state = State::Streaming {
            records_in: 0,
            records_out: 0,
            late_dropped: 0,
        };
        let started = tokio::time::Instant::now();
        let run_id = uuid::Uuid::new_v4();
        reporter.started(run_id);
        let flow = {
            let status = reporter.status.clone();
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
        let pipeline = Deployed {
            domain,
            name,
            spec: &spec,
        };
        let run = async {
            match &target {
                Target::Stream => run_stream_pipeline(&ctx, pipeline, &flow).await,
                Target::View(store) => run_view_pipeline(&ctx, store, pipeline, &flow).await,
                Target::Windowed(db) => run_windowed_pipeline(&ctx, db, pipeline, &flow).await,
            }
        };
        let error = match catching_panics(run).await {
            Ok(never) => match never {},
            Err(e) => e.to_string(),
        };
        if started.elapsed() > HEALTHY_RUN {
            attempt = 0;
        }
        attempt += 1;
        let delay = reporter.failed(run_id, &error, attempt);
        tracing::warn!(domain = %domain, pipeline = %name, attempt, "pipeline failed, restarting in {delay:?}: {error}");
        tokio::time::sleep(delay).await;
    }
}
