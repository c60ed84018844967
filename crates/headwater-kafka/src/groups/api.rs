//! Kafka group requests mapped onto the [`super::Coordinator`].

use std::sync::Arc;

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::find_coordinator_response::Coordinator as CoordinatorEntry;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{
    BrokerId, DeleteGroupsRequest, DeleteGroupsResponse, DescribeGroupsRequest,
    DescribeGroupsResponse, FindCoordinatorRequest, FindCoordinatorResponse, GroupId,
    HeartbeatRequest, HeartbeatResponse, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest,
    LeaveGroupResponse, ListGroupsRequest, ListGroupsResponse, OffsetCommitRequest,
    OffsetCommitResponse, OffsetFetchRequest, OffsetFetchResponse, SyncGroupRequest,
    SyncGroupResponse, TopicName,
};
use kafka_protocol::ResponseError;

use super::store::Committed;
use crate::handlers::client_topic;
use crate::Broker;

fn code(e: Option<ResponseError>) -> i16 {
    e.map(|e| e.code()).unwrap_or(0)
}

pub(crate) fn find_coordinator(
    broker: &Arc<Broker>,
    req: FindCoordinatorRequest,
    version: i16,
) -> FindCoordinatorResponse {
    let node = &broker.node;
    let resp = FindCoordinatorResponse::default();
    if version < 4 {
        return resp
            .with_node_id(BrokerId(node.node_id))
            .with_host(Broker::str(node.host.clone()))
            .with_port(node.port);
    }
    {
        let keys = if req.coordinator_keys.is_empty() {
            vec![req.key]
        } else {
            req.coordinator_keys
        };
        resp.with_coordinators(
            keys.into_iter()
                .map(|k| {
                    CoordinatorEntry::default()
                        .with_key(k)
                        .with_node_id(BrokerId(node.node_id))
                        .with_host(Broker::str(node.host.clone()))
                        .with_port(node.port)
                })
                .collect(),
        )
    }
}

pub(crate) async fn join(
    broker: &Arc<Broker>,
    req: JoinGroupRequest,
    version: i16,
    client_id: &str,
    peer: &str,
) -> JoinGroupResponse {
    let host = peer.rsplit_once(':').map(|(h, _)| h).unwrap_or(peer);
    // v0 has no rebalance timeout; Kafka uses the session timeout for it.
    let rebalance = if version == 0 {
        req.session_timeout_ms
    } else {
        req.rebalance_timeout_ms
    };
    let out = broker
        .groups
        .join(
            &req.group_id.0,
            &req.member_id,
            req.group_instance_id.as_ref().map(|s| s.to_string()),
            client_id,
            host,
            req.session_timeout_ms,
            rebalance,
            &req.protocol_type,
            req.protocols
                .into_iter()
                .map(|p| (p.name.to_string(), p.metadata))
                .collect(),
        )
        .await;
    JoinGroupResponse::default()
        .with_error_code(code(out.error))
        .with_generation_id(out.generation)
        .with_protocol_type(out.protocol_type.map(Broker::str))
        .with_protocol_name(Some(Broker::str(out.protocol.unwrap_or_default())))
        .with_leader(Broker::str(out.leader))
        .with_member_id(Broker::str(out.member_id))
        .with_members(
            out.members
                .into_iter()
                .map(|(id, instance, meta)| {
                    JoinGroupResponseMember::default()
                        .with_member_id(Broker::str(id))
                        .with_group_instance_id(instance.map(Broker::str))
                        .with_metadata(meta)
                })
                .collect(),
        )
}

pub(crate) async fn sync(broker: &Arc<Broker>, req: SyncGroupRequest) -> SyncGroupResponse {
    let out = broker
        .groups
        .sync(
            &req.group_id.0,
            req.generation_id,
            &req.member_id,
            req.assignments
                .into_iter()
                .map(|a| (a.member_id.to_string(), a.assignment))
                .collect(),
        )
        .await;
    SyncGroupResponse::default()
        .with_error_code(code(out.error))
        .with_assignment(out.assignment)
        .with_protocol_type(out.protocol_type.map(Broker::str))
        .with_protocol_name(out.protocol.map(Broker::str))
}

pub(crate) fn heartbeat(broker: &Arc<Broker>, req: HeartbeatRequest) -> HeartbeatResponse {
    HeartbeatResponse::default().with_error_code(code(broker.groups.heartbeat(
        &req.group_id.0,
        req.generation_id,
        &req.member_id,
    )))
}

