//! Eventual consistency made explicit: for every stream, who reads it (consumer groups and
//! pipelines), how far behind each is in records and seconds, whether the stream meets its
//! declared freshness, and whether every subscriber has processed a given offset.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use headwater_domains::{PipelineMode, StreamDef};
use headwater_kafka::kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use headwater_kafka::kafka_protocol::messages::{
    ListGroupsRequest, OffsetFetchRequest, RequestKind, ResponseKind,
};
use headwater_kafka::kafka_protocol::protocol::StrBytes;
use serde::Serialize;

use crate::streams::Positions;
use crate::{DomainService, PipelineService, StreamError, StreamService};

/// One reader of a stream and where it is.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Subscriber {
    /// A consumer group id, or `<domain>.<pipeline>`.
    pub name: String,
    pub kind: &'static str,
    /// Next offset it will process, per partition.
    pub positions: BTreeMap<i32, i64>,
    pub lag_records: i64,
    /// Age of the oldest record it has not processed; 0 when caught up.
    pub lag_seconds: f64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StreamStatus {
    pub stream: String,
    pub domain: String,
    pub end_offsets: BTreeMap<i32, i64>,
    /// Timestamp of the newest record, if any.
    pub newest_ms: Option<i64>,
    pub freshness_ms: Option<u64>,
    /// False when the newest record is older than the declared freshness.
    pub fresh: Option<bool>,
    pub subscribers: Vec<Subscriber>,
}

#[derive(Debug)]
pub struct StatusService {
    streams: Arc<StreamService>,
    pipelines: Arc<PipelineService>,
    domains: Arc<DomainService>,
}

fn now_ms() -> i64 {
    headwater_kafka::now_ms()
}

impl StatusService {
    pub fn new(
        streams: Arc<StreamService>,
        pipelines: Arc<PipelineService>,
        domains: Arc<DomainService>,
    ) -> Self {
        StatusService {
            streams,
            pipelines,
            domains,
        }
    }

    /// Every consumer group with committed offsets on `topic`, read as a Kafka admin would.
    async fn groups_on(
        &self,
        topic: &str,
        partitions: &[i32],
    ) -> Vec<(String, BTreeMap<i32, i64>)> {
        let broker = self.streams.broker();
        let Some(ResponseKind::ListGroups(list)) = broker
            .call(
                4,
                RequestKind::ListGroups(ListGroupsRequest::default()),
                "headwater-status",
            )
            .await
        else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for g in list.groups {
            let request = OffsetFetchRequest::default()
                .with_group_id(g.group_id.clone())
                .with_topics(Some(vec![OffsetFetchRequestTopic::default()
                    .with_name(StrBytes::from_string(topic.to_string()).into())
                    .with_partition_indexes(partitions.to_vec())]));
            let Some(ResponseKind::OffsetFetch(r)) = broker
                .call(7, RequestKind::OffsetFetch(request), "headwater-status")
                .await
            else {
                continue;
            };
            let positions: BTreeMap<i32, i64> = r
                .topics
                .into_iter()
                .flat_map(|t| t.partitions)
                .filter(|p| p.error_code == 0 && p.committed_offset >= 0)
                .map(|p| (p.partition_index, p.committed_offset))
                .collect();
            if !positions.is_empty() {
                out.push((g.group_id.0.to_string(), positions));
            }
        }
        out
    }

    /// The timestamp of the record at `offset` of a partition, if it exists.
    fn timestamp_at(&self, topic: &str, partition: i32, offset: i64) -> Option<i64> {
        let mut at = Positions([(partition, offset)].into());
        let end = Positions([(partition, offset + 1)].into());
        self.streams
            .read(topic, &mut at, Some(&end), None, 1)
            .ok()?
            .first()
            .map(|e| e.timestamp)
    }

    fn subscriber(
        &self,
        topic: &str,
        name: String,
        kind: &'static str,
        positions: BTreeMap<i32, i64>,
        end: &BTreeMap<i32, i64>,
    ) -> Subscriber {
        let mut lag_records = 0;
        let mut oldest: Option<i64> = None;
        for (p, e) in end {
            let at = positions.get(p).copied().unwrap_or(0);
            if at < *e {
                lag_records += e - at;
                if let Some(ts) = self.timestamp_at(topic, *p, at) {
                    oldest = Some(oldest.map_or(ts, |o| o.min(ts)));
                }
            }
        }
        Subscriber {
            name,
            kind,
            positions,
            lag_records,
            lag_seconds: oldest
                .map(|ts| ((now_ms() - ts).max(0)) as f64 / 1000.0)
                .unwrap_or(0.0),
        }
    }

