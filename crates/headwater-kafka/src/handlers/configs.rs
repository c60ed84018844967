use std::sync::Arc;

use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult,
};
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{
    DescribeConfigsRequest, DescribeConfigsResponse, IncrementalAlterConfigsRequest,
    IncrementalAlterConfigsResponse,
};
use kafka_protocol::ResponseError;

use super::client_topic;
use crate::error::log_error_code;
use crate::Broker;

const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;
/// Config sources as DescribeConfigs v1+ reports them.
const SOURCE_TOPIC: i8 = 1;
const SOURCE_DEFAULT: i8 = 5;

pub(crate) fn describe(
    broker: &Arc<Broker>,
    req: DescribeConfigsRequest,
) -> DescribeConfigsResponse {
    let results = req
        .resources
        .into_iter()
        .map(|r| {
            let base = DescribeConfigsResult::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name.clone());
            match r.resource_type {
                RESOURCE_TOPIC => match client_topic(broker, &r.resource_name, false) {
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
                RESOURCE_BROKER => base,
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

pub(crate) fn alter(
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
                if r.resource_type != RESOURCE_TOPIC {
                    return Err((
                        ResponseError::InvalidRequest,
                        "only topic configs (resource type 2) can be altered".to_string(),
                    ));
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
                            return Err((
                                ResponseError::InvalidConfig,
                                format!(
                                    "operation {op} (APPEND/SUBTRACT) does not apply to '{}': it is not a list setting; use SET or DELETE",
                                    c.name.as_str()
                                ),
                            ))
                        }
                    }
                }
                client_topic(broker, &r.resource_name, false)
                    .and_then(|_| {
                        broker
                            .log
                            .alter_topic_config(&r.resource_name, &changes, req.validate_only)
                    })
                    .map_err(|e| (log_error_code(&e), e.to_string()))
            })();
            let (code, message) = super::topics::error_fields(outcome);
            base.with_error_code(code).with_error_message(message)
        })
        .collect();
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}