pub(crate) fn leave(
    broker: &Arc<Broker>,
    req: LeaveGroupRequest,
    version: i16,
) -> LeaveGroupResponse {
    if version < 3 {
        let errs = broker
            .groups
            .leave(&req.group_id.0, &[req.member_id.to_string()]);
        return LeaveGroupResponse::default()
            .with_error_code(code(errs.into_iter().next().flatten()));
    }
    let ids: Vec<String> = req
        .members
        .iter()
        .map(|m| m.member_id.to_string())
        .collect();
    let errs = broker.groups.leave(&req.group_id.0, &ids);
    LeaveGroupResponse::default().with_members(
        req.members
            .into_iter()
            .zip(errs)
            .map(|(m, e)| {
                MemberResponse::default()
                    .with_member_id(m.member_id)
                    .with_group_instance_id(m.group_instance_id)
                    .with_error_code(code(e))
            })
            .collect(),
    )
}

pub(crate) fn describe(broker: &Arc<Broker>, req: DescribeGroupsRequest) -> DescribeGroupsResponse {
    let groups = req
        .groups
        .into_iter()
        .map(|gid| {
            let has_offsets = !broker.groups.offsets.group(&gid.0).is_empty();
            broker.groups.with_group(&gid.0, |g| {
                let base = DescribedGroup::default().with_group_id(gid.clone());
                match g {
                    Some(g) if !g.members.is_empty() => base
                        .with_group_state(Broker::str(g.state.as_str()))
                        .with_protocol_type(Broker::str(
                            g.protocol_type.clone().unwrap_or_default(),
                        ))
                        .with_protocol_data(Broker::str(g.protocol.clone().unwrap_or_default()))
                        .with_members(
                            g.members
                                .iter()
                                .map(|m| {
                                    let meta = m
                                        .protocols
                                        .iter()
                                        .find(|(n, _)| Some(n) == g.protocol.as_ref())
                                        .map(|(_, b)| b.clone())
                                        .unwrap_or_default();
                                    DescribedGroupMember::default()
                                        .with_member_id(Broker::str(m.id.clone()))
                                        .with_group_instance_id(
                                            m.instance_id.clone().map(Broker::str),
                                        )
                                        .with_client_id(Broker::str(m.client_id.clone()))
                                        .with_client_host(Broker::str(format!("/{}", m.host)))
                                        .with_member_metadata(meta)
                                        .with_member_assignment(m.assignment.clone())
                                })
                                .collect(),
                        ),
                    // A group that had members, or has committed offsets, still exists.
                    Some(g) => base
                        .with_group_state(Broker::str(g.state.as_str()))
                        .with_protocol_type(Broker::str(
                            g.protocol_type.clone().unwrap_or_else(|| "consumer".into()),
                        )),
                    None if has_offsets => base
                        .with_group_state(Broker::str("Empty"))
                        .with_protocol_type(Broker::str("consumer")),
                    _ => base.with_group_state(Broker::str("Dead")),
                }
            })
        })
        .collect();
    DescribeGroupsResponse::default().with_groups(groups)
}

pub(crate) fn list(broker: &Arc<Broker>, req: ListGroupsRequest) -> ListGroupsResponse {
    let groups = broker
        .groups
        .list()
        .into_iter()
        .filter(|(_, _, state)| {
            req.states_filter.is_empty()
                || req
                    .states_filter
                    .iter()
                    .any(|s| s.as_str().eq_ignore_ascii_case(state))
        })
        .map(|(id, protocol_type, state)| {
            ListedGroup::default()
                .with_group_id(GroupId(Broker::str(id)))
                .with_protocol_type(Broker::str(protocol_type))
                .with_group_state(Broker::str(state))
                .with_group_type(Broker::str("classic"))
        })
        .collect();
    ListGroupsResponse::default().with_groups(groups)
}

pub(crate) fn delete(broker: &Arc<Broker>, req: DeleteGroupsRequest) -> DeleteGroupsResponse {
    let results = req
        .groups_names
        .into_iter()
        .map(|gid| {
            let broker = broker.clone();
            let id = gid.0.to_string();
            let e = tokio::task::block_in_place(|| {
                tokio::runtime::Handle::current().block_on(broker.groups.delete(&id))
            });
            DeletableGroupResult::default()
                .with_group_id(gid)
                .with_error_code(code(e))
        })
        .collect();
    DeleteGroupsResponse::default().with_results(results)
}

pub(crate) async fn offset_commit(
    broker: &Arc<Broker>,
    req: OffsetCommitRequest,
) -> OffsetCommitResponse {
    let group = req.group_id.0.to_string();
    let group_error =
        broker
            .groups
            .check_commit(&group, req.generation_id_or_member_epoch, &req.member_id);
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
                                    .with_error_code(code(e.or(write_error)))
                            })
                            .collect(),
                    )
            })
            .collect(),
    )
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

pub(crate) fn offset_fetch(
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
