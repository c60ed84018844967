//! CreatePartitions: topics grown to more partitions.

use std::ops::RangeInclusive;
use std::sync::Arc;

use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::{error_fields, not_reserved, Api, Call};
use crate::authorize::{answer_topics, Checked, Guard, Refused};
use crate::error::AdminError;
use crate::Broker;

/// CreatePartitions, without manual assignments.
impl Api for CreatePartitionsRequest {
    const SUPPORTED_VERSIONS: RangeInclusive<i16> = 0..=3;

    fn authorize(mut self, guard: &Guard<'_>) -> Checked<Self> {
        let mut refused = Vec::new();
        self.topics
            .retain(|t| guard.keep_settings(&t.name, std::iter::once("partitions"), &mut refused));
        Checked::Handle(self, refused)
    }

    async fn handle(self, call: &Call<'_>) -> Option<CreatePartitionsResponse> {
        Some(create_partitions(call.broker, self))
    }

    fn merge(_: &Guard<'_>, mut response: Self::Response, refused: Vec<Refused>) -> Self::Response {
        response
            .results
            .extend(answer_topics(refused, |name, _, why| {
                CreatePartitionsTopicResult::default()
                    .with_name(name)
                    .with_error_code(ResponseError::TopicAuthorizationFailed.code())
                    .with_error_message(Some(StrBytes::from_string(why.reason)))
            }));
        response
    }
}

fn create_partitions(
    broker: &Arc<Broker>,
    req: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let results = req
        .topics
        .into_iter()
        .map(|t| {
            let name = t.name.0.to_string();
            let outcome = not_reserved(&name).and_then(|()| {
                if t.assignments.is_some() {
                    return Err(AdminError::AssignmentsOnGrow);
                }
                Ok(broker
                    .log
                    .create_partitions(&name, t.count, req.validate_only)?)
            });
            let (code, message) = error_fields(outcome);
            CreatePartitionsTopicResult::default()
                .with_name(t.name)
                .with_error_code(code)
                .with_error_message(message)
        })
        .collect();
    CreatePartitionsResponse::default().with_results(results)
}
