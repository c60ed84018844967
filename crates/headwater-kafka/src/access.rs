//! Authorization of Kafka requests. The decisions come from the node (see [`Access`]); this
//! module applies them the way Kafka's own authorizer does, so clients react as they would to
//! a Kafka broker:
//!
//! - a refused topic is answered per partition with TOPIC_AUTHORIZATION_FAILED and left out of
//!   the request the handlers see (so it is never auto-created, written or read);
//! - a refused group is answered with GROUP_AUTHORIZATION_FAILED;
//! - a listing (every topic's metadata, every group) shows only what the caller may describe,
//!   without an error, as Kafka does.
//!
//! Every refusal that reaches the client is reported to [`Access::refused`] for the audit trail.

use headwater_auth::{Principal, TopicOp, Users};
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::describe_configs_response::DescribeConfigsResult;
use kafka_protocol::messages::describe_groups_response::DescribedGroup;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::metadata_response::MetadataResponseTopic;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::OffsetFetchResponseGroup;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{
    FindCoordinatorResponse, GroupId, HeartbeatResponse, JoinGroupResponse, LeaveGroupResponse,
    OffsetCommitResponse, OffsetFetchResponse, RequestKind, ResponseKind, SyncGroupResponse,
    TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

/// What the node decides about a principal's requests, and where refusals go.
pub trait Access: Send + Sync + std::fmt::Debug {
    /// The principals that may sign in, and how.
    fn users(&self) -> &Users;
    fn topic(&self, who: &Principal, op: TopicOp, topic: &str) -> Result<(), String>;
    fn group(&self, who: &Principal, group: &str) -> Result<(), String>;
    /// Node-wide changes (broker configs).
    fn node_wide(&self, who: &Principal, what: &str) -> Result<(), String>;
    /// A refusal the client was told about: `action` on `target`, and why.
    fn refused(&self, who: &Principal, action: &str, target: &str, why: &str);
    /// A failed sign-in: the user name the client gave, its mechanism and address.
    fn sign_in_failed(&self, user: &str, mechanism: &str, peer: &str, why: &str);
}

const TOPIC_DENIED: i16 = 29; // TOPIC_AUTHORIZATION_FAILED
const GROUP_DENIED: i16 = 30; // GROUP_AUTHORIZATION_FAILED
const CLUSTER_DENIED: i16 = 31; // CLUSTER_AUTHORIZATION_FAILED
const TOPIC_RESOURCE: i8 = 2;

/// A group request passed on when its group is allowed, else answered GROUP_AUTHORIZATION_FAILED.
macro_rules! group_gate {
    ($guard:expr, $r:expr, $kind:ident, $response:ident) => {
        match $guard.group(&$r.group_id.0) {
            Ok(()) => RequestKind::$kind($r),
            Err(_) => {
                return Checked::Answer(ResponseKind::$kind(
                    $response::default().with_error_code(GROUP_DENIED),
                ))
            }
        }
    };
}

/// One caller's requests checked against [`Access`].
pub(crate) struct Guard<'a> {
    pub access: &'a dyn Access,
    pub who: &'a Principal,
    /// The request's version: error messages exist only in some versions of each response.
    pub version: i16,
}

/// Parts of a request refused before it was handled, merged into its response afterwards.
#[derive(Default)]
pub(crate) struct Refused {
    /// Topic (or group) and partitions refused, with why.
    topics: Vec<(TopicName, Vec<i32>, String)>,
}

/// What to do with a request after the check.
pub(crate) enum Checked {
    Handle(RequestKind, Refused),
    /// Refused as a whole: this is the answer.
    Answer(ResponseKind),
}

