//! IncrementalAlterConfigs: topic configs set and deleted (broker configs are node-wide and
//! live in the node's config file).

use std::ops::RangeInclusive;
use std::sync::Arc;

use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::{client_topic, error_fields, Api, Call, TOPIC_RESOURCE};
use crate::authorize::{Checked, Guard, Refused};
use crate::error::AdminError;
use crate::Broker;

/// IncrementalAlterConfigs with SET and DELETE on topic configs.
impl Api for IncrementalAlterConfigsRequest {
    const SUPPORTED_VERSIONS: RangeInclusive<i16> = 0..=1;

    fn authorize(mut self, guard: &Guard<'_>) -> Checked<Self> {
        let mut refused = Vec::new();
        // Answered after the refused topics, in request order.
        let mut node_wide = Vec::new();
        self.resources.retain(|res| {
            if res.resource_type == TOPIC_RESOURCE {
                let name = TopicName(res.resource_name.clone());
                let keys = res.configs.iter().map(|c| &*c.name);
                return guard.keep_settings(&name, keys, &mut refused);
            }
            let what = format!("broker config {}", &*res.resource_name);
            match guard.node_wide(&what) {
                Ok(()) => true,
                Err(why) => {
                    node_wide.push(Refused::Cluster {
                        resource_type: res.resource_type,
                        name: res.resource_name.clone(),
                        why,
                    });
                    false
                }
            }
        });
        refused.extend(node_wide);
        Checked::Handle(self, refused)
    }

    async fn handle(self, call: &Call<'_>) -> Option<IncrementalAlterConfigsResponse> {
        Some(alter(call.broker, self))
    }

    fn merge(_: &Guard<'_>, mut response: Self::Response, refused: Vec<Refused>) -> Self::Response {
        for refusal in refused {
            let (code, resource_type, name, message) = match refusal {
                Refused::Topic { name, why, .. } => (
                    ResponseError::TopicAuthorizationFailed,
                    TOPIC_RESOURCE,
                    name.0,
                    why.reason,
                ),
                // The client is told only that the change is node-wide; the reason is in the
                // audit trail.
                Refused::Cluster {
                    resource_type,
                    name,
                    ..
                } => (
                    ResponseError::ClusterAuthorizationFailed,
                    resource_type,
                    name,
                    "node-wide".to_string(),
                ),
                Refused::Group { .. } => continue,
            };
            response.responses.push(
                AlterConfigsResourceResponse::default()
                    .with_resource_type(resource_type)
                    .with_resource_name(name)
                    .with_error_code(code.code())
                    .with_error_message(Some(StrBytes::from_string(message))),
            );
        }
        response
    }
}

fn alter(
    broker: &Arc<Broker>,
    req: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let responses = req
        .resources
        .into_iter()
        .map(|r| {
            let base = AlterConfigsResourceResponse::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name.clone());
            let outcome = (|| {
                if r.resource_type != TOPIC_RESOURCE {
                    return Err(AdminError::NotATopicConfig);
                }
                let mut changes = Vec::new();
                for c in &r.configs {
                    match c.config_operation {
                        0 => changes.push((
                            c.name.to_string(),
                            Some(c.value.as_ref().map(|v| v.to_string()).unwrap_or_default()),
                        )),
                        1 => changes.push((c.name.to_string(), None)),
                        op => {
                            return Err(AdminError::ListOperation {
                                op,
                                name: c.name.to_string(),
                            })
                        }
                    }
                }
                client_topic(broker, &r.resource_name, false)?;
                Ok(broker
                    .log
                    .alter_topic_config(&r.resource_name, &changes, req.validate_only)?)
            })();
            let (code, message) = error_fields(outcome);
            base.with_error_code(code).with_error_message(message)
        })
        .collect();
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}
