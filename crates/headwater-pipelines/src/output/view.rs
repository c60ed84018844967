//! A streaming pipeline that keeps a feature view: each micro-batch of its inputs (through its
//! SQL, if it has one) updates the features of the keys it touches.
//!
//! Exactly once by construction: the updated keys and the input positions they include are one
//! redb transaction (see [`crate::view_store`]). The pipeline also commits the positions as
//! consumer group `_pipeline.<domain>.<name>`, after the view, so lag, status and
//! `/v1/consistency` see it like any subscriber; the view's own checkpoint is what it resumes
//! from.

use std::convert::Infallible;
use std::sync::Arc;

use serde_json::Value;

use crate::error::Fault;
use crate::micro_batch::{
    next_micro_batch, pipeline_group, start_positions, transform, wait_for_inputs, Flow,
    StreamContext,
};
use crate::output::Deployed;
use crate::rows::event_time;
use crate::view_store::{ViewEvent, ViewStore};
use crate::{now_ms, PipelineError};

/// A view key from a record field: strings as they are, numbers and booleans as text.
fn key_text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        v @ (Value::Number(_) | Value::Bool(_)) => Some(v.to_string()),
        _ => None,
    }
}

/// A SQL row's event time: its `_timestamp` column, else `fallback`.
fn row_time(row: &Value, fallback: i64) -> i64 {
    event_time(row.get("_timestamp"), fallback)
}

/// Runs until an error; the caller restarts it with backoff and it resumes from the view's
/// checkpoint. A view whose features changed starts over from the beginning of its inputs.
pub(crate) async fn run_view_pipeline(
    ctx: &StreamContext,
    store: &Arc<ViewStore>,
    Deployed { domain, name, spec }: Deployed<'_>,
    flow: &(dyn Fn(Flow) + Send + Sync),
) -> Result<Infallible, PipelineError> {
    let (source, sink) = (&ctx.source, &ctx.sink);
    let group = pipeline_group(domain, name);
    wait_for_inputs(source, &spec.inputs).await;
    let checkpoint = store.checkpoint()?;
    let saved = match checkpoint {
        Some(c) if c.features == store.fingerprint() => c.positions,
        Some(_) => {
            tracing::info!(view = %store.name, "the view's key or features changed: rebuilding it from its inputs");
            store.clear()?;
            Default::default()
        }
        None => Default::default(),
    };
    let generation = store.generation();
    let mut positions = start_positions(source, &spec.inputs, &saved)?;
    let mut totals = Flow::default();
    loop {
        let (next, inputs, read) = next_micro_batch(ctx, &spec.inputs, &positions).await?;
        flow(totals.busy());
        let now = now_ms();
        let events: Vec<ViewEvent> = match &spec.sql {
            Some(sql) => transform(ctx, sql, &inputs)
                .await?
                .into_iter()
                .filter_map(|row| {
                    Some(ViewEvent {
                        key: key_text(row.get(&store.key))?,
                        ts: row_time(&row, now),
                        record: row,
                    })
                })
                .collect(),
            None => inputs
                .into_iter()
                .flat_map(|(_, records)| records)
                .filter_map(|r| {
                    Some(ViewEvent {
                        key: key_text(r.value.get(&store.key))?,
                        ts: r.timestamp,
                        record: r.value,
                    })
                })
                .collect(),
        };
        let applied = {
            let store = store.clone();
            let next = next.clone();
            let count = events.len();
            let written =
                tokio::task::spawn_blocking(move || store.apply(generation, &events, &next, now))
                    .await
                    .map_err(|e| Fault::Broken {
                        what: format!("the view update stopped: {e}"),
                    })??;
            written.then_some(count)
        };
        let Some(updated) = applied else {
            return Err(PipelineError::ViewCleared);
        };
        sink.commit(&group, &next, "view").await?;
        positions = next;
        totals.records_in += read as u64;
        totals.records_out += updated as u64;
        flow(totals);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_and_event_times_from_rows() {
        assert_eq!(key_text(Some(&json!("c-1"))), Some("c-1".into()));
        assert_eq!(key_text(Some(&json!(42))), Some("42".into()));
        assert_eq!(key_text(Some(&json!(null))), None);
        assert_eq!(key_text(None), None);
        assert_eq!(row_time(&json!({"_timestamp": 5}), 1), 5);
        assert_eq!(
            row_time(&json!({"_timestamp": "1970-01-01T00:00:01.5Z"}), 1),
            1_500
        );
        assert_eq!(
            row_time(&json!({"_timestamp": "1970-01-01T00:00:02"}), 1),
            2_000
        );
        assert_eq!(row_time(&json!({}), 7), 7);
    }
}