impl Guard<'_> {
    fn topic(&self, op: TopicOp, topic: &str) -> Result<(), String> {
        self.access.topic(self.who, op, topic).inspect_err(|why| {
            self.access.refused(self.who, op.verb(), topic, why);
        })
    }

    fn group(&self, group: &str) -> Result<(), String> {
        self.access.group(self.who, group).inspect_err(|why| {
            self.access.refused(self.who, "use group", group, why);
        })
    }

    /// Whether `topic` may be seen in a listing; no refusal is recorded.
    fn visible(&self, topic: &str) -> bool {
        self.access
            .topic(self.who, TopicOp::Describe, topic)
            .is_ok()
    }

    /// Splits `items` into those allowed and the refused topics with their partitions.
    fn split<T>(
        &self,
        op: TopicOp,
        items: Vec<T>,
        name: impl Fn(&T) -> &TopicName,
        partitions: impl Fn(&T) -> Vec<i32>,
        refused: &mut Refused,
    ) -> Vec<T> {
        let mut kept = Vec::with_capacity(items.len());
        for item in items {
            match self.topic(op, &name(&item).0) {
                Ok(()) => kept.push(item),
                Err(why) => refused
                    .topics
                    .push((name(&item).clone(), partitions(&item), why)),
            }
        }
        kept
    }

    /// The groups allowed; the others are set aside in `refused` to be answered
    /// GROUP_AUTHORIZATION_FAILED.
    fn split_groups(&self, groups: Vec<GroupId>, refused: &mut Refused) -> Vec<GroupId> {
        let (kept, denied): (Vec<_>, Vec<_>) =
            groups.into_iter().partition(|g| self.group(&g.0).is_ok());
        refused.topics.extend(
            denied
                .into_iter()
                .map(|g| (TopicName(g.0), Vec::new(), String::new())),
        );
        kept
    }

    pub(crate) fn check(&self, request: RequestKind) -> Checked {
        let mut refused = Refused::default();
        let request = match request {
            RequestKind::Produce(mut r) => {
                r.topic_data = self.split(
                    TopicOp::Produce,
                    std::mem::take(&mut r.topic_data),
                    |t| &t.name,
                    |t| t.partition_data.iter().map(|p| p.index).collect(),
                    &mut refused,
                );
                RequestKind::Produce(r)
            }
            RequestKind::Fetch(mut r) => {
                r.topics = self.split(
                    TopicOp::Consume,
                    std::mem::take(&mut r.topics),
                    |t| &t.topic,
                    |t| t.partitions.iter().map(|p| p.partition).collect(),
                    &mut refused,
                );
                RequestKind::Fetch(r)
            }
            RequestKind::ListOffsets(mut r) => {
                r.topics = self.split(
                    TopicOp::Consume,
                    std::mem::take(&mut r.topics),
                    |t| &t.name,
                    |t| t.partitions.iter().map(|p| p.partition_index).collect(),
                    &mut refused,
                );
                RequestKind::ListOffsets(r)
            }
            RequestKind::Metadata(mut r) => {
                if let Some(list) = r.topics.as_mut().filter(|l| !l.is_empty()) {
                    list.retain(|t| match &t.name {
                        Some(name) => match self.topic(TopicOp::Describe, &name.0) {
                            Ok(()) => true,
                            Err(why) => {
                                refused.topics.push((name.clone(), Vec::new(), why));
                                false
                            }
                        },
                        None => true,
                    });
                    if list.is_empty() {
                        // Every topic asked for was refused (an empty list asks for all in
                        // v0; the answer is filtered to what may be seen either way).
                        r.allow_auto_topic_creation = false;
                    }
                }
                RequestKind::Metadata(r)
            }
            RequestKind::OffsetCommit(mut r) => {
                if self.group(&r.group_id.0).is_err() {
                    let topics = r
                        .topics
                        .iter()
                        .map(|t| {
                            OffsetCommitResponseTopic::default()
                                .with_name(t.name.clone())
                                .with_partitions(
                                    t.partitions
                                        .iter()
                                        .map(|p| {
                                            OffsetCommitResponsePartition::default()
                                                .with_partition_index(p.partition_index)
                                                .with_error_code(GROUP_DENIED)
                                        })
                                        .collect(),
                                )
                        })
                        .collect();
                    return Checked::Answer(ResponseKind::OffsetCommit(
                        OffsetCommitResponse::default().with_topics(topics),
                    ));
                }
                r.topics = self.split(
                    TopicOp::Consume,
                    std::mem::take(&mut r.topics),
                    |t| &t.name,
                    |t| t.partitions.iter().map(|p| p.partition_index).collect(),
                    &mut refused,
                );
                RequestKind::OffsetCommit(r)
            }
            RequestKind::OffsetFetch(r) => {
                let groups: Vec<&str> = if r.groups.is_empty() {
                    vec![&r.group_id.0]
                } else {
                    r.groups.iter().map(|g| &*g.group_id.0).collect()
                };
                let denied: Vec<&str> = groups
                    .iter()
                    .copied()
                    .filter(|g| self.group(g).is_err())
                    .collect();
                if !denied.is_empty() {
                    let per_group = r
                        .groups
                        .iter()
                        .map(|g| {
                            let code = if denied.contains(&&*g.group_id.0) {
                                GROUP_DENIED
                            } else {
                                // Answered together: retry it on its own.
                                ResponseError::CoordinatorLoadInProgress.code()
                            };
                            OffsetFetchResponseGroup::default()
                                .with_group_id(g.group_id.clone())
                                .with_error_code(code)
                        })
                        .collect();
                    return Checked::Answer(ResponseKind::OffsetFetch(
                        OffsetFetchResponse::default()
                            .with_error_code(GROUP_DENIED)
                            .with_groups(per_group),
                    ));
                }
                RequestKind::OffsetFetch(r)
            }
            RequestKind::JoinGroup(r) => match self.group(&r.group_id.0) {
                Ok(()) => RequestKind::JoinGroup(r),
                Err(_) => {
                    return Checked::Answer(ResponseKind::JoinGroup(
                        JoinGroupResponse::default()
                            .with_error_code(GROUP_DENIED)
                            .with_generation_id(-1),
                    ))
                }
            },
            RequestKind::SyncGroup(r) => group_gate!(self, r, SyncGroup, SyncGroupResponse),
            RequestKind::Heartbeat(r) => group_gate!(self, r, Heartbeat, HeartbeatResponse),
            RequestKind::LeaveGroup(r) => group_gate!(self, r, LeaveGroup, LeaveGroupResponse),
            RequestKind::FindCoordinator(r) => {
                // Key type 0 is a consumer group; 1 (transactions) is refused by the handler.
                let keys: Vec<StrBytes> = if r.coordinator_keys.is_empty() {
                    vec![r.key.clone()]
                } else {
                    r.coordinator_keys.clone()
                };
                let denied: Vec<String> = if r.key_type == 0 {
                    keys.iter().filter_map(|k| self.group(k).err()).collect()
                } else {
                    Vec::new()
                };
                if let Some(why) = denied.first() {
                    let why = (self.version >= 1).then(|| StrBytes::from_string(why.clone()));
                    let batched = !r.coordinator_keys.is_empty();
                    let coordinators = keys
                        .iter()
                        .map(|k| {
                            Coordinator::default()
                                .with_key(k.clone())
                                .with_node_id((-1).into())
                                .with_error_code(GROUP_DENIED)
                                .with_error_message(why.clone())
                        })
                        .collect();
                    // v4 answers per key; earlier versions have one answer and no list.
                    let answer = if batched {
                        FindCoordinatorResponse::default().with_coordinators(coordinators)
                    } else {
                        FindCoordinatorResponse::default()
                            .with_error_code(GROUP_DENIED)
                            .with_error_message(why)
                            .with_node_id((-1).into())
                    };
                    return Checked::Answer(ResponseKind::FindCoordinator(answer));
                }
                RequestKind::FindCoordinator(r)
            }
            RequestKind::DescribeGroups(mut r) => {
                r.groups = self.split_groups(std::mem::take(&mut r.groups), &mut refused);
                RequestKind::DescribeGroups(r)
            }
            RequestKind::DeleteGroups(mut r) => {
                r.groups_names =
                    self.split_groups(std::mem::take(&mut r.groups_names), &mut refused);
                RequestKind::DeleteGroups(r)
            }
            RequestKind::CreateTopics(mut r) => {
                r.topics = self.split(
                    TopicOp::Administer,
                    std::mem::take(&mut r.topics),
                    |t| &t.name,
                    |_| Vec::new(),
                    &mut refused,
                );
                RequestKind::CreateTopics(r)
            }
            RequestKind::DeleteTopics(mut r) => {
                r.topic_names = self.split(
                    TopicOp::Administer,
                    std::mem::take(&mut r.topic_names),
                    |t| t,
                    |_| Vec::new(),
                    &mut refused,
                );
                RequestKind::DeleteTopics(r)
            }
            RequestKind::CreatePartitions(mut r) => {
                r.topics = self.split(
                    TopicOp::Administer,
                    std::mem::take(&mut r.topics),
                    |t| &t.name,
                    |_| Vec::new(),
                    &mut refused,
                );
                RequestKind::CreatePartitions(r)
            }
            RequestKind::DescribeConfigs(mut r) => {
                r.resources.retain(|res| {
                    if res.resource_type != TOPIC_RESOURCE {
                        return true;
                    }
                    match self.topic(TopicOp::Describe, &res.resource_name) {
                        Ok(()) => true,
                        Err(why) => {
                            refused.topics.push((
                                TopicName(res.resource_name.clone()),
                                Vec::new(),
                                why,
                            ));
                            false
                        }
                    }
                });
                RequestKind::DescribeConfigs(r)
            }
            RequestKind::IncrementalAlterConfigs(mut r) => {
                let mut nodewide = Vec::new();
                r.resources.retain(|res| {
                    let checked = if res.resource_type == TOPIC_RESOURCE {
                        self.topic(TopicOp::Administer, &res.resource_name)
                    } else {
                        let what = format!("broker config {}", &*res.resource_name);
                        let decided = self.access.node_wide(self.who, &what);
                        if let Err(why) = &decided {
                            self.access.refused(self.who, "administer", &what, why);
                            nodewide.push((res.resource_type, res.resource_name.clone()));
                        }
                        decided
                    };
                    match checked {
                        Ok(()) => true,
                        Err(why) => {
                            if res.resource_type == TOPIC_RESOURCE {
                                refused.topics.push((
                                    TopicName(res.resource_name.clone()),
                                    Vec::new(),
                                    why,
                                ));
                            }
                            false
                        }
                    }
                });
                refused
                    .topics
                    .extend(nodewide.into_iter().map(|(kind, name)| {
                        (TopicName(name), vec![i32::from(kind)], "node-wide".into())
                    }));
                RequestKind::IncrementalAlterConfigs(r)
            }
            other => other,
        };
        Checked::Handle(request, refused)
    }

    /// Adds the refused parts back into `response`, and filters listings.
    pub(crate) fn merge(&self, response: ResponseKind, refused: Refused) -> ResponseKind {
        let message = |why: &str| Some(StrBytes::from_string(why.to_string()));
        // Produce carries a message from v8, DeleteTopics from v5.
        let message_from =
            |v: i16, why: &str| (self.version >= v).then(|| StrBytes::from_string(why.to_string()));
        match response {
            ResponseKind::Produce(mut r) => {
                for (name, partitions, why) in refused.topics {
                    r.responses.push(
                        TopicProduceResponse::default()
                            .with_name(name)
                            .with_partition_responses(
                                partitions
                                    .into_iter()
                                    .map(|p| {
                                        PartitionProduceResponse::default()
                                            .with_index(p)
                                            .with_error_code(TOPIC_DENIED)
                                            .with_base_offset(-1)
                                            .with_error_message(message_from(8, &why))
                                    })
                                    .collect(),
                            ),
                    );
                }
                ResponseKind::Produce(r)
            }
            ResponseKind::Fetch(mut r) => {
                for (name, partitions, _) in refused.topics {
                    r.responses.push(
                        FetchableTopicResponse::default()
                            .with_topic(name)
                            .with_partitions(
                                partitions
                                    .into_iter()
                                    .map(|p| {
                                        PartitionData::default()
                                            .with_partition_index(p)
                                            .with_error_code(TOPIC_DENIED)
                                            .with_high_watermark(-1)
                                    })
                                    .collect(),
                            ),
                    );
                }
                ResponseKind::Fetch(r)
            }
            ResponseKind::ListOffsets(mut r) => {
                for (name, partitions, _) in refused.topics {
                    r.topics.push(
                        ListOffsetsTopicResponse::default()
                            .with_name(name)
                            .with_partitions(
                                partitions
                                    .into_iter()
                                    .map(|p| {
                                        ListOffsetsPartitionResponse::default()
                                            .with_partition_index(p)
                                            .with_error_code(TOPIC_DENIED)
                                            .with_offset(-1)
                                            .with_timestamp(-1)
                                    })
                                    .collect(),
                            ),
                    );
                }
                ResponseKind::ListOffsets(r)
            }
            ResponseKind::Metadata(mut r) => {
                // Every answer, not only listings: a topic asked for by id had no name to
                // check before the handler ran.
                r.topics
                    .retain(|t| t.name.as_ref().is_some_and(|n| self.visible(&n.0)));
                for (name, _, _) in refused.topics {
                    r.topics.push(
                        MetadataResponseTopic::default()
                            .with_name(Some(name))
                            .with_error_code(TOPIC_DENIED),
                    );
                }
                ResponseKind::Metadata(r)
            }
            ResponseKind::OffsetCommit(mut r) => {
                for (name, partitions, _) in refused.topics {
                    r.topics.push(
                        OffsetCommitResponseTopic::default()
                            .with_name(name)
                            .with_partitions(
                                partitions
                                    .into_iter()
                                    .map(|p| {
                                        OffsetCommitResponsePartition::default()
                                            .with_partition_index(p)
                                            .with_error_code(TOPIC_DENIED)
                                    })
                                    .collect(),
                            ),
                    );
                }
                ResponseKind::OffsetCommit(r)
            }
            ResponseKind::DescribeGroups(mut r) => {
                for (group, _, _) in refused.topics {
                    r.groups.push(
                        DescribedGroup::default()
                            .with_group_id(GroupId(group.0))
                            .with_error_code(GROUP_DENIED),
                    );
                }
                ResponseKind::DescribeGroups(r)
            }
            ResponseKind::DeleteGroups(mut r) => {
                for (group, _, _) in refused.topics {
                    r.results.push(
                        DeletableGroupResult::default()
                            .with_group_id(GroupId(group.0))
                            .with_error_code(GROUP_DENIED),
                    );
                }
                ResponseKind::DeleteGroups(r)
            }
            ResponseKind::ListGroups(mut r) => {
                r.groups
                    .retain(|g| self.access.group(self.who, &g.group_id.0).is_ok());
                ResponseKind::ListGroups(r)
            }
            ResponseKind::CreateTopics(mut r) => {
                for (name, _, why) in refused.topics {
                    r.topics.push(
                        CreatableTopicResult::default()
                            .with_name(name)
                            .with_error_code(TOPIC_DENIED)
                            .with_error_message(message(&why))
                            .with_num_partitions(-1)
                            .with_replication_factor(-1),
                    );
                }
                ResponseKind::CreateTopics(r)
            }
            ResponseKind::DeleteTopics(mut r) => {
                for (name, _, why) in refused.topics {
                    r.responses.push(
                        DeletableTopicResult::default()
                            .with_name(Some(name))
                            .with_error_code(TOPIC_DENIED)
                            .with_error_message(message_from(5, &why)),
                    );
                }
                ResponseKind::DeleteTopics(r)
            }
            ResponseKind::CreatePartitions(mut r) => {
                for (name, _, why) in refused.topics {
                    r.results.push(
                        CreatePartitionsTopicResult::default()
                            .with_name(name)
                            .with_error_code(TOPIC_DENIED)
                            .with_error_message(message(&why)),
                    );
                }
                ResponseKind::CreatePartitions(r)
            }
            ResponseKind::DescribeConfigs(mut r) => {
                for (name, _, why) in refused.topics {
                    r.results.push(
                        DescribeConfigsResult::default()
                            .with_resource_type(TOPIC_RESOURCE)
                            .with_resource_name(name.0)
                            .with_error_code(TOPIC_DENIED)
                            .with_error_message(message(&why)),
                    );
                }
                ResponseKind::DescribeConfigs(r)
            }
            ResponseKind::IncrementalAlterConfigs(mut r) => {
                for (name, kind, why) in refused.topics {
                    let (code, resource_type) = match kind.first() {
                        Some(k) => (CLUSTER_DENIED, *k as i8),
                        None => (TOPIC_DENIED, TOPIC_RESOURCE),
                    };
                    r.responses.push(
                        AlterConfigsResourceResponse::default()
                            .with_resource_type(resource_type)
                            .with_resource_name(name.0)
                            .with_error_code(code)
                            .with_error_message(message(&why)),
                    );
                }
                ResponseKind::IncrementalAlterConfigs(r)
            }
            other => other,
        }
    }
}