    /// Where every subscriber of `def`'s stream is.
    pub async fn stream_status(
        &self,
        domain: &str,
        def: &StreamDef,
    ) -> Result<StreamStatus, StreamError> {
        let topic = def.topic.as_str();
        let end = self.streams.end_positions(topic)?.0;
        let partitions: Vec<i32> = end.keys().copied().collect();
        let mut subscribers = Vec::new();
        for (group, positions) in self.groups_on(topic, &partitions).await {
            subscribers.push(self.subscriber(topic, group, "group", positions, &end));
        }
        for spec in self.domains.applied() {
            for (name, p) in &spec.pipelines {
                if !p.inputs.iter().any(|i| i == topic) || p.mode != PipelineMode::Batch {
                    continue;
                }
                let table = p.output.table.clone().unwrap_or_default();
                let positions = self
                    .pipelines
                    .engine()
                    .tables()
                    .meta(&spec.domain, &table)
                    .and_then(|m| m.inputs.get(topic).cloned())
                    .unwrap_or_default();
                subscribers.push(self.subscriber(
                    topic,
                    format!("{}.{name}", spec.domain),
                    "pipeline",
                    positions,
                    &end,
                ));
            }
        }
        let newest_ms = end
            .iter()
            .filter(|(_, e)| **e > 0)
            .filter_map(|(p, e)| self.timestamp_at(topic, *p, e - 1))
            .max();
        let fresh = def
            .freshness_ms
            .map(|f| newest_ms.is_some_and(|n| now_ms() - n <= f as i64));
        Ok(StreamStatus {
            stream: topic.to_string(),
            domain: domain.to_string(),
            end_offsets: end,
            newest_ms,
            freshness_ms: def.freshness_ms,
            fresh,
            subscribers,
        })
    }

    /// Every applied domain's streams.
    pub async fn all(&self) -> Vec<StreamStatus> {
        let mut out = Vec::new();
        for spec in self.domains.applied() {
            for s in &spec.streams {
                if let Ok(st) = self.stream_status(&spec.domain, s).await {
                    out.push(st);
                }
            }
        }
        out
    }

    /// Whether every subscriber of `topic` has processed `offsets` (per partition; an offset is
    /// processed when a subscriber's next position is past it). With `wait`, waits up to that
    /// long for it to become true.
    pub async fn processed(
        &self,
        topic: &str,
        offsets: &BTreeMap<i32, i64>,
        wait: Duration,
    ) -> Result<(bool, StreamStatus), StreamError> {
        let (domain, def) = self
            .domains
            .stream(topic)
            .ok_or_else(|| StreamError::UnknownStream(topic.to_string()))?;
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let status = self.stream_status(&domain, &def).await?;
            let done = status.subscribers.iter().all(|s| {
                offsets
                    .iter()
                    .all(|(p, o)| s.positions.get(p).is_some_and(|at| at > o))
            });
            if done || tokio::time::Instant::now() >= deadline {
                return Ok((done, status));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// `GET /v1/status` and `GET /v1/consistency`.
pub fn status_router(status: Arc<StatusService>) -> axum::Router {
    use axum::routing::get;
    axum::Router::new()
        .route("/v1/status", get(api::all))
        .route("/v1/consistency", get(api::consistency))
        .with_state(status)
}

mod api {
    use std::sync::Arc;
    use std::time::Duration;

    use axum::extract::{Query, State};
    use axum::http::{header, StatusCode};
    use axum::response::{IntoResponse, Response};
    use serde::Deserialize;
    use serde_json::json;

    use super::StatusService;
    use crate::streams::Positions;

    /// The longest `wait` a consistency check may ask for.
    const MAX_WAIT: Duration = Duration::from_secs(60);

    fn answer(status: StatusCode, body: serde_json::Value) -> Response {
        (
            status,
            [(header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response()
    }

    pub(super) async fn all(State(s): State<Arc<StatusService>>) -> Response {
        answer(StatusCode::OK, json!(s.all().await))
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(super) struct Check {
        stream: String,
        /// An offset, with `partition`; or positions `0:12,1:40`.
        offset: String,
        partition: Option<i32>,
        /// How long to wait for every subscriber, e.g. `5s` (at most 60 s).
        wait: Option<String>,
    }

    pub(super) async fn consistency(
        State(s): State<Arc<StatusService>>,
        Query(q): Query<Check>,
    ) -> Response {
        let bad = |m: String| answer(StatusCode::UNPROCESSABLE_ENTITY, json!({"error": m}));
        let offsets = if q.offset.contains(':') {
            match Positions::parse(&q.offset) {
                Ok(p) => p.0,
                Err(e) => return bad(e),
            }
        } else {
            match q.offset.parse::<i64>() {
                Ok(o) => [(q.partition.unwrap_or(0), o)].into(),
                Err(_) => {
                    return bad(format!(
                        "offset '{}' is not a number or PARTITION:OFFSET list",
                        q.offset
                    ))
                }
            }
        };
        let wait = match q
            .wait
            .as_deref()
            .map(headwater_domains::HumanDuration::parse)
        {
            None => Duration::ZERO,
            Some(Ok(d)) => Duration::from_millis(d.millis).min(MAX_WAIT),
            Some(Err(e)) => return bad(e),
        };
        match s.processed(&q.stream, &offsets, wait).await {
            Ok((done, status)) => answer(
                StatusCode::OK,
                json!({"stream": q.stream, "offsets": offsets, "processed": done, "subscribers": status.subscribers}),
            ),
            Err(e) => answer(
                StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::BAD_REQUEST),
                json!({"error": e.to_string()}),
            ),
        }
    }
}
