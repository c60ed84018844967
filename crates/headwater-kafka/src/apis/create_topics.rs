//! CreateTopics: topics created in the log, with their configs.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;
use std::sync::Arc;

use headwater_auth::TopicOp;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::{not_reserved, Api, Call};
use crate::authorize::{answer_topics, Checked, Guard, Refused};
use crate::error::AdminError;
use crate::Broker;

/// CreateTopics, with one replica per partition.
impl Api for CreateTopicsRequest {
    const SUPPORTED_VERSIONS: RangeInclusive<i16> = 2..=7;

    fn authorize(mut self, guard: &Guard<'_>) -> Checked<Self> {
        let refused = guard.keep_topics(TopicOp::Administer, &mut self.topics, |t| {
            (&t.name, Vec::new())
        });
        Checked::Handle(self, refused)
    }

    async fn handle(self, call: &Call<'_>) -> Option<CreateTopicsResponse> {
        Some(create(call.broker, self, call.version))
    }

    fn merge(_: &Guard<'_>, mut response: Self::Response, refused: Vec<Refused>) -> Self::Response {
        response
            .topics
            .extend(answer_topics(refused, |name, _, why| {
                CreatableTopicResult::default()
                    .with_name(name)
                    .with_error_code(ResponseError::TopicAuthorizationFailed.code())
                    .with_error_message(Some(StrBytes::from_string(why.reason)))
                    .with_num_partitions(-1)
                    .with_replication_factor(-1)
            }));
        response
    }
}

fn create(broker: &Arc<Broker>, req: CreateTopicsRequest, version: i16) -> CreateTopicsResponse {
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
        let check = || -> Result<(), AdminError> {
            not_reserved(&name)?;
            if t.replication_factor != -1 && t.replication_factor != 1 {
                return Err(AdminError::ReplicationFactor {
                    factor: t.replication_factor,
                });
            }
            if !t.assignments.is_empty() {
                return Err(AdminError::AssignmentsOnCreate);
            }
            broker.log.validate_new_topic(&name, partitions, &configs)?;
            if !req.validate_only {
                broker
                    .log
                    .create_topic(&name, partitions, configs.clone())?;
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
            Err(e) => {
                tracing::info!(topic = %name, "create topic refused: {e}");
                result = result
                    .with_error_code(e.code().code())
                    .with_error_message(Some(Broker::str(e.to_string())))
                    .with_num_partitions(-1)
                    .with_replication_factor(-1);
            }
        }
        results.push(result);
    }
    CreateTopicsResponse::default().with_topics(results)
}
