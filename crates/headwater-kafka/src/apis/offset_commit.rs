//! OffsetCommit: a group's consumed offsets stored durably.

use std::ops::RangeInclusive;
use std::sync::Arc;

use headwater_auth::TopicOp;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};
use kafka_protocol::ResponseError;

use super::{client_topic, error_code, Api, Call};
use crate::authorize::{Checked, Guard, Refused};
use crate::groups::store::Committed;
use crate::groups::MemberClaim;
use crate::Broker;

/// OffsetCommit, from members of a group or from a consumer without one (generation -1).
impl Api for OffsetCommitRequest {
    const SUPPORTED_VERSIONS: RangeInclusive<i16> = 2..=8;

    fn authorize(mut self, guard: &Guard<'_>) -> Checked<Self> {
        if guard.group(&self.group_id.0).is_err() {
            let code = ResponseError::GroupAuthorizationFailed.code();
            let topics = self
                .topics
                .iter()
                .map(|t| {
                    let partitions = t.partitions.iter().map(|p| p.partition_index);
                    refused_topic(t.name.clone(), partitions, code)
                })
                .collect();
            return Checked::Answer(OffsetCommitResponse::default().with_topics(topics));
        }
        let refused = guard.keep_topics(TopicOp::Consume, &mut self.topics, |t| {
            (
                &t.name,
                t.partitions.iter().map(|p| p.partition_index).collect(),
            )
        });
        Checked::Handle(self, refused)
    }

    async fn handle(self, call: &Call<'_>) -> Option<OffsetCommitResponse> {
        Some(offset_commit(call.broker, self).await)
    }

    fn merge(_: &Guard<'_>, mut response: Self::Response, refused: Vec<Refused>) -> Self::Response {
        let code = ResponseError::TopicAuthorizationFailed.code();
        for (name, partitions, _) in refused.into_iter().filter_map(Refused::into_topic) {
            response
                .topics
                .push(refused_topic(name, partitions.into_iter(), code));
        }
        response
    }
}

/// A topic of the answer whose every partition is refused with `code`.
fn refused_topic(
    name: kafka_protocol::messages::TopicName,
    partitions: impl Iterator<Item = i32>,
    code: i16,
) -> OffsetCommitResponseTopic {
    OffsetCommitResponseTopic::default()
        .with_name(name)
        .with_partitions(
            partitions
                .map(|p| {
                    OffsetCommitResponsePartition::default()
                        .with_partition_index(p)
                        .with_error_code(code)
                })
                .collect(),
        )
}

async fn offset_commit(broker: &Arc<Broker>, req: OffsetCommitRequest) -> OffsetCommitResponse {
    let group = req.group_id.0.to_string();
    let group_error = broker.groups.check_commit(MemberClaim {
        group_id: &group,
        member_id: &req.member_id,
        generation: req.generation_id_or_member_epoch,
    });
    let mut entries = Vec::new();
    let mut topics = Vec::new();
    for t in req.topics {
        let name = t.name.0.to_string();
        let topic = client_topic(broker, &name, false).ok();
        let mut parts = Vec::new();
        for p in t.partitions {
            let err = group_error.or_else(|| {
                topic
                    .as_ref()
                    .and_then(|t| t.partition(p.partition_index))
                    .is_none()
                    .then_some(ResponseError::UnknownTopicOrPartition)
            });
            if err.is_none() {
                entries.push((
                    (group.clone(), name.clone(), p.partition_index),
                    Some(Committed {
                        offset: p.committed_offset,
                        metadata: p.committed_metadata.map(|m| m.to_string()),
                    }),
                ));
            }
            parts.push((p.partition_index, err));
        }
        topics.push((t.name, parts));
    }
    let write_error = match broker.groups.offsets.write(entries).await {
        Ok(()) => None,
        Err(e) => {
            tracing::error!(group = %group, "could not store committed offsets: {e}");
            Some(ResponseError::KafkaStorageError)
        }
    };
    OffsetCommitResponse::default().with_topics(
        topics
            .into_iter()
            .map(|(name, parts)| {
                OffsetCommitResponseTopic::default()
                    .with_name(name)
                    .with_partitions(
                        parts
                            .into_iter()
                            .map(|(i, e)| {
                                OffsetCommitResponsePartition::default()
                                    .with_partition_index(i)
                                    .with_error_code(error_code(e.or(write_error)))
                            })
                            .collect(),
                    )
            })
            .collect(),
    )
}
