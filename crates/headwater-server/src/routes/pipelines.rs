//! `/v1/pipelines` (states, `run`) and `/v1/sql`.

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::sse::{Event as SseEvent, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use futures_util::stream::{self, StreamExt};
use headwater_pipelines::datafusion::arrow::array::RecordBatch;
use headwater_pipelines::datafusion::arrow::json::writer::{JsonArray, WriterBuilder};
use headwater_pipelines::{PipelineError, Progress, RunReport};
use serde_json::{json, Value};

use headwater_governance::PipelineService;

use crate::error::error;
use crate::routes::json_response;
use crate::sign_in::Caller;

type Shared = State<Arc<PipelineService>>;

pub(crate) fn router(pipelines: Arc<PipelineService>) -> Router {
    Router::new()
        .route("/v1/pipelines", get(list))
        .route("/v1/pipelines/{domain}/{name}/run", post(run))
        .route("/v1/rebuild/{domain}/{name}", post(rebuild))
        .route("/v1/sql", post(sql))
        .route("/v1/views", get(crate::routes::views::list))
        .with_state(pipelines)
}

/// View lookups, one key or many: answered where the request is read (see [`crate::http`]).
pub(crate) fn lookups_router(pipelines: Arc<PipelineService>) -> Router {
    Router::new()
        .route(
            "/v1/views/{domain}/{view}/{key}",
            get(crate::routes::views::get_one),
        )
        .route(
            "/v1/views/{domain}/{view}",
            post(crate::routes::views::lookup),
        )
        .with_state(pipelines)
}

async fn list(State(p): Shared) -> Response {
    json_response(StatusCode::OK, json!(p.supervisor().statuses()))
}

/// Runs a batch pipeline now; the answer is a stream of `progress` events ending with `done`
/// (the run's report) or `error`.
async fn run(State(p): Shared, Path((domain, name)): Path<(String, String)>) -> Response {
    progress_events(move |tx| async move { p.supervisor().run(&domain, &name, Some(tx)).await })
}

/// Rebuilds a table or view (named as itself or by its pipeline) from its inputs, with the
/// same event stream as `run`.
async fn rebuild(State(p): Shared, Path((domain, name)): Path<(String, String)>) -> Response {
    progress_events(move |tx| async move { p.supervisor().rebuild(&domain, &name, Some(tx)).await })
}

/// Server-sent `progress` events while `work` runs, then `done` with its report or `error`.
fn progress_events<F, Fut>(work: F) -> Response
where
    F: FnOnce(tokio::sync::mpsc::UnboundedSender<Progress>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<RunReport, PipelineError>> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let (end_tx, end_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let _ = end_tx.send(work(tx).await);
    });
    let progress = tokio_stream_of(rx).map(|p| {
        SseEvent::default()
            .event("progress")
            .data(serde_json::to_string(&p).unwrap_or_default())
    });
    let end = stream::once(async move {
        match end_rx.await {
            Ok(Ok(report)) => SseEvent::default()
                .event("done")
                .data(serde_json::to_string(&report).unwrap_or_default()),
            Ok(Err(e)) => SseEvent::default().event("error").data(e.to_string()),
            Err(_) => SseEvent::default()
                .event("error")
                .data("the run ended without a result"),
        }
    });
    Sse::new(progress.chain(end).map(Ok::<_, Infallible>)).into_response()
}

fn tokio_stream_of<T: Send + 'static>(
    mut rx: tokio::sync::mpsc::UnboundedReceiver<T>,
) -> impl futures_util::Stream<Item = T> {
    stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// Why a query's result could not be turned into JSON rows (a fault of the node).
#[derive(Debug, thiserror::Error)]
enum RowsError {
    #[error("the result could not be written as JSON: {0}")]
    Arrow(#[from] headwater_pipelines::datafusion::arrow::error::ArrowError),
    #[error("the result's JSON could not be read back: {0}")]
    Json(#[from] serde_json::Error),
}

/// Rows as JSON arrays in column order.
fn rows_of(batches: &[RecordBatch], columns: &[String]) -> Result<Vec<Value>, RowsError> {
    let mut buf = Vec::new();
    let mut writer = WriterBuilder::new()
        .with_explicit_nulls(true)
        .build::<_, JsonArray>(&mut buf);
    for b in batches {
        writer.write(b)?;
    }
    writer.finish()?;
    drop(writer);
    if buf.is_empty() {
        return Ok(Vec::new());
    }
    let objects: Vec<serde_json::Map<String, Value>> = serde_json::from_slice(&buf)?;
    Ok(objects
        .into_iter()
        .map(|mut o| {
            Value::Array(
                columns
                    .iter()
                    .map(|c| o.remove(c).unwrap_or(Value::Null))
                    .collect(),
            )
        })
        .collect())
}

/// Runs the SQL in the body over streams and tables; answers columns and rows.
async fn sql(State(p): Shared, caller: Option<Extension<Caller>>, body: String) -> Response {
    let text = match serde_json::from_str::<Value>(&body) {
        Ok(Value::Object(o)) => o
            .get("sql")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        _ => body,
    };
    // Checked before anything runs: the statement only reads, and the caller may read every
    // stream and table it names.
    let inputs = match p.engine().inputs_of(&text) {
        Ok(inputs) => inputs,
        Err(e) => return error(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()),
    };
    if let Some(caller) = caller {
        for input in &inputs {
            let checked = match input {
                headwater_pipelines::Input::Stream { topic, .. } => {
                    caller.check("consume", topic, |policy, who| {
                        policy.topic(who, headwater_auth::TopicOp::Consume, topic)
                    })
                }
                headwater_pipelines::Input::Table { domain, name } => {
                    caller.check("read table", &format!("{domain}.{name}"), |policy, who| {
                        policy.operate(who, domain)
                    })
                }
            };
            if let Err(refused) = checked {
                return *refused;
            }
        }
    }
    match p.engine().query(&text, &inputs).await {
        Ok((schema, batches)) => {
            let columns: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
            match rows_of(&batches, &columns) {
                Ok(rows) => json_response(
                    StatusCode::OK,
                    json!({
                        "columns": schema.fields().iter().map(|f| json!({"name": f.name(), "type": f.data_type().to_string()})).collect::<Vec<_>>(),
                        "rows": rows,
                    }),
                ),
                Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
            }
        }
        Err(e) => error(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()),
    }
}
