//! One module per Kafka API, and the one list of them.
//!
//! Each module holds everything about its API in one place, as the implementation of [`Api`]
//! for the API's request type: the versions it implements, what its request needs the caller
//! to be allowed ([`Api::authorize`]), the handler, how refused parts go back into its response
//! ([`Api::merge`]), and the metrics it counts. The `apis!` list below derives from those
//! implementations the request dispatch, the ApiVersions table and the UNSUPPORTED_VERSION
//! answers, so adding an API is one new module (and its `mod` line) and one line in that list.
//!
//! State that outlives a request lives elsewhere: the log (`headwater-log`), the group
//! coordinator ([`crate::groups`]), the produce gate ([`crate::ProduceGate`]).

use std::collections::BTreeMap;
use std::future::Future;
use std::ops::RangeInclusive;
use std::sync::Arc;

use headwater_auth::Principal;
use headwater_log::{LogError, Topic};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, CreatePartitionsRequest, CreateTopicsRequest,
    DeleteGroupsRequest, DeleteTopicsRequest, DescribeClusterRequest, DescribeConfigsRequest,
    DescribeGroupsRequest, FetchRequest, FindCoordinatorRequest, HeartbeatRequest,
    IncrementalAlterConfigsRequest, InitProducerIdRequest, JoinGroupRequest, LeaveGroupRequest,
    ListGroupsRequest, ListOffsetsRequest, MetadataRequest, OffsetCommitRequest,
    OffsetFetchRequest, ProduceRequest, RequestKind, ResponseKind, SyncGroupRequest,
};
use kafka_protocol::protocol::{Request, StrBytes};
use kafka_protocol::ResponseError;

use crate::authorize::{Checked, Guard, Refused};
use crate::broker::{Broker, Reply};
use crate::error::AdminError;

// The API modules, each implementing `Api` for its request type.
pub(crate) mod api_versions;
mod create_partitions;
mod create_topics;
mod delete_groups;
mod delete_topics;
mod describe_cluster;
mod describe_configs;
mod describe_groups;
mod fetch;
mod find_coordinator;
mod heartbeat;
mod incremental_alter_configs;
mod init_producer_id;
mod join_group;
mod leave_group;
mod list_groups;
mod list_offsets;
mod metadata;
mod offset_commit;
mod offset_fetch;
mod produce;
mod sync_group;

/// How this front end serves one Kafka API, implemented on the API's request type.
///
/// A request goes through [`authorize`](Api::authorize) (only when clients sign in), then
/// [`handle`](Api::handle), then [`merge`](Api::merge) with what `authorize` refused. Only
/// `SUPPORTED_VERSIONS` and `handle` are required: an API whose request names nothing to
/// protect keeps the defaults, which let everything through.
pub(crate) trait Api: Request<Response: Default + Send> + Send {
    /// The versions implemented with full semantics (not what the codec can parse): clients
    /// negotiate down to these. Versions past the range change meaning and are left out until
    /// they are built.
    const SUPPORTED_VERSIONS: RangeInclusive<i16>;

    /// Checks the request against what the caller may do before it is handled: the request
    /// with the refused parts taken out (each recorded through the guard), or the whole answer
    /// when the request is refused as a whole.
    fn authorize(self, guard: &Guard<'_>) -> Checked<Self> {
        let _ = guard;
        Checked::Handle(self, Vec::new())
    }

    /// Handles the request; `None` sends no response at all (Produce with acks=0).
    fn handle(self, call: &Call<'_>) -> impl Future<Output = Option<Self::Response>> + Send;

    /// Adds the parts `authorize` refused back into `response`, and hides from a listing what
    /// the caller may not see.
    fn merge(guard: &Guard<'_>, response: Self::Response, refused: Vec<Refused>) -> Self::Response {
        let _ = (guard, refused);
        response
    }
}

/// A response with a top-level error code: how a request refused or unsupported as a whole is
/// answered.
pub(crate) trait Coded: Default {
    /// The response carrying only `error`.
    fn coded(error: ResponseError) -> Self;
}

/// A request of an API this front end serves, as the node sends it to itself with
/// [`Broker::request`](crate::Broker::request).
pub trait InProcess: Request + Sized {
    /// The request as the dispatcher takes it.
    fn into_kind(self) -> RequestKind;
    /// The typed response, if `kind` is this API's.
    fn response_of(kind: ResponseKind) -> Option<Self::Response>;
}

/// One request being served: the broker, and who sent the request and how.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Call<'a> {
    /// The front end serving it.
    pub(crate) broker: &'a Arc<Broker>,
    /// The request's version.
    pub(crate) version: i16,
    /// The client id of its header.
    pub(crate) client_id: &'a str,
    /// The client's address (`host:port`), or its client id for in-process calls.
    pub(crate) peer: &'a str,
}

