use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{
    CreatePartitionsRequest, CreatePartitionsResponse, CreateTopicsRequest, CreateTopicsResponse,
    DeleteTopicsRequest, DeleteTopicsResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::INTERNAL_PREFIX;
use crate::error::log_error_code;
use crate::Broker;

/// The error code and message fields of a per-topic result.
pub(crate) fn error_fields(
    outcome: Result<(), (ResponseError, String)>,
) -> (i16, Option<StrBytes>) {
    match outcome {
        Ok(()) => (0, None),
        Err((code, msg)) => (code.code(), Some(Broker::str(msg))),
    }
}

fn reserved(name: &str) -> Option<(ResponseError, String)> {
    name.starts_with(INTERNAL_PREFIX).then(|| {
        (
            ResponseError::InvalidTopicException,
            format!("topic names starting with '{INTERNAL_PREFIX}' are reserved for Headwater's own state"),
        )
    })
}

pub(crate) fn create(
    broker: &Arc<Broker>,
    req: CreateTopicsRequest,
    version: i16,
) -> CreateTopicsResponse {
    let mut results = Vec::new();
    for t in req.topics {
        let name = t.name.0.to_string();
        let partitions = if t.num_partitions == -1 {
            broker.config.default_partitions
        } else {
            t.num_partitions
        };
        let configs: BTreeMap<String, String> = t
            .configs
            .iter()
            .filter_map(|c| {
                c.value
                    .as_ref()
                    .map(|v| (c.name.to_string(), v.to_string()))
            })
            .collect();
        let check = || -> Result<(), (ResponseError, String)> {
            if let Some(r) = reserved(&name) {
                return Err(r);
            }
            if t.replication_factor != -1 && t.replication_factor != 1 {
                return Err((
                    ResponseError::InvalidReplicationFactor,
                    format!(
                        "replication factor {} is not possible on a single Headwater node; use 1 or -1",
                        t.replication_factor
                    ),
                ));
            }
            if !t.assignments.is_empty() {
                return Err((
                    ResponseError::InvalidRequest,
                    "manual replica assignments are not supported on a single node; pass a partition count".to_string(),
                ));
            }
            let as_kafka = |e: headwater_log::LogError| (log_error_code(&e), e.to_string());
            broker
                .log
                .validate_new_topic(&name, partitions, &configs)
                .map_err(as_kafka)?;
            if !req.validate_only {
                broker
                    .log
                    .create_topic(&name, partitions, configs.clone())
                    .map_err(as_kafka)?;
            }
            Ok(())
        };
        let mut result =
            CreatableTopicResult::default().with_name(TopicName(Broker::str(name.clone())));
        match check() {
            Ok(()) => {
                result = result
                    .with_num_partitions(partitions)
                    .with_replication_factor(1);
                if let Some(topic) = broker.log.topic(&name) {
                    result = result.with_topic_id(topic.id());
                }
                if version >= 5 {
                    let resolved =
                        headwater_log::TopicConfig::resolve(broker.log.config(), &configs)
                            .map(|c| c.entries())
                            .unwrap_or_default();
                    result = result.with_configs(Some(
                        resolved
                            .into_iter()
                            .map(|(k, v)| {
                                CreatableTopicConfigs::default()
                                    .with_name(Broker::str(k))
                                    .with_value(Some(Broker::str(v)))
                                    .with_config_source(if configs.contains_key(k) { 1 } else { 5 })
                            })
                            .collect(),
                    ));
                }
            }
            Err((code, message)) => {
                tracing::info!(topic = %name, "create topic refused: {message}");
                result = result
                    .with_error_code(code.code())
                    .with_error_message(Some(Broker::str(message)))
                    .with_num_partitions(-1)
                    .with_replication_factor(-1);
            }
        }
        results.push(result);
    }
    CreateTopicsResponse::default().with_topics(results)
}

pub(crate) fn delete(
    broker: &Arc<Broker>,
    req: DeleteTopicsRequest,
    _version: i16,
) -> DeleteTopicsResponse {
    let mut names: Vec<String> = req.topic_names.iter().map(|n| n.0.to_string()).collect();
    names.extend(
        req.topics
            .iter()
            .filter_map(|t| t.name.as_ref().map(|n| n.0.to_string())),
    );
    let responses = names
        .into_iter()
        .map(|name| {
            let outcome = match reserved(&name) {
                Some(r) => Err(r),
                None => broker
                    .log
                    .delete_topic(&name)
                    .map_err(|e| (log_error_code(&e), e.to_string())),
            };
            if outcome.is_ok() {
                broker.report_admin(crate::AdminChange {
                    action: "topic.delete",
                    topic: name.clone(),
                    principal: crate::broker::caller(),
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

pub(crate) fn create_partitions(
    broker: &Arc<Broker>,
    req: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let results = req
        .topics
        .into_iter()
        .map(|t| {
            let name = t.name.0.to_string();
            let outcome = if let Some(r) = reserved(&name) {
                Err(r)
            } else if t.assignments.is_some() {
                Err((
                    ResponseError::InvalidRequest,
                    "manual replica assignments are not supported on a single node".to_string(),
                ))
            } else {
                broker
                    .log
                    .create_partitions(&name, t.count, req.validate_only)
                    .map_err(|e| (log_error_code(&e), e.to_string()))
            };
            let (code, message) = error_fields(outcome);
            CreatePartitionsTopicResult::default()
                .with_name(t.name)
                .with_error_code(code)
                .with_error_message(message)
        })
        .collect();
    CreatePartitionsResponse::default().with_results(results)
}
