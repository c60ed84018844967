//! Fetch: record batches read straight from segment files, with long polling. Counts
//! `headwater_fetched_records` and `headwater_fetched_bytes` per topic.

use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use headwater_auth::TopicOp;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{FetchRequest, FetchResponse};
use kafka_protocol::ResponseError;

use super::{client_topic, Api, Call};
use crate::authorize::{answer_topics, Checked, Guard, Refused};
use crate::error::log_error_code;
use crate::Broker;

/// Fetch by topic name (topic ids arrive with v13).
impl Api for FetchRequest {
    const SUPPORTED_VERSIONS: RangeInclusive<i16> = 4..=12;

    fn authorize(mut self, guard: &Guard<'_>) -> Checked<Self> {
        let refused = guard.keep_topics(TopicOp::Consume, &mut self.topics, |t| {
            (&t.topic, t.partitions.iter().map(|p| p.partition).collect())
        });
        Checked::Handle(self, refused)
    }

    async fn handle(self, call: &Call<'_>) -> Option<FetchResponse> {
        Some(fetch(call.broker, self, call.version).await)
    }

    fn merge(_: &Guard<'_>, mut response: Self::Response, refused: Vec<Refused>) -> Self::Response {
        response
            .responses
            .extend(answer_topics(refused, |name, partitions, _| {
                FetchableTopicResponse::default()
                    .with_topic(name)
                    .with_partitions(
                        partitions
                            .into_iter()
                            .map(|p| {
                                PartitionData::default()
                                    .with_partition_index(p)
                                    .with_error_code(ResponseError::TopicAuthorizationFailed.code())
                                    .with_high_watermark(-1)
                            })
                            .collect(),
                    )
            }));
        response
    }
}

/// Reads each requested partition straight from its segment files (no record is decoded), and
/// long-polls until `min_bytes` are available or `max_wait_ms` passes.
async fn fetch(broker: &Arc<Broker>, req: FetchRequest, version: i16) -> FetchResponse {
    let max_wait = Duration::from_millis(req.max_wait_ms.max(0) as u64);
    let deadline = tokio::time::Instant::now() + max_wait;
    let min_bytes = req.min_bytes.max(0) as usize;
    // v3 added a response-wide limit; before it only partition limits apply.
    let max_bytes = if version >= 3 && req.max_bytes > 0 {
        req.max_bytes as usize
    } else {
        usize::MAX
    };
    loop {
        let notified = broker.log.appended().notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let (response, bytes) = read_once(broker, &req, max_bytes);
        if bytes >= min_bytes || bytes > 0 && min_bytes == 0 {
            return counted(broker, response);
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return counted(broker, response);
        }
        if tokio::time::timeout_at(deadline, notified).await.is_err() {
            // Timed out: one last read so anything that just arrived is not held back.
            return counted(broker, read_once(broker, &req, max_bytes).0);
        }
    }
}

/// Counts what the answer carries, once per answer (a long poll reads several times).
fn counted(broker: &Broker, response: FetchResponse) -> FetchResponse {
    for t in &response.responses {
        for p in &t.partitions {
            if let Some(records) = &p.records {
                broker.metrics().fetched(&t.topic.0, records);
            }
        }
    }
    response
}

fn read_once(broker: &Broker, req: &FetchRequest, max_bytes: usize) -> (FetchResponse, usize) {
    let mut total = 0usize;
    let mut topics = Vec::with_capacity(req.topics.len());
    for ft in &req.topics {
        let name = ft.topic.0.to_string();
        let topic = client_topic(broker, &name, false);
        let mut parts = Vec::with_capacity(ft.partitions.len());
        for fp in &ft.partitions {
            let base = PartitionData::default()
                .with_partition_index(fp.partition)
                .with_high_watermark(-1)
                .with_last_stable_offset(-1)
                .with_log_start_offset(-1);
            let partition = match topic.as_ref().ok().and_then(|t| t.partition(fp.partition)) {
                Some(p) => p,
                None => {
                    parts.push(base.with_error_code(ResponseError::UnknownTopicOrPartition.code()));
                    continue;
                }
            };
            let marks = partition.watermarks();
            let base = base
                .with_high_watermark(marks.high_watermark)
                .with_last_stable_offset(marks.high_watermark)
                .with_log_start_offset(marks.log_start_offset);
            let budget =
                (fp.partition_max_bytes.max(0) as usize).min(max_bytes.saturating_sub(total));
            if budget == 0 && total > 0 {
                parts.push(base.with_records(Some(Bytes::new())));
                continue;
            }
            match partition.read(fp.fetch_offset, budget.max(1)) {
                // KIP-74: only the first non-empty partition may exceed the limits (so a consumer
                // always progresses); later ones return nothing rather than overshoot.
                Ok(data) if total > 0 && data.len() > budget => {
                    parts.push(base.with_records(Some(Bytes::new())));
                }
                Ok(data) => {
                    total += data.len();
                    parts.push(base.with_records(Some(Bytes::from(data))));
                }
                Err(e) => {
                    tracing::debug!(topic = %name, partition = fp.partition, "fetch error: {e}");
                    parts.push(base.with_error_code(log_error_code(&e).code()));
                }
            }
        }
        topics.push(
            FetchableTopicResponse::default()
                .with_topic(ft.topic.clone())
                .with_topic_id(ft.topic_id)
                .with_partitions(parts),
        );
    }
    (FetchResponse::default().with_responses(topics), total)
}
