//! OffsetFetch: a group's committed offsets, one group (v0-7) or several (v8).

use std::ops::RangeInclusive;
use std::sync::Arc;

use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{OffsetFetchRequest, OffsetFetchResponse, TopicName};
use kafka_protocol::ResponseError;

use super::{Api, Call};
use crate::authorize::{Checked, Guard};
use crate::groups::store::Committed;
use crate::Broker;

/// OffsetFetch.
impl Api for OffsetFetchRequest {
    const SUPPORTED_VERSIONS: RangeInclusive<i16> = 1..=8;

    fn authorize(self, guard: &Guard<'_>) -> Checked<Self> {
        let groups: Vec<&str> = if self.groups.is_empty() {
            vec![&self.group_id.0]
        } else {
            self.groups.iter().map(|g| &*g.group_id.0).collect()
        };
        let denied: Vec<&str> = groups
            .iter()
            .copied()
            .filter(|g| guard.group(g).is_err())
            .collect();
        if denied.is_empty() {
            return Checked::Handle(self, Vec::new());
        }
        let refused = ResponseError::GroupAuthorizationFailed.code();
        let per_group = self
            .groups
            .iter()
            .map(|g| {
                let code = if denied.contains(&&*g.group_id.0) {
                    refused
                } else {
                    // Answered together: retry it on its own.
                    ResponseError::CoordinatorLoadInProgress.code()
                };
                OffsetFetchResponseGroup::default()
                    .with_group_id(g.group_id.clone())
                    .with_error_code(code)
            })
            .collect();
        Checked::Answer(
            OffsetFetchResponse::default()
                .with_error_code(refused)
                .with_groups(per_group),
        )
    }

    async fn handle(self, call: &Call<'_>) -> Option<OffsetFetchResponse> {
        Some(offset_fetch(call.broker, self, call.version))
    }
}

/// Committed offsets of `group` for the requested partitions, or all of them (`None`).
/// Committed offsets per topic, in partition order.
type GroupOffsets = Vec<(String, Vec<(i32, Option<Committed>)>)>;

fn fetch_group(
    broker: &Broker,
    group: &str,
    wanted: Option<Vec<(String, Vec<i32>)>>,
) -> GroupOffsets {
    match wanted {
        Some(topics) => topics
            .into_iter()
            .map(|(t, parts)| {
                let got = parts
                    .into_iter()
                    .map(|p| (p, broker.groups.offsets.get(group, &t, p)))
                    .collect();
                (t, got)
            })
            .collect(),
        None => {
            let mut out: GroupOffsets = Vec::new();
            for ((t, p), c) in broker.groups.offsets.group(group) {
                match out.last_mut() {
                    Some((last, parts)) if *last == t => parts.push((p, Some(c))),
                    _ => out.push((t, vec![(p, Some(c))])),
                }
            }
            out
        }
    }
}

fn offset_fetch(
    broker: &Arc<Broker>,
    req: OffsetFetchRequest,
    version: i16,
) -> OffsetFetchResponse {
    if version >= 8 {
        let groups = req
            .groups
            .into_iter()
            .map(|g| {
                let wanted = g.topics.map(|ts| {
                    ts.into_iter()
                        .map(|t| (t.name.0.to_string(), t.partition_indexes))
                        .collect()
                });
                let topics = fetch_group(broker, &g.group_id.0, wanted)
                    .into_iter()
                    .map(|(t, parts)| {
                        OffsetFetchResponseTopics::default()
                            .with_name(TopicName(Broker::str(t)))
                            .with_partitions(
                                parts
                                    .into_iter()
                                    .map(|(p, c)| {
                                        OffsetFetchResponsePartitions::default()
                                            .with_partition_index(p)
                                            .with_committed_offset(
                                                c.as_ref().map(|c| c.offset).unwrap_or(-1),
                                            )
                                            .with_committed_leader_epoch(-1)
                                            .with_metadata(Some(Broker::str(
                                                c.and_then(|c| c.metadata).unwrap_or_default(),
                                            )))
                                    })
                                    .collect(),
                            )
                    })
                    .collect();
                OffsetFetchResponseGroup::default()
                    .with_group_id(g.group_id)
                    .with_topics(topics)
            })
            .collect();
        return OffsetFetchResponse::default().with_groups(groups);
    }
    let wanted = req.topics.map(|ts| {
        ts.into_iter()
            .map(|t| (t.name.0.to_string(), t.partition_indexes))
            .collect()
    });
    let topics = fetch_group(broker, &req.group_id.0, wanted)
        .into_iter()
        .map(|(t, parts)| {
            OffsetFetchResponseTopic::default()
                .with_name(TopicName(Broker::str(t)))
                .with_partitions(
                    parts
                        .into_iter()
                        .map(|(p, c)| {
                            OffsetFetchResponsePartition::default()
                                .with_partition_index(p)
                                .with_committed_offset(c.as_ref().map(|c| c.offset).unwrap_or(-1))
                                .with_committed_leader_epoch(-1)
                                .with_metadata(Some(Broker::str(
                                    c.and_then(|c| c.metadata).unwrap_or_default(),
                                )))
                        })
                        .collect(),
                )
        })
        .collect();
    OffsetFetchResponse::default().with_topics(topics)
}
