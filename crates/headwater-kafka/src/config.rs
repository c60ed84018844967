use serde::{Deserialize, Serialize};

/// The `[kafka]` table of the node's config file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaConfig {
    /// Create a topic when a client produces to or asks metadata for an unknown one. Off by
    /// default: a typo in a topic name should fail loudly, not create a stream nobody owns.
    pub auto_create_topics: bool,
    /// Partitions of an auto-created topic, or of a CreateTopics request that leaves it to us.
    pub default_partitions: i32,
    /// Largest request frame accepted; a larger one closes that connection (Kafka's
    /// socket.request.max.bytes is 100 MiB).
    pub max_request_bytes: u64,
    /// Address clients are told to connect to (`host:port`), when it differs from the listener.
    pub advertised_addr: Option<String>,
    /// Smallest consumer session timeout a group member may ask for.
    pub min_session_timeout_ms: i32,
    /// Largest consumer session timeout a group member may ask for.
    pub max_session_timeout_ms: i32,
    /// Connections served at once; one more is closed as soon as it is accepted. 4096: far
    /// more than the clients of one node, far fewer than its file descriptors.
    pub max_connections: usize,
    /// On a node with `[auth]`, how long a connection has to sign in before it is closed, in
    /// milliseconds. Ten seconds: a client signs in within a few round trips; a stranger who
    /// connects and says nothing holds no slot for longer.
    pub sign_in_timeout_ms: u64,
    /// A connection that sends no request for this long is closed, in milliseconds (Kafka's
    /// `connections.max.idle.ms`, ten minutes). Clients reconnect when they need to.
    pub idle_timeout_ms: u64,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        Self {
            auto_create_topics: false,
            default_partitions: 1,
            max_request_bytes: 100 * 1024 * 1024,
            advertised_addr: None,
            min_session_timeout_ms: 1_000,
            max_session_timeout_ms: 300_000,
            max_connections: 4096,
            sign_in_timeout_ms: 10_000,
            idle_timeout_ms: 600_000,
        }
    }
}