tokio::task_local! {
    /// The signed-in principal whose request is being handled, for admin changes' records.
    static CALLER: String;
}

/// The audit name of the principal whose request is being handled, if clients sign in.
pub(crate) fn caller() -> Option<String> {
    CALLER.try_with(String::clone).ok()
}

/// Serves one request: checked, handled and merged when `who` signed in to a node with an
/// authorizer; handled as it is otherwise (an open node, or the node's own calls).
async fn serve<R: Api>(
    call: &Call<'_>,
    who: Option<&Principal>,
    request: R,
) -> Option<R::Response> {
    let (Some(authorizer), Some(who)) = (call.broker.authorizer(), who) else {
        return request.handle(call).await;
    };
    let guard = Guard::new(&**authorizer, who, call.version);
    match request.authorize(&guard) {
        Checked::Answer(answer) => Some(answer),
        Checked::Handle(request, refused) => {
            let handled = request.handle(call);
            let response = CALLER.scope(who.audit_name(), handled).await?;
            Some(R::merge(&guard, response, refused))
        }
    }
}

/// `impl Coded` for a response the list marks `coded`.
macro_rules! coded_response {
    ($response:ident) => {};
    ($response:ident, coded) => {
        impl Coded for kafka_protocol::messages::$response {
            fn coded(error: ResponseError) -> Self {
                Self::default().with_error_code(error.code())
            }
        }
    };
}

/// The answer to a version outside an API's range: UNSUPPORTED_VERSION where its response has
/// a top-level error code (`coded`), else an empty response.
macro_rules! unsupported {
    ($response:ident) => {
        kafka_protocol::messages::$response::default()
    };
    ($response:ident, coded) => {
        <kafka_protocol::messages::$response as Coded>::coded(ResponseError::UnsupportedVersion)
    };
}

/// Derives from the one list of APIs, in its order (the order ApiVersions answers in):
/// `SERVED`, `dispatch`, `unsupported_response` and [`InProcess`]. Each entry is
/// `Name(NameRequest => NameResponse)`: the API's name in `kafka-protocol` (its `ApiKey`,
/// `RequestKind` and `ResponseKind` variant), its request type, which implements [`Api`] in the
/// API's module, and its response type, marked `coded` when it has a top-level error code.
macro_rules! apis {
    ($($api:ident($request:ident => $response:ident $(, $coded:ident)?),)*) => {
        $(coded_response!($response $(, $coded)?);)*

        /// Every API served, with its version range, in the order ApiVersions lists them.
        pub(crate) const SERVED: &[(ApiKey, i16, i16)] = &[$((
            ApiKey::$api,
            *<$request as Api>::SUPPORTED_VERSIONS.start(),
            *<$request as Api>::SUPPORTED_VERSIONS.end(),
        ),)*];

        /// Runs one decoded request through its API's module.
        pub(crate) async fn dispatch(
            call: &Call<'_>,
            who: Option<&Principal>,
            request: RequestKind,
        ) -> Reply {
            match request {
                $(RequestKind::$api(request) => match serve(call, who, request).await {
                    Some(response) => Reply::Send(Box::new(ResponseKind::$api(response))),
                    None => Reply::Nothing,
                },)*
                other => {
                    // Only reachable through Broker::call with an API not in the list (the
                    // connection answers those before dispatch).
                    let key = api_key_of(&other);
                    tracing::error!(api = ?key, "no handler for an advertised API");
                    Reply::Send(Box::new(unsupported_response(key)))
                }
            }
        }

        $(impl InProcess for $request {
            fn into_kind(self) -> RequestKind {
                RequestKind::$api(self)
            }

            fn response_of(kind: ResponseKind) -> Option<Self::Response> {
                match kind {
                    ResponseKind::$api(response) => Some(response),
                    _ => None,
                }
            }
        })*

        /// An empty response of the API's type carrying UNSUPPORTED_VERSION where the type has
        /// a top-level error code.
        pub(crate) fn unsupported_response(key: ApiKey) -> ResponseKind {
            match key {
                $(ApiKey::$api => ResponseKind::$api(unsupported!($response $(, $coded)?)),)*
                _ => ResponseKind::ApiVersions(
                    ApiVersionsResponse::default()
                        .with_error_code(ResponseError::UnsupportedVersion.code()),
                ),
            }
        }
    };
}

