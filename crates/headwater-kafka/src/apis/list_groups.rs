//! ListGroups: the groups this node coordinates, filtered by state.

use std::ops::RangeInclusive;
use std::sync::Arc;

use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse};

use super::{Api, Call};
use crate::authorize::{Guard, Refused};
use crate::Broker;

/// ListGroups, showing a caller only the groups it may use.
impl Api for ListGroupsRequest {
    const SUPPORTED_VERSIONS: RangeInclusive<i16> = 0..=4;

    async fn handle(self, call: &Call<'_>) -> Option<ListGroupsResponse> {
        Some(list(call.broker, self))
    }

    fn merge(guard: &Guard<'_>, mut response: Self::Response, _: Vec<Refused>) -> Self::Response {
        response
            .groups
            .retain(|g| guard.group_visible(&g.group_id.0));
        response
    }
}

fn list(broker: &Arc<Broker>, req: ListGroupsRequest) -> ListGroupsResponse {
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
