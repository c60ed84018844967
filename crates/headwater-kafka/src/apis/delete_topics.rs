//! DeleteTopics: topics deleted from the log, each reported to the node's audit trail.

use std::ops::RangeInclusive;
use std::sync::Arc;

use headwater_auth::TopicOp;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse, TopicName};
use kafka_protocol::ResponseError;

use super::{error_fields, not_reserved, refusal_message, Api, Call};
use crate::authorize::{answer_topics, Checked, Guard, Refused};
use crate::error::AdminError;
use crate::Broker;

/// DeleteTopics by name (topic ids arrive with v6).
impl Api for DeleteTopicsRequest {
    const SUPPORTED_VERSIONS: RangeInclusive<i16> = 1..=5;

    fn authorize(mut self, guard: &Guard<'_>) -> Checked<Self> {
        let refused = guard.keep_topics(TopicOp::Administer, &mut self.topic_names, |t| {
            (t, Vec::new())
        });
        Checked::Handle(self, refused)
    }

    async fn handle(self, call: &Call<'_>) -> Option<DeleteTopicsResponse> {
        Some(delete(call.broker, self))
    }

    fn merge(
        guard: &Guard<'_>,
        mut response: Self::Response,
        refused: Vec<Refused>,
    ) -> Self::Response {
        response
            .responses
            .extend(answer_topics(refused, |name, _, why| {
                DeletableTopicResult::default()
                    .with_name(Some(name))
                    .with_error_code(ResponseError::TopicAuthorizationFailed.code())
                    // DeleteTopics responses carry a message from v5.
                    .with_error_message(refusal_message(guard, 5, &why))
            }));
        response
    }
}

fn delete(broker: &Arc<Broker>, req: DeleteTopicsRequest) -> DeleteTopicsResponse {
    let mut names: Vec<String> = req.topic_names.iter().map(|n| n.0.to_string()).collect();
    names.extend(
        req.topics
            .iter()
            .filter_map(|t| t.name.as_ref().map(|n| n.0.to_string())),
    );
    let responses = names
        .into_iter()
        .map(|name| {
            let outcome = not_reserved(&name)
                .and_then(|()| broker.log.delete_topic(&name).map_err(AdminError::from));
            if outcome.is_ok() {
                broker.report_admin(crate::AdminChange {
                    action: "topic.delete",
                    topic: name.clone(),
                    principal: super::caller(),
                });
            }
            let (code, message) = error_fields(outcome);
            DeletableTopicResult::default()
                .with_name(Some(TopicName(Broker::str(name))))
                .with_error_code(code)
                .with_error_message(message)
        })
        .collect();
    DeleteTopicsResponse::default().with_responses(responses)
}
