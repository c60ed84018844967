//! DescribeConfigs: a topic's effective configs and where each comes from.

use std::ops::RangeInclusive;
use std::sync::Arc;

use headwater_auth::TopicOp;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::{client_topic, Api, Call, BROKER_RESOURCE, TOPIC_RESOURCE};
use crate::authorize::{answer_topics, Checked, Guard, Refused};
use crate::error::log_error_code;
use crate::Broker;

/// Config sources as DescribeConfigs v1+ reports them.
const SOURCE_TOPIC: i8 = 1;
const SOURCE_DEFAULT: i8 = 5;

/// DescribeConfigs of topics (broker configs are answered empty).
impl Api for DescribeConfigsRequest {
    const SUPPORTED_VERSIONS: RangeInclusive<i16> = 1..=4;

    fn authorize(mut self, guard: &Guard<'_>) -> Checked<Self> {
        let mut refused = Vec::new();
        self.resources.retain(|res| {
            let name = TopicName(res.resource_name.clone());
            res.resource_type != TOPIC_RESOURCE
                || guard.keep_topic(TopicOp::Describe, &name, Vec::new(), &mut refused)
        });
        Checked::Handle(self, refused)
    }

    async fn handle(self, call: &Call<'_>) -> Option<DescribeConfigsResponse> {
        Some(describe(call.broker, self))
    }

    fn merge(_: &Guard<'_>, mut response: Self::Response, refused: Vec<Refused>) -> Self::Response {
        response
            .results
            .extend(answer_topics(refused, |name, _, why| {
                DescribeConfigsResult::default()
                    .with_resource_type(TOPIC_RESOURCE)
                    .with_resource_name(name.0)
                    .with_error_code(ResponseError::TopicAuthorizationFailed.code())
                    .with_error_message(Some(StrBytes::from_string(why.reason)))
            }));
        response
    }
}

fn describe(broker: &Arc<Broker>, req: DescribeConfigsRequest) -> DescribeConfigsResponse {
    let results = req
        .resources
        .into_iter()
        .map(|r| {
            let base = DescribeConfigsResult::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name.clone());
            match r.resource_type {
                TOPIC_RESOURCE => match client_topic(broker, &r.resource_name, false) {
                    Ok(topic) => {
                        let overrides = topic.overrides();
                        let configs = topic
                            .config()
                            .entries()
                            .into_iter()
                            .filter(|(k, _)| {
                                r.configuration_keys
                                    .as_ref()
                                    .is_none_or(|keys| keys.iter().any(|w| w.as_str() == *k))
                            })
                            .map(|(k, v)| {
                                let source = if overrides.contains_key(k) {
                                    SOURCE_TOPIC
                                } else {
                                    SOURCE_DEFAULT
                                };
                                DescribeConfigsResourceResult::default()
                                    .with_name(Broker::str(k))
                                    .with_value(Some(Broker::str(v)))
                                    .with_config_source(source)
                            })
                            .collect();
                        base.with_configs(configs)
                    }
                    Err(e) => base
                        .with_error_code(log_error_code(&e).code())
                        .with_error_message(Some(Broker::str(e.to_string()))),
                },
                // Broker settings live in the node's config file; nothing is exposed here yet.
                BROKER_RESOURCE => base,
                other => base
                    .with_error_code(ResponseError::InvalidRequest.code())
                    .with_error_message(Some(Broker::str(format!(
                        "config resource type {other} is not supported; use 2 (topic)"
                    )))),
            }
        })
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}
