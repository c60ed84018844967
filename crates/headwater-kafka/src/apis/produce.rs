//! Produce: record batches appended as sent, after the produce gate of a validated topic.
//! Counts `headwater_produced_records` and `headwater_produced_bytes` per topic.

use std::ops::RangeInclusive;
use std::sync::Arc;

use headwater_auth::TopicOp;
use headwater_log::{FsyncPolicy, LogError, Partition, Validation};
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use kafka_protocol::ResponseError;

use super::{client_topic, refusal_message, Api, Call};
use crate::authorize::{Checked, Guard, Refused};
use crate::error::log_error_code;
use crate::Broker;
use crate::GateVerdict;

/// Produce: idempotent producers (no transactions yet), acks 0, 1 and -1.
impl Api for ProduceRequest {
    const SUPPORTED_VERSIONS: RangeInclusive<i16> = 3..=9;

    fn authorize(mut self, guard: &Guard<'_>) -> Checked<Self> {
        let refused = guard.keep_topics(TopicOp::Produce, &mut self.topic_data, |t| {
            (&t.name, t.partition_data.iter().map(|p| p.index).collect())
        });
        Checked::Handle(self, refused)
    }

    async fn handle(self, call: &Call<'_>) -> Option<ProduceResponse> {
        for t in &self.topic_data {
            call.broker.note_producer(&t.name.0, call.client_id);
        }
        produce(call.broker, self, call.version).await
    }

    fn merge(
        guard: &Guard<'_>,
        mut response: Self::Response,
        refused: Vec<Refused>,
    ) -> Self::Response {
        for (name, partitions, why) in refused.into_iter().filter_map(Refused::into_topic) {
            // Produce responses carry a message from v8.
            let message = refusal_message(guard, 8, &why);
            response.responses.push(
                TopicProduceResponse::default()
                    .with_name(name)
                    .with_partition_responses(
                        partitions
                            .into_iter()
                            .map(|p| {
                                PartitionProduceResponse::default()
                                    .with_index(p)
                                    .with_error_code(ResponseError::TopicAuthorizationFailed.code())
                                    .with_base_offset(-1)
                                    .with_error_message(message.clone())
                            })
                            .collect(),
                    ),
            );
        }
        response
    }
}

/// What to do with one partition's batches after the produce gate.
enum Gated {
    /// Append these bytes: the batches as sent.
    Append(bytes::Bytes),
    /// Append the batches the gate rebuilt from the valid records of a split.
    AppendFiltered(bytes::Bytes),
    /// Answer without appending anything here.
    Answer(PartitionProduceResponse),
}

/// Runs the gate's check on the CPU pool, not on this connection's task: decoding and checking
/// a large batch takes milliseconds, and on the async workers it would stall every other
/// connection (their fetches, heartbeats and accepts) while a flood of records is checked.
/// The pool's queue is first come, first served, so one producer's flood delays another's
/// check by at most the batches queued ahead of it.
async fn check_off_thread(
    check: std::sync::Arc<dyn crate::ProduceGate>,
    topic: &str,
    index: i32,
    records: &bytes::Bytes,
    dead_letter: bool,
) -> GateVerdict {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let (topic_owned, records_owned) = (topic.to_string(), records.clone());
    rayon::spawn(move || {
        // A panic in a check must fail this produce, not abort the node (rayon's default).
        let verdict = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            check.check(&topic_owned, index, &records_owned, dead_letter)
        }));
        if let Ok(v) = verdict {
            let _ = tx.send(v);
        }
    });
    rx.await.unwrap_or_else(|_| GateVerdict::Reject {
        record_errors: Vec::new(),
        message: format!("the contract check of '{topic}' partition {index} did not finish"),
    })
}

/// Runs the produce gate for a topic that validates records.
async fn gate(
    broker: &Broker,
    topic: &str,
    validation: Validation,
    index: i32,
    records: bytes::Bytes,
    version: i16,
    base: PartitionProduceResponse,
) -> Gated {
    if validation == Validation::None {
        return Gated::Append(records);
    }
    let Some(check) = broker.gate.clone() else {
        return Gated::Append(records);
    };
    let verdict = check_off_thread(
        check,
        topic,
        index,
        &records,
        validation == Validation::DeadLetter,
    )
    .await;
    match verdict {
        GateVerdict::Pass => Gated::Append(records),
        GateVerdict::Reject {
            record_errors,
            message,
        } => {
            tracing::info!(
                topic,
                partition = index,
                "produce refused by the contract: {message}"
            );
            // Per-record errors exist from Produce v8 (KIP-467); older clients get the code.
            let record_errors = if version >= 8 {
                record_errors
            } else {
                Vec::new()
            };
            Gated::Answer(
                base.with_error_code(ResponseError::InvalidRecord.code())
                    .with_error_message(Some(Broker::str(message)))
                    .with_record_errors(
                        record_errors
                            .into_iter()
                            .map(|(i, m)| {
                                BatchIndexAndErrorMessage::default()
                                    .with_batch_index(i)
                                    .with_batch_index_error_message(Some(Broker::str(m)))
                            })
                            .collect(),
                    ),
            )
        }
        GateVerdict::Split {
            valid,
            dead,
            dead_letter_topic,
            message,
        } => {
            let stored = broker
                .log
                .partition(&dead_letter_topic, 0)
                .and_then(|p| p.append(&dead));
            if let Err(e) = stored {
                tracing::error!(
                    topic,
                    "dead-letter topic {dead_letter_topic} refused records: {e}"
                );
                return Gated::Answer(
                    base.with_error_code(log_error_code(&e).code())
                        .with_error_message(Some(Broker::str(format!(
                            "invalid records could not be dead-lettered to {dead_letter_topic}: {e}"
                        )))),
                );
            }
            tracing::info!(topic, partition = index, dead_letter_topic = %dead_letter_topic, "dead-lettered: {message}");
            Gated::AppendFiltered(valid)
        }
    }
}