apis! {
    Produce(ProduceRequest => ProduceResponse),
    Fetch(FetchRequest => FetchResponse, coded),
    ListOffsets(ListOffsetsRequest => ListOffsetsResponse),
    Metadata(MetadataRequest => MetadataResponse, coded),
    OffsetCommit(OffsetCommitRequest => OffsetCommitResponse),
    OffsetFetch(OffsetFetchRequest => OffsetFetchResponse, coded),
    FindCoordinator(FindCoordinatorRequest => FindCoordinatorResponse, coded),
    JoinGroup(JoinGroupRequest => JoinGroupResponse, coded),
    Heartbeat(HeartbeatRequest => HeartbeatResponse, coded),
    LeaveGroup(LeaveGroupRequest => LeaveGroupResponse, coded),
    SyncGroup(SyncGroupRequest => SyncGroupResponse, coded),
    DescribeGroups(DescribeGroupsRequest => DescribeGroupsResponse),
    ListGroups(ListGroupsRequest => ListGroupsResponse, coded),
    ApiVersions(ApiVersionsRequest => ApiVersionsResponse, coded),
    CreateTopics(CreateTopicsRequest => CreateTopicsResponse),
    DeleteTopics(DeleteTopicsRequest => DeleteTopicsResponse),
    InitProducerId(InitProducerIdRequest => InitProducerIdResponse, coded),
    DescribeConfigs(DescribeConfigsRequest => DescribeConfigsResponse),
    CreatePartitions(CreatePartitionsRequest => CreatePartitionsResponse),
    DeleteGroups(DeleteGroupsRequest => DeleteGroupsResponse),
    IncrementalAlterConfigs(IncrementalAlterConfigsRequest => IncrementalAlterConfigsResponse),
    DescribeCluster(DescribeClusterRequest => DescribeClusterResponse, coded),
}

fn api_key_of(r: &RequestKind) -> ApiKey {
    // The debug name of the variant is the API name; this path is a bug guard only.
    let name = format!("{r:?}");
    let name = name.split('(').next().unwrap_or_default().to_string();
    ApiKey::iter()
        .find(|k| format!("{k:?}") == name)
        .unwrap_or(ApiKey::ApiVersions)
}

/// Config resource types of DescribeConfigs and IncrementalAlterConfigs.
pub(crate) const TOPIC_RESOURCE: i8 = 2;
pub(crate) const BROKER_RESOURCE: i8 = 4;

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

/// Refuses a topic name reserved for Headwater's own state.
pub(crate) fn not_reserved(name: &str) -> Result<(), AdminError> {
    if name.starts_with(INTERNAL_PREFIX) {
        return Err(AdminError::Reserved);
    }
    Ok(())
}

/// The error code and message fields of a per-topic administration result.
pub(crate) fn error_fields(outcome: Result<(), AdminError>) -> (i16, Option<StrBytes>) {
    match outcome {
        Ok(()) => (0, None),
        Err(e) => (e.code().code(), Some(Broker::str(e.to_string()))),
    }
}

/// The error code field for an optional error.
pub(crate) fn error_code(e: Option<ResponseError>) -> i16 {
    e.map(|e| e.code()).unwrap_or(0)
}

/// The error message field of a refusal, in response versions that have one.
pub(crate) fn refusal_message(
    guard: &Guard<'_>,
    from_version: i16,
    why: &headwater_auth::Denied,
) -> Option<StrBytes> {
    (guard.version >= from_version).then(|| StrBytes::from_string(why.reason.clone()))
}

#[cfg(test)]
mod tests;
