//! Rebuilding a table or a view from its inputs.
//!
//! A table is rebuilt by running its pipeline again: every run reads its inputs whole. A view
//! is emptied and its pipeline restarted from the start of its inputs; the rebuild reports
//! progress until the view has caught up with where the inputs ended when it began. A stream is
//! never rebuilt: its events are out already.

use std::collections::BTreeMap;
use std::time::Duration;

use headwater_domains::{Output, PipelineSpec};
use tokio::sync::mpsc;

use super::status::State;
use super::Supervisor;
use crate::error::Fault;
use crate::output::table::{Progress, RunReport};
use crate::source::Offsets;
use crate::{now_ms, PipelineError};

impl Supervisor {
    /// Rebuilds a table or view from its inputs: a table's pipeline runs again over the whole
    /// inputs; a view is emptied and its pipeline replays its inputs from the start. Reports
    /// progress and returns once the view has caught up with where the inputs ended when the
    /// rebuild began.
    pub async fn rebuild(
        &self,
        domain: &str,
        name: &str,
        progress: Option<mpsc::UnboundedSender<Progress>>,
    ) -> Result<RunReport, PipelineError> {
        let (pipeline, spec) = self.resolve(domain, name)?;
        let view = match spec.output.target() {
            Ok(Output::Table { .. }) => return self.run(domain, &pipeline, progress).await,
            Ok(Output::View { name, .. }) => name.to_string(),
            _ => {
                return Err(PipelineError::StreamNotRebuilt {
                    pipeline: format!("{domain}.{pipeline}"),
                })
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
        let total = records_between(&start, &end, &end);
        let not_open = || Fault::Broken {
            what: format!("view '{domain}.{view}' is not open"),
        };
        let status = {
            let mut units = self.units.lock();
            let old = units.remove(&(domain.to_string(), pipeline.clone()));
            let store = self.view(domain, &view).ok_or_else(not_open)?;
            drop(old);
            store.clear()?;
            let unit = self.start(domain, &pipeline, spec.clone());
            let status = unit.status.clone();
            units.insert((domain.to_string(), pipeline.clone()), unit);
            status
        };
        tracing::info!(domain, view = %view, records = total, "rebuilding view from its inputs");
        let store = self.view(domain, &view).ok_or_else(not_open)?;
        loop {
            let positions = store.checkpoint()?.map(|c| c.positions).unwrap_or_default();
            let records = records_between(&start, &end, &positions);
            if let Some(tx) = &progress {
                let _ = tx.send(Progress::Loading { records, total });
            }
            if records >= total {
                break;
            }
            if let State::BackingOff { error, .. } = &status.lock().state {
                return Err(PipelineError::RebuildFailed {
                    error: error.clone(),
                });
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

    /// The pipeline of `domain` called `name`, or writing the table or view `name`.
    fn resolve(&self, domain: &str, name: &str) -> Result<(String, PipelineSpec), PipelineError> {
        let units = self.units.lock();
        units
            .iter()
            .filter(|((d, _), _)| d == domain)
            .find(|((_, n), u)| {
                n == name
                    || match u.spec.output.target() {
                        Ok(Output::Table { name: t, .. }) => t == name,
                        Ok(Output::View { name: v, .. }) => v == name,
                        _ => false,
                    }
            })
            .map(|((_, n), u)| (n.clone(), u.spec.clone()))
            .ok_or_else(|| PipelineError::NothingToRebuild {
                name: format!("{domain}.{name}"),
            })
    }
}

/// Records from `start` up to `positions`, counting only those before `end`: how much of a
/// rebuild from `start` to `end` is done once the view has read up to `positions`.
fn records_between(
    start: &BTreeMap<String, Offsets>,
    end: &BTreeMap<String, Offsets>,
    positions: &BTreeMap<String, Offsets>,
) -> u64 {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offsets(topic: &str, parts: &[(i32, i64)]) -> BTreeMap<String, Offsets> {
        [(topic.to_string(), parts.iter().copied().collect())].into()
    }

    #[test]
    fn rebuild_progress_counts_from_the_start_up_to_the_end() {
        let start = offsets("a.s", &[(0, 10), (1, 0)]);
        let end = offsets("a.s", &[(0, 110), (1, 50)]);
        assert_eq!(records_between(&start, &end, &end), 150);
        assert_eq!(records_between(&start, &end, &BTreeMap::new()), 0);
        // Read past the end (records came in since) counts only up to the end; a partition
        // not read yet counts nothing.
        let positions = offsets("a.s", &[(0, 500)]);
        assert_eq!(records_between(&start, &end, &positions), 100);
    }
}
