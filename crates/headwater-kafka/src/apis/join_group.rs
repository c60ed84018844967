//! JoinGroup: a member joins a consumer group, starting or joining a rebalance.

use std::ops::RangeInclusive;
use std::sync::Arc;

use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse};
use kafka_protocol::ResponseError;

use super::{error_code, Api, Call};
use crate::authorize::{Checked, Guard};
use crate::Broker;

/// JoinGroup of the classic protocol; the first member leads.
impl Api for JoinGroupRequest {
    const SUPPORTED_VERSIONS: RangeInclusive<i16> = 0..=9;

    fn authorize(self, guard: &Guard<'_>) -> Checked<Self> {
        Checked::whole(guard.group(&self.group_id.0), self, || {
            JoinGroupResponse::default()
                .with_error_code(ResponseError::GroupAuthorizationFailed.code())
                .with_generation_id(-1)
        })
    }

    async fn handle(self, call: &Call<'_>) -> Option<JoinGroupResponse> {
        Some(join(call.broker, self, call.version, call.client_id, call.peer).await)
    }
}

async fn join(
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
        .with_error_code(error_code(out.error))
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
