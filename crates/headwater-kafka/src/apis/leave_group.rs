//! LeaveGroup: members leave a group, which rebalances.

use std::ops::RangeInclusive;
use std::sync::Arc;

use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};

use super::{error_code, Api, Call};
use crate::authorize::{Checked, Guard};
use crate::Broker;

/// LeaveGroup, one member (v0-2) or several (v3+).
impl Api for LeaveGroupRequest {
    const SUPPORTED_VERSIONS: RangeInclusive<i16> = 0..=5;

    fn authorize(self, guard: &Guard<'_>) -> Checked<Self> {
        let group = self.group_id.0.clone();
        Checked::for_group(guard, &group, self)
    }

    async fn handle(self, call: &Call<'_>) -> Option<LeaveGroupResponse> {
        Some(leave(call.broker, self, call.version))
    }
}

fn leave(broker: &Arc<Broker>, req: LeaveGroupRequest, version: i16) -> LeaveGroupResponse {
    if version < 3 {
        let errs = broker
            .groups
            .leave(&req.group_id.0, &[req.member_id.to_string()]);
        return LeaveGroupResponse::default()
            .with_error_code(error_code(errs.into_iter().next().flatten()));
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
                    .with_error_code(error_code(e))
            })
            .collect(),
    )
}
