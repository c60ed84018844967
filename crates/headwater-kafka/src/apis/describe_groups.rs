//! DescribeGroups: state, protocol and members of consumer groups.

use std::ops::RangeInclusive;
use std::sync::Arc;

use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse};
use kafka_protocol::ResponseError;

use super::{Api, Call};
use crate::authorize::{answer_groups, Checked, Guard, Refused};
use crate::Broker;

/// DescribeGroups.
impl Api for DescribeGroupsRequest {
    const SUPPORTED_VERSIONS: RangeInclusive<i16> = 0..=5;

    fn authorize(mut self, guard: &Guard<'_>) -> Checked<Self> {
        let refused = guard.keep_groups(&mut self.groups);
        Checked::Handle(self, refused)
    }

    async fn handle(self, call: &Call<'_>) -> Option<DescribeGroupsResponse> {
        Some(describe(call.broker, self))
    }

    fn merge(_: &Guard<'_>, mut response: Self::Response, refused: Vec<Refused>) -> Self::Response {
        response.groups.extend(answer_groups(refused, |id| {
            DescribedGroup::default()
                .with_group_id(id)
                .with_error_code(ResponseError::GroupAuthorizationFailed.code())
        }));
        response
    }
}

fn describe(broker: &Arc<Broker>, req: DescribeGroupsRequest) -> DescribeGroupsResponse {
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
