//! `/v1/streams/{domain}/{stream}/...`: publish JSON events, follow a stream as server-sent
//! events, and replay its dead letters. The stream `payments/transaction_settled` is the topic
//! `payments.transaction_settled`; its dead-letter stream is `payments/transaction_settled.dlq`.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::PathRejection;
use axum::extract::{Extension, FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use futures_util::stream::{self, Stream, StreamExt};
use serde::Deserialize;
use serde_json::json;

use headwater_streams::{Positions, StartAt, StreamError, StreamService};

use crate::limits::HttpLimits;
use crate::sign_in::{By, Caller};

type Shared = State<Arc<StreamService>>;

pub(crate) fn router(streams: Arc<StreamService>, limits: HttpLimits) -> Router {
    Router::new()
        .route(
            "/v1/streams/{domain}/{stream}/events",
            get(follow).post(publish),
        )
        .route("/v1/streams/{domain}/{stream}/dlq/replay", post(replay))
        .layer(Extension(limits))
        .with_state(streams)
}

/// The topic a `/v1/streams/{domain}/{stream}/...` path names: `<domain>.<stream>`.
struct StreamTopic(String);

impl<S: Send + Sync> FromRequestParts<S> for StreamTopic {
    type Rejection = PathRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path((domain, stream)) =
            Path::<(String, String)>::from_request_parts(parts, state).await?;
        Ok(StreamTopic(format!("{domain}.{stream}")))
    }
}

fn failure(e: StreamError) -> Response {
    let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
    crate::error::error(status, e.to_string())
}

fn ok(body: impl serde::Serialize) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        json!(body).to_string(),
    )
        .into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PublishQuery {
    /// The line number of the body's first line, for clients that send input in chunks.
    first_line: Option<usize>,
}

async fn publish(
    State(s): Shared,
    StreamTopic(topic): StreamTopic,
    Query(q): Query<PublishQuery>,
    body: String,
) -> Response {
    match s.publish(&topic, &body, q.first_line.unwrap_or(1)).await {
        Ok(outcome) => ok(outcome),
        Err(e) => failure(e),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplayQuery {
    from: Option<i64>,
}

async fn replay(
    State(s): Shared,
    By(by): By,
    StreamTopic(topic): StreamTopic,
    Query(q): Query<ReplayQuery>,
) -> Response {
    match s
        .replay_dead_letters(&topic, q.from, &by.audit_name())
        .await
    {
        Ok(outcome) => ok(outcome),
        Err(e) => failure(e),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FollowQuery {
    /// earliest, latest (the default) or an offset, for partitions without another position.
    from: Option<String>,
    /// Resume from this consumer group's committed offsets and commit as events are sent.
    group: Option<String>,
    /// Only records with this key.
    key: Option<String>,
    /// false: stop at the end of the stream as it was when the request came in.
    follow: Option<bool>,
    /// Stop after this many events.
    limit: Option<usize>,
}

/// What one follower has read so far.
struct Follower {
    /// Its place among the node's open event streams, given back when it ends.
    _slot: tokio::sync::OwnedSemaphorePermit,
    service: Arc<StreamService>,
    topic: String,
    positions: Positions,
    end: Option<Positions>,
    key: Option<String>,
    group: Option<String>,
    left: usize,
    done: bool,
}

/// Events per read: small enough to keep one follower from hogging a worker.
const CHUNK: usize = 500;

impl Follower {
    /// The next events, waiting for new records while following; `None` when finished.
    async fn next_chunk(&mut self) -> Option<Vec<SseEvent>> {
        loop {
            if self.done || self.left == 0 {
                return None;
            }
            let appended = self.service.appended();
            let notified = appended.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let read = self.service.read(
                &self.topic,
                &mut self.positions,
                self.end.as_ref(),
                self.key.as_deref(),
                CHUNK.min(self.left),
            );
            let events = match read {
                Ok(e) => e,
                Err(e) => {
                    self.done = true;
                    return Some(vec![SseEvent::default().event("error").data(e.to_string())]);
                }
            };
            if let Some(group) = &self.group {
                if !events.is_empty() {
                    if let Err(e) = self
                        .service
                        .commit(&self.topic, group, &self.positions)
                        .await
                    {
                        self.done = true;
                        return Some(vec![SseEvent::default().event("error").data(e.to_string())]);
                    }
                }
            }
            if !events.is_empty() {
                self.left = self.left.saturating_sub(events.len());
                let last = events.len() - 1;
                // Every event's id is the position after it; only the chunk's last is exact
                // for the other partitions too, so intermediate ids name their own partition.
                return Some(
                    events
                        .into_iter()
                        .enumerate()
                        .map(|(i, e)| {
                            let id = if i == last {
                                self.positions.to_string()
                            } else {
                                let mut p = self.positions.clone();
                                p.0.insert(e.partition, e.offset + 1);
                                p.to_string()
                            };
                            SseEvent::default()
                                .id(id)
                                .data(serde_json::to_string(&e).unwrap_or_default())
                        })
                        .collect(),
                );
            }
            if let Some(end) = &self.end {
                if end
                    .0
                    .iter()
                    .all(|(p, o)| self.positions.0.get(p).is_some_and(|at| at >= o))
                {
                    return None;
                }
            }
            let _ = tokio::time::timeout(Duration::from_secs(1), notified).await;
        }
    }
}

async fn follow(
    State(s): Shared,
    StreamTopic(topic): StreamTopic,
    Query(q): Query<FollowQuery>,
    caller: Option<Extension<Caller>>,
    Extension(limits): Extension<HttpLimits>,
    headers: HeaderMap,
) -> Response {
    // The group's offsets are read and committed in-process, where no Kafka ACL applies: the
    // caller's right to the group is checked here, on the group as this handler reads it.
    if let (Some(caller), Some(group)) = (&caller, &q.group) {
        if let Err(refused) = caller.check("consume", group, |policy, who| policy.group(who, group))
        {
            return *refused;
        }
    }
    let start = match q.from.as_deref().map(StartAt::parse).transpose() {
        Ok(s) => s.unwrap_or(StartAt::Latest),
        Err(e) => return failure(StreamError::Position(e)),
    };
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(Positions::parse)
        .transpose();
    let resume = match resume {
        Ok(r) => r,
        Err(e) => {
            return crate::error::error(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("Last-Event-ID: {e}"),
            )
        }
    };
    let mut positions = match s.start_positions(&topic, start, q.group.as_deref()).await {
        Ok(p) => p,
        Err(e) => return failure(e),
    };
    if let Some(resume) = resume {
        positions.0.extend(resume.0);
    }
    let end = if q.follow == Some(false) {
        match s.end_positions(&topic) {
            Ok(e) => Some(e),
            Err(e) => return failure(e),
        }
    } else {
        None
    };
    let Some(slot) = limits.event_stream() else {
        return crate::error::error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "this node has {} event streams open already ([http] max_event_streams); try again later, or read with a Kafka consumer",
                limits.config.max_event_streams
            ),
        );
    };
    let follower = Follower {
        _slot: slot,
        service: s,
        topic,
        positions,
        end,
        key: q.key,
        group: q.group,
        left: q.limit.unwrap_or(usize::MAX),
        done: false,
    };
    Sse::new(events(follower))
        .keep_alive(KeepAlive::default())
        .into_response()
}

fn events(follower: Follower) -> impl Stream<Item = Result<SseEvent, Infallible>> {
    stream::unfold(follower, |mut f| async move {
        f.next_chunk().await.map(|chunk| (chunk, f))
    })
    .flat_map(|chunk| stream::iter(chunk.into_iter().map(Ok)))
}