/// Appends every partition's batches as sent; with acks=-1 or 1 under the `always` policy, waits
/// for the shared fsync before answering. Returns `None` for acks=0 (no response is sent).
async fn produce(
    broker: &Arc<Broker>,
    req: ProduceRequest,
    version: i16,
) -> Option<ProduceResponse> {
    let acks = req.acks;
    let transactional = req.transactional_id.is_some();
    let mut responses = Vec::with_capacity(req.topic_data.len());
    // Partitions whose appends must be synced before the answer, with the offset to sync to.
    let mut to_sync: Vec<(Arc<Partition>, i64, usize, usize)> = Vec::new();
    for topic_data in req.topic_data {
        let name = topic_data.name.0.to_string();
        let topic = client_topic(broker, &name, true);
        let validation = topic
            .as_ref()
            .map(|t| t.config().validation)
            .unwrap_or_default();
        let mut parts = Vec::with_capacity(topic_data.partition_data.len());
        for pd in topic_data.partition_data {
            let base = PartitionProduceResponse::default()
                .with_index(pd.index)
                .with_base_offset(-1)
                .with_log_append_time_ms(-1)
                .with_log_start_offset(-1);
            let fail = |code: ResponseError, msg: String| {
                tracing::debug!(topic = %name, partition = pd.index, "produce refused: {msg}");
                base.clone()
                    .with_error_code(code.code())
                    .with_error_message(Some(Broker::str(msg)))
            };
            if transactional {
                parts.push(fail(
                    ResponseError::InvalidRecord,
                    "transactional produce is not supported yet".to_string(),
                ));
                continue;
            }
            let partition = match &topic {
                Ok(t) => t.partition(pd.index),
                Err(e) => {
                    parts.push(fail(ResponseError::UnknownTopicOrPartition, e.to_string()));
                    continue;
                }
            };
            let Some(partition) = partition else {
                let missing = LogError::UnknownPartition {
                    topic: name.clone(),
                    partition: pd.index,
                };
                parts.push(fail(
                    ResponseError::UnknownTopicOrPartition,
                    missing.to_string(),
                ));
                continue;
            };
            let Some(records) = pd.records else {
                parts.push(fail(
                    ResponseError::CorruptMessage,
                    "produce request carries no records".to_string(),
                ));
                continue;
            };
            let appended = match gate(
                broker,
                &name,
                validation,
                pd.index,
                records,
                version,
                base.clone(),
            )
            .await
            {
                Gated::Append(bytes) => (partition.append(&bytes), bytes),
                Gated::AppendFiltered(bytes) => (partition.append_filtered(&bytes), bytes),
                Gated::Answer(response) => {
                    parts.push(response);
                    continue;
                }
            };
            let (appended, stored) = appended;
            match appended {
                Ok(out) => {
                    if !out.duplicate {
                        broker.metrics().produced(&name, &stored);
                    }
                    if acks != 0
                        && !out.duplicate
                        && partition.fsync_policy() == FsyncPolicy::Always
                    {
                        to_sync.push((
                            partition.clone(),
                            out.last_offset + 1,
                            responses.len(),
                            parts.len(),
                        ));
                    }
                    parts.push(
                        base.with_base_offset(out.base_offset)
                            .with_log_start_offset(out.log_start_offset),
                    );
                }
                Err(e) => {
                    if matches!(e, LogError::Io { .. }) {
                        // The disk failed (full, read-only, I/O error): the operator must know.
                        tracing::error!(topic = %name, partition = pd.index, "append failed, answering KAFKA_STORAGE_ERROR: {e}");
                    }
                    parts.push(fail(log_error_code(&e), e.to_string()))
                }
            }
        }
        responses.push(
            TopicProduceResponse::default()
                .with_name(topic_data.name)
                .with_partition_responses(parts),
        );
    }
    // Wait for the shared fsyncs without holding a thread (group commit, see headwater-log).
    for (partition, offset, t, p) in to_sync {
        if let Err(e) = partition.wait_durable(offset).await {
            tracing::error!("fsync failed, answering KAFKA_STORAGE_ERROR: {e}");
            if let Some(r) = responses
                .get_mut(t)
                .and_then(|t| t.partition_responses.get_mut(p))
            {
                r.error_code = ResponseError::KafkaStorageError.code();
                r.error_message = Some(Broker::str(e.to_string()));
            }
        }
    }
    if acks == 0 {
        return None;
    }
    Some(ProduceResponse::default().with_responses(responses))
}
