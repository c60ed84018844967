use headwater_log::batch::BatchError;
use headwater_log::LogError;
use kafka_protocol::ResponseError;

use crate::apis::INTERNAL_PREFIX;

/// Why a connection was closed. Each is logged with the peer address.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    /// A frame larger than the node reads (`max_request_bytes`, or less before signing in).
    #[error("request frame of {size} bytes exceeds max_request_bytes={max}; raise [kafka] max_request_bytes or send smaller requests")]
    FrameTooLarge {
        /// The size the frame declared.
        size: i64,
        /// The largest size read.
        max: u64,
    },
    /// A frame too short to hold a request header.
    #[error("request frame size {size} is invalid: a request needs at least 8 bytes of header")]
    FrameTooShort {
        /// The size the frame declared.
        size: i64,
    },
    /// A request the codec cannot decode.
    #[error("malformed {api} v{version} request (correlation id {correlation_id}): {reason}")]
    Malformed {
        /// The API named by the header.
        api: String,
        /// The version named by the header.
        version: i16,
        /// The request's correlation id.
        correlation_id: i32,
        /// The codec's message.
        reason: String,
    },
    /// A response the codec cannot encode (a bug: handlers build responses of their version).
    #[error("could not encode {api} v{version} response: {reason}")]
    Encode {
        /// The API answered.
        api: String,
        /// The version answered in.
        version: i16,
        /// The codec's message.
        reason: String,
    },
    /// No sign-in within `[kafka] sign_in_timeout_ms` of connecting.
    #[error("not signed in within {limit_ms} ms of connecting ([kafka] sign_in_timeout_ms); sign in right after connecting")]
    SignInTimeout {
        /// The limit.
        limit_ms: u64,
    },
    /// No request for `[kafka] idle_timeout_ms`.
    #[error("idle for {limit_ms} ms ([kafka] idle_timeout_ms)")]
    Idle {
        /// The limit.
        limit_ms: u64,
    },
    /// A request other than ApiVersions or sign-in before the client signed in.
    #[error("{api} request before signing in: this node requires SASL; set security.protocol=SASL_PLAINTEXT with sasl.mechanism PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 and the principal's username and password")]
    Unauthenticated {
        /// The API the client asked for.
        api: String,
    },
    /// The client's sign-in was refused; the connection closes after the answer.
    #[error("sign-in failed (the reason was sent to the client and recorded in the audit trail)")]
    SignInFailed,
    /// Reading or writing the socket failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Why a topic administration request (create, delete, grow, alter configs) was refused for one
/// topic: answered in that topic's result with [`AdminError::code`] and this message.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AdminError {
    /// A topic name in Headwater's own namespace.
    #[error(
        "topic names starting with '{INTERNAL_PREFIX}' are reserved for Headwater's own state"
    )]
    Reserved,
    #[error("replication factor {factor} is not possible on a single Headwater node; use 1 or -1")]
    /// More than one replica on a single node.
    ReplicationFactor { factor: i16 },
    #[error(
        "manual replica assignments are not supported on a single node; pass a partition count"
    )]
    /// CreateTopics with replica assignments.
    AssignmentsOnCreate,
    #[error("manual replica assignments are not supported on a single node")]
    /// CreatePartitions with replica assignments.
    AssignmentsOnGrow,
    #[error("only topic configs (resource type 2) can be altered")]
    /// IncrementalAlterConfigs of a resource other than a topic.
    NotATopicConfig,
    #[error("operation {op} (APPEND/SUBTRACT) does not apply to '{name}': it is not a list setting; use SET or DELETE")]
    /// APPEND or SUBTRACT on a setting that is not a list.
    ListOperation { op: i8, name: String },
    /// What the log refused.
    #[error(transparent)]
    Log(#[from] LogError),
}

impl AdminError {
    /// The Kafka error code the refusal is answered with.
    pub(crate) fn code(&self) -> ResponseError {
        match self {
            AdminError::Reserved => ResponseError::InvalidTopicException,
            AdminError::ReplicationFactor { .. } => ResponseError::InvalidReplicationFactor,
            AdminError::AssignmentsOnCreate
            | AdminError::AssignmentsOnGrow
            | AdminError::NotATopicConfig => ResponseError::InvalidRequest,
            AdminError::ListOperation { .. } => ResponseError::InvalidConfig,
            AdminError::Log(e) => log_error_code(e),
        }
    }
}

/// The Kafka error code for a log error, with the message clients can show.
pub(crate) fn log_error_code(e: &LogError) -> ResponseError {
    match e {
        LogError::UnknownTopic(_) | LogError::UnknownPartition { .. } => {
            ResponseError::UnknownTopicOrPartition
        }
        LogError::TopicExists(_) => ResponseError::TopicAlreadyExists,
        LogError::InvalidTopicName { .. } => ResponseError::InvalidTopicException,
        LogError::InvalidPartitions { .. } => ResponseError::InvalidPartitions,
        LogError::InvalidConfig { .. } | LogError::UnknownConfig { .. } => {
            ResponseError::InvalidConfig
        }
        LogError::InvalidBatch { source, .. } => match source {
            BatchError::BadCrc { .. } => ResponseError::CorruptMessage,
            BatchError::BadMagic { .. } => ResponseError::UnsupportedForMessageFormat,
            _ => ResponseError::CorruptMessage,
        },
        LogError::BatchTooLarge { .. } => ResponseError::MessageTooLarge,
        LogError::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange,
        LogError::Corrupt { .. } => ResponseError::CorruptMessage,
        LogError::ProducerFenced { .. } => ResponseError::InvalidProducerEpoch,
        LogError::OutOfOrderSequence { .. } => ResponseError::OutOfOrderSequenceNumber,
        LogError::TransactionsUnsupported { .. } => ResponseError::InvalidRecord,
        LogError::Io { .. } | LogError::DataDirLocked { .. } => ResponseError::KafkaStorageError,
        LogError::ShuttingDown => ResponseError::NotLeaderOrFollower,
    }
}
