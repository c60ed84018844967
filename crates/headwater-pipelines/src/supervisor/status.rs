//! What each pipeline is doing, as `headwater pipelines`, `/v1/pipelines` and the metrics show
//! it, and when a pipeline counts as stuck.

use std::time::Duration;

use headwater_domains::PipelineMode;
use serde::Serialize;

use crate::output::table::{Progress, RunReport};

/// How long one micro-batch or run may take before the pipeline is reported stuck.
pub const STUCK_AFTER: Duration = Duration::from_secs(30);

/// What a pipeline is doing now.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum State {
    /// Waiting for its schedule (`next_run_ms`) or a `headwater run`.
    Waiting {
        /// When the schedule fires next, in milliseconds since the Unix epoch; `None` without
        /// a schedule.
        next_run_ms: Option<i64>,
    },
    /// A run of a pipeline writing a table is under way.
    Running {
        /// How far it has come.
        progress: Progress,
    },
    /// A streaming pipeline processing records as they arrive.
    Streaming {
        /// Records read since it last started.
        records_in: u64,
        /// Records (or view keys) written since it last started.
        records_out: u64,
        /// Windowed pipelines: records dropped for arriving after their allowed lateness.
        late_dropped: u64,
    },
    /// The last run failed; it is retried at `retry_at_ms`.
    BackingOff {
        /// Why it failed.
        error: String,
        /// Failures in a row, this one included.
        attempt: u32,
        /// When it runs again, in milliseconds since the Unix epoch.
        retry_at_ms: i64,
    },
    /// It cannot run until its domain is applied again (its state cannot be opened).
    Stopped {
        /// Why.
        reason: String,
    },
    /// A micro-batch or run has gone on for longer than [`STUCK_AFTER`]: something in it spins
    /// or blocks. It holds only its own thread.
    Stuck {
        /// When the micro-batch or run began.
        busy_since_ms: i64,
        /// What it means and what to do.
        reason: String,
    },
}

/// One deployed pipeline's status.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PipelineStatus {
    /// Its domain.
    pub domain: String,
    /// Its name in the domain.
    pub name: String,
    /// `batch` (writes a table per run) or `streaming`.
    pub mode: PipelineMode,
    /// What it is doing.
    #[serde(flatten)]
    pub state: State,
    /// Its last successful run (pipelines writing a table).
    pub last_run: Option<RunReport>,
    /// Its last failure's text.
    pub last_error: Option<String>,
    /// Failed runs since the pipeline was deployed.
    pub failures: u64,
    /// When the pipeline's task started: unchanged while other pipelines come and go.
    pub deployed_at_ms: i64,
    /// When the micro-batch or run in progress started.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub busy_since_ms: Option<i64>,
}

impl PipelineStatus {
    /// A pipeline just deployed, in `state`.
    pub(super) fn deployed(domain: &str, name: &str, mode: PipelineMode, state: State) -> Self {
        PipelineStatus {
            domain: domain.to_string(),
            name: name.to_string(),
            mode,
            state,
            last_run: None,
            last_error: None,
            failures: 0,
            deployed_at_ms: crate::now_ms(),
            busy_since_ms: None,
        }
    }

    /// This status as seen at `now`: [`State::Stuck`] if the work in progress has been busy
    /// for longer than `limit`.
    pub(super) fn seen_at(mut self, now: i64, limit: Duration) -> Self {
        if let Some(since) = self.busy_since_ms {
            let busy = Duration::from_millis((now - since).max(0) as u64);
            if busy > limit {
                self.state = State::Stuck {
                    busy_since_ms: since,
                    reason: format!(
                        "one micro-batch or run has taken {}s: the pipeline's SQL or a function it calls spins or blocks. It runs on its own thread, so nothing else waits for it; fix it and apply the domain again",
                        busy.as_secs()
                    ),
                };
            }
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn streaming(busy_since_ms: Option<i64>) -> PipelineStatus {
        PipelineStatus {
            busy_since_ms,
            ..PipelineStatus::deployed(
                "d",
                "p",
                PipelineMode::Streaming,
                State::Streaming {
                    records_in: 1,
                    records_out: 1,
                    late_dropped: 0,
                },
            )
        }
    }

    #[test]
    fn busy_past_the_limit_is_stuck_and_not_before() {
        let limit = Duration::from_secs(30);
        let at_limit = streaming(Some(1_000)).seen_at(31_000, limit);
        assert!(
            matches!(at_limit.state, State::Streaming { .. }),
            "{at_limit:?}"
        );
        let past = streaming(Some(1_000)).seen_at(31_001, limit);
        match past.state {
            State::Stuck {
                busy_since_ms,
                reason,
            } => {
                assert_eq!(busy_since_ms, 1_000);
                assert!(reason.contains("has taken 30s"), "{reason}");
            }
            other => panic!("not stuck: {other:?}"),
        }
    }

    #[test]
    fn idle_is_never_stuck_and_a_clock_going_back_is_not_busy() {
        let limit = Duration::from_millis(1);
        let idle = streaming(None).seen_at(i64::MAX, limit);
        assert!(matches!(idle.state, State::Streaming { .. }));
        let back = streaming(Some(5_000)).seen_at(1_000, limit);
        assert!(matches!(back.state, State::Streaming { .. }));
    }
}
