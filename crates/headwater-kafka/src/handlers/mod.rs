//! One module per group of Kafka APIs. Each handler takes the decoded request and returns the
//! response; none of them touches the connection.

pub(crate) mod configs;
pub(crate) mod fetch;
pub(crate) mod list_offsets;
pub(crate) mod metadata;
pub(crate) mod produce;
pub(crate) mod producer_id;
pub(crate) mod topics;

use std::collections::BTreeMap;
use std::sync::Arc;

use headwater_log::{LogError, Topic};

use crate::Broker;

/// Topics whose names start with this hold Headwater's own state and are not visible to clients.
pub(crate) const INTERNAL_PREFIX: &str = "_headwater.";

/// Looks up a client-visible topic, creating it when auto-creation is on and `create` is set.
pub(crate) fn client_topic(
    broker: &Broker,
    name: &str,
    create: bool,
) -> Result<Arc<Topic>, LogError> {
    if name.starts_with(INTERNAL_PREFIX) {
        return Err(LogError::UnknownTopic(name.to_string()));
    }
    if let Some(t) = broker.log.topic(name) {
        return Ok(t);
    }
    if create && broker.config.auto_create_topics {
        match broker
            .log
            .create_topic(name, broker.config.default_partitions, BTreeMap::new())
        {
            Ok(t) => return Ok(t),
            Err(LogError::TopicExists(_)) => {
                if let Some(t) = broker.log.topic(name) {
                    return Ok(t);
                }
            }
            Err(e) => return Err(e),
        }
    }
    Err(LogError::UnknownTopic(name.to_string()))
}
