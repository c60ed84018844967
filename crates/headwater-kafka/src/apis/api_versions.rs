//! ApiVersions: the APIs and versions this front end implements.
//!
//! The table is derived from the API modules (`super::SERVED`), each of which states its own
//! range, plus the sign-in APIs when the node has an `[auth]` config (see `crate::sasl`).

use std::ops::RangeInclusive;

use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};
use kafka_protocol::ResponseError;

use super::{Api, Call, SERVED};
use crate::sasl::SIGN_IN_APIS;

/// ApiVersions (KIP-511 answers from v3; the connection answers a version it does not know).
impl Api for ApiVersionsRequest {
    const SUPPORTED_VERSIONS: RangeInclusive<i16> = 0..=3;

    async fn handle(self, call: &Call<'_>) -> Option<ApiVersionsResponse> {
        Some(response(None, call.broker.authorizer().is_some()))
    }
}

/// Every API offered, with its range; the sign-in APIs only when clients sign in.
fn table(sasl: bool) -> impl Iterator<Item = &'static (ApiKey, i16, i16)> {
    SERVED
        .iter()
        .chain(SIGN_IN_APIS.iter().filter(move |_| sasl))
}

/// The version range implemented for `key`, if any.
pub(crate) fn supported(key: ApiKey, sasl: bool) -> Option<(i16, i16)> {
    table(sasl)
        .find(|(k, _, _)| *k == key)
        .map(|(_, min, max)| (*min, *max))
}

/// The ApiVersions answer: the table, with `error` when the client asked in a version this
/// node does not know.
pub(crate) fn response(error: Option<ResponseError>, sasl: bool) -> ApiVersionsResponse {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The table as it was hand-written before the API modules stated their own ranges: what
    /// clients negotiate against must not change by accident.
    const ADVERTISED: &[(ApiKey, i16, i16)] = &[
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

    #[test]
    fn advertised_versions_are_unchanged() {
        let open: Vec<_> = response(None, false)
            .api_keys
            .iter()
            .map(|v| (v.api_key, v.min_version, v.max_version))
            .collect();
        let expected: Vec<_> = ADVERTISED
            .iter()
            .map(|(k, min, max)| (*k as i16, *min, *max))
            .collect();
        assert_eq!(open, expected);
        let signed_in = response(None, true);
        let sasl: Vec<_> = signed_in.api_keys[ADVERTISED.len()..]
            .iter()
            .map(|v| (v.api_key, v.min_version, v.max_version))
            .collect();
        assert_eq!(
            sasl,
            vec![
                (ApiKey::SaslHandshake as i16, 0, 1),
                (ApiKey::SaslAuthenticate as i16, 0, 2)
            ]
        );
    }

    #[test]
    fn every_served_api_has_a_range_and_an_unsupported_answer() {
        for (key, min, max) in SERVED {
            assert!(min <= max, "{key:?}");
            assert_eq!(supported(*key, false), Some((*min, *max)));
            // Each answer is of the API's own type, so the connection can encode it.
            let answer = crate::apis::unsupported_response(*key);
            assert_eq!(
                format!("{answer:?}").split('(').next(),
                format!("{key:?}").split('(').next(),
            );
        }
        assert_eq!(supported(ApiKey::SaslHandshake, false), None);
        assert_eq!(supported(ApiKey::SaslHandshake, true), Some((0, 1)));
    }
}
