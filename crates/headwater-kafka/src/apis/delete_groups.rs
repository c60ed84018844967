//! DeleteGroups: empty groups and their committed offsets deleted.

use std::ops::RangeInclusive;
use std::sync::Arc;

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};
use kafka_protocol::ResponseError;

use super::{error_code, Api, Call};
use crate::authorize::{answer_groups, Checked, Guard, Refused};
use crate::Broker;

/// DeleteGroups.
impl Api for DeleteGroupsRequest {
    const SUPPORTED_VERSIONS: RangeInclusive<i16> = 0..=2;

    fn authorize(mut self, guard: &Guard<'_>) -> Checked<Self> {
        let refused = guard.keep_groups(&mut self.groups_names);
        Checked::Handle(self, refused)
    }

    async fn handle(self, call: &Call<'_>) -> Option<DeleteGroupsResponse> {
        Some(delete(call.broker, self))
    }

    fn merge(_: &Guard<'_>, mut response: Self::Response, refused: Vec<Refused>) -> Self::Response {
        response.results.extend(answer_groups(refused, |id| {
            DeletableGroupResult::default()
                .with_group_id(id)
                .with_error_code(ResponseError::GroupAuthorizationFailed.code())
        }));
        response
    }
}

fn delete(broker: &Arc<Broker>, req: DeleteGroupsRequest) -> DeleteGroupsResponse {
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
                .with_error_code(error_code(e))
        })
        .collect();
    DeleteGroupsResponse::default().with_results(results)
}
