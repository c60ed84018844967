//! FindCoordinator: this node coordinates every group.

use std::ops::RangeInclusive;
use std::sync::Arc;

use kafka_protocol::messages::find_coordinator_response::Coordinator as CoordinatorEntry;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::{Api, Call};
use crate::authorize::{Checked, Guard};
use crate::Broker;

/// Key type 0 is a consumer group, whose use is checked; 1 (a transactional id) is not checked
/// here: transactions are refused by InitProducerId and Produce.
const GROUP_KEY: i8 = 0;

/// FindCoordinator, one key (v0-3) or a batch of keys (v4).
impl Api for FindCoordinatorRequest {
    const SUPPORTED_VERSIONS: RangeInclusive<i16> = 0..=4;

    fn authorize(self, guard: &Guard<'_>) -> Checked<Self> {
        let keys: Vec<StrBytes> = if self.coordinator_keys.is_empty() {
            vec![self.key.clone()]
        } else {
            self.coordinator_keys.clone()
        };
        let denied: Vec<_> = if self.key_type == GROUP_KEY {
            keys.iter().filter_map(|k| guard.group(k).err()).collect()
        } else {
            Vec::new()
        };
        let Some(why) = denied.first() else {
            return Checked::Handle(self, Vec::new());
        };
        let why = super::refusal_message(guard, 1, why);
        let batched = !self.coordinator_keys.is_empty();
        let code = ResponseError::GroupAuthorizationFailed.code();
        // v4 answers per key; earlier versions have one answer and no list.
        let answer = if batched {
            let coordinators = keys
                .iter()
                .map(|k| {
                    CoordinatorEntry::default()
                        .with_key(k.clone())
                        .with_node_id((-1).into())
                        .with_error_code(code)
                        .with_error_message(why.clone())
                })
                .collect();
            FindCoordinatorResponse::default().with_coordinators(coordinators)
        } else {
            FindCoordinatorResponse::default()
                .with_error_code(code)
                .with_error_message(why)
                .with_node_id((-1).into())
        };
        Checked::Answer(answer)
    }

    async fn handle(self, call: &Call<'_>) -> Option<FindCoordinatorResponse> {
        Some(find_coordinator(call.broker, self, call.version))
    }
}

fn find_coordinator(
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
