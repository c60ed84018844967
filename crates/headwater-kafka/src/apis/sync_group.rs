//! SyncGroup: the end of a rebalance.

use std::ops::RangeInclusive;
use std::sync::Arc;

use kafka_protocol::messages::{SyncGroupRequest, SyncGroupResponse};

use super::{error_code, Api, Call};
use crate::authorize::{Checked, Guard};
use crate::Broker;

/// SyncGroup: the leader hands in the assignment, every member gets its part.
impl Api for SyncGroupRequest {
    const SUPPORTED_VERSIONS: RangeInclusive<i16> = 0..=5;

    fn authorize(self, guard: &Guard<'_>) -> Checked<Self> {
        let group = self.group_id.0.clone();
        Checked::for_group(guard, &group, self)
    }

    async fn handle(self, call: &Call<'_>) -> Option<SyncGroupResponse> {
        Some(sync(call.broker, self).await)
    }
}

async fn sync(broker: &Arc<Broker>, req: SyncGroupRequest) -> SyncGroupResponse {
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
        .with_error_code(error_code(out.error))
        .with_assignment(out.assignment)
        .with_protocol_type(out.protocol_type.map(Broker::str))
        .with_protocol_name(out.protocol.map(Broker::str))
}
