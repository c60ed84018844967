//! The APIs and versions this front end implements, and ApiVersions itself.
//!
//! Each range is what the handlers implement with full semantics, not what the codec can parse:
//! a client negotiates down to these. Versions past a range change meaning (topic ids instead of
//! names in Fetch 13+, transactions-v2 fields, ...) and are left out until they are built.

use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsResponse};
use kafka_protocol::ResponseError;

pub(crate) const SUPPORTED: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 3, 9),
    (ApiKey::Fetch, 4, 12),
    (ApiKey::ListOffsets, 1, 6),
    (ApiKey::Metadata, 0, 12),
    (ApiKey::OffsetCommit, 2, 8),
    (ApiKey::OffsetFetch, 1, 8),
    (ApiKey::FindCoordinator, 0, 4),
    (ApiKey::JoinGroup, 0, 9),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 5),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::DescribeGroups, 0, 5),
    (ApiKey::ListGroups, 0, 4),
    (ApiKey::ApiVersions, 0, 3),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 5),
    (ApiKey::InitProducerId, 0, 4),
    (ApiKey::DescribeConfigs, 1, 4),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::DeleteGroups, 0, 2),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    (ApiKey::DescribeCluster, 0, 1),
];

/// Offered only when the node has an `[auth]` config: a client that asks to sign in to an
/// open node should hear that it cannot, not sign in to nothing. librdkafka requires
/// SaslHandshake v0 in the list before it signs in at all, even to use v1.
const SASL: &[(ApiKey, i16, i16)] = &[
    (ApiKey::SaslHandshake, 0, 1),
    (ApiKey::SaslAuthenticate, 0, 2),
];

fn table(sasl: bool) -> impl Iterator<Item = &'static (ApiKey, i16, i16)> {
    SUPPORTED.iter().chain(SASL.iter().filter(move |_| sasl))
}

/// The version range implemented for `key`, if any.
pub(crate) fn supported(key: ApiKey, sasl: bool) -> Option<(i16, i16)> {
    table(sasl)
        .find(|(k, _, _)| *k == key)
        .map(|(_, min, max)| (*min, *max))
}

pub(crate) fn api_versions(error: Option<ResponseError>, sasl: bool) -> ApiVersionsResponse {
    let keys = table(sasl)
        .map(|(k, min, max)| {
            ApiVersion::default()
                .with_api_key(*k as i16)
                .with_min_version(*min)
                .with_max_version(*max)
        })
        .collect();
    ApiVersionsResponse::default()
        .with_error_code(error.map(|e| e.code()).unwrap_or(0))
        .with_api_keys(keys)
}
