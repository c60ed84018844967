//! What can go wrong between a node and its cluster, each naming the cluster and the fix.

use rdkafka::error::KafkaError;

/// An error talking to the Kafka cluster.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The `[cluster]` table cannot be used as written.
    #[error("{0}")]
    Config(String),
    /// No broker of the bootstrap list answered in time.
    #[error(
        "no broker of the Kafka cluster at {bootstrap} answered within {waited_ms} ms ({detail}): \
         start the cluster, or fix [cluster] bootstrap (or --cluster)"
    )]
    Unreachable {
        /// The bootstrap list tried.
        bootstrap: String,
        /// How long the node waited.
        waited_ms: u64,
        /// librdkafka's last word on it.
        detail: String,
    },
    /// The cluster refused Headwater's credentials.
    #[error(
        "the Kafka cluster at {bootstrap} refused to sign in {username} with {mechanism} \
         ({detail}): fix [cluster] username and password (or password_env), or create the \
         user on the cluster"
    )]
    SignIn {
        /// The bootstrap list tried.
        bootstrap: String,
        /// The user Headwater signed in as.
        username: String,
        /// The SASL mechanism.
        mechanism: &'static str,
        /// librdkafka's last word on it.
        detail: String,
    },
    /// The cluster answered a topic operation with an error.
    #[error("topic {topic} on the Kafka cluster at {bootstrap}: {detail}")]
    Topic {
        /// The topic.
        topic: String,
        /// The bootstrap list.
        bootstrap: String,
        /// What the cluster said, and the fix when there is one.
        detail: String,
    },
    /// A broker answered an admin request in a way Headwater cannot use.
    #[error("broker {broker} of the Kafka cluster: {detail}")]
    Protocol {
        /// The broker's address.
        broker: String,
        /// What went wrong.
        detail: String,
    },
    /// librdkafka refused a call; its message says which.
    #[error("Kafka client ({what}) for the cluster at {bootstrap}: {source}")]
    Client {
        /// What Headwater was doing.
        what: &'static str,
        /// The bootstrap list.
        bootstrap: String,
        /// librdkafka's error.
        source: KafkaError,
    },
}
