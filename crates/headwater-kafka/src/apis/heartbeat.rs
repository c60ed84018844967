//! Heartbeat: keeps a member in its group.

use std::ops::RangeInclusive;
use std::sync::Arc;

use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};

use super::{error_code, Api, Call};
use crate::authorize::{Checked, Guard};
use crate::groups::MemberClaim;
use crate::Broker;

/// Heartbeat: a member is alive, and learns of a rebalance.
impl Api for HeartbeatRequest {
    const SUPPORTED_VERSIONS: RangeInclusive<i16> = 0..=4;

    fn authorize(self, guard: &Guard<'_>) -> Checked<Self> {
        let group = self.group_id.0.clone();
        Checked::for_group(guard, &group, self)
    }

    async fn handle(self, call: &Call<'_>) -> Option<HeartbeatResponse> {
        Some(heartbeat(call.broker, self))
    }
}

fn heartbeat(broker: &Arc<Broker>, req: HeartbeatRequest) -> HeartbeatResponse {
    let claim = MemberClaim {
        group_id: &req.group_id.0,
        member_id: &req.member_id,
        generation: req.generation_id,
    };
    HeartbeatResponse::default().with_error_code(error_code(broker.groups.heartbeat(claim)))
}
