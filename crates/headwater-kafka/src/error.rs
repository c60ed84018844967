use headwater_log::batch::BatchError;
use headwater_log::LogError;
use kafka_protocol::ResponseError;

/// Why a connection was closed. Each is logged with the peer address.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    #[error("request frame of {size} bytes exceeds max_request_bytes={max}; raise [kafka] max_request_bytes or send smaller requests")]
    FrameTooLarge { size: i64, max: u64 },
    #[error("request frame size {size} is invalid: a request needs at least 8 bytes of header")]
    FrameTooShort { size: i64 },
    #[error("malformed {api} v{version} request (correlation id {correlation_id}): {reason}")]
    Malformed {
        api: String,
        version: i16,
        correlation_id: i32,
        reason: String,
    },
    #[error("could not encode {api} v{version} response: {reason}")]
    Encode {
        api: String,
        version: i16,
        reason: String,
    },
    #[error("{api} request before signing in: this node requires SASL; set security.protocol=SASL_PLAINTEXT with sasl.mechanism PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 and the principal's username and password")]
    Unauthenticated { api: String },
    #[error("sign-in failed (the reason was sent to the client and recorded in the audit trail)")]
    SignInFailed,
    #[error(transparent)]
    Io(#[from] std::io::Error),
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
