//! The HTTP port's limits (`[http]` in the node's config): connections served at once, how long
//! a request's header may take to arrive, and event streams (`/v1/streams/.../events`) open at
//! once. Without them one client could hold the port with connections that never finish a
//! header, or with followers that never end. Each refusal is counted for `/metrics`.

use std::sync::Arc;
use std::time::Duration;

use headwater_kafka::metrics::ReasonLabel;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use serde::Deserialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The `[http]` table of the node's config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Connections served at once; one more is closed as soon as it is accepted. 4096: far
    /// more than the callers of one node, far fewer than its file descriptors.
    pub max_connections: usize,
    /// How long a request's header may take to arrive, in milliseconds, from the first byte
    /// (or, between requests, from the last answer). Ten seconds: a client sends a header in
    /// one write; a slow-loris one is closed.
    pub header_read_timeout_ms: u64,
    /// Event streams (server-sent events of a stream) open at once; one more is answered 503.
    /// 256: each holds a task and a reader on the log.
    pub max_event_streams: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            max_connections: 4096,
            header_read_timeout_ms: 10_000,
            max_event_streams: 256,
        }
    }
}

/// Requests and connections the limits refused, by reason: `connection_limit`,
/// `event_stream_limit` (the label the Kafka port's refusals carry too).
pub type HttpRefusals = Family<ReasonLabel, Counter>;

/// The limits in force, the slots they hand out, and what they refused.
#[derive(Debug, Clone)]
pub(crate) struct HttpLimits {
    pub(crate) config: HttpConfig,
    refused: HttpRefusals,
    connections: Arc<Semaphore>,
    event_streams: Arc<Semaphore>,
}

impl HttpLimits {
    pub(crate) fn new(config: HttpConfig, refused: HttpRefusals) -> Self {
        HttpLimits {
            config,
            refused,
            connections: Arc::new(Semaphore::new(config.max_connections)),
            event_streams: Arc::new(Semaphore::new(config.max_event_streams)),
        }
    }

    pub(crate) fn header_read_timeout(&self) -> Duration {
        Duration::from_millis(self.config.header_read_timeout_ms)
    }

    fn take(&self, slots: &Arc<Semaphore>, reason: &str) -> Option<OwnedSemaphorePermit> {
        let slot = slots.clone().try_acquire_owned().ok();
        if slot.is_none() {
            self.refused
                .get_or_create(&ReasonLabel {
                    reason: reason.to_string(),
                })
                .inc();
        }
        slot
    }

    /// A connection's slot, held while it is served; `None` when every slot is taken.
    pub(crate) fn connection(&self) -> Option<OwnedSemaphorePermit> {
        self.take(&self.connections, "connection_limit")
    }

    /// An event stream's slot, held while it is open; `None` when every slot is taken.
    pub(crate) fn event_stream(&self) -> Option<OwnedSemaphorePermit> {
        self.take(&self.event_streams, "event_stream_limit")
    }
}
