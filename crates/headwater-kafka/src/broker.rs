//! The shared state behind every connection. Requests are dispatched by [`crate::apis`].

use std::sync::Arc;

use headwater_log::Log;
use kafka_protocol::messages::{RequestKind, ResponseKind};
use kafka_protocol::protocol::StrBytes;

use crate::apis::{self, Call};
use crate::authorize::Authorizer;
use crate::groups::Coordinator;
use crate::KafkaConfig;

/// Identity of this node as clients see it.
#[derive(Debug, Clone)]
pub struct NodeIdentity {
    /// The broker id clients see (the node is the only broker and the controller).
    pub node_id: i32,
    /// The host clients are told to connect to.
    pub host: String,
    /// The port clients are told to connect to.
    pub port: i32,
    /// The cluster id Metadata and DescribeCluster answer.
    pub cluster_id: String,
}

/// One Kafka front end over one log.
#[derive(Debug)]
pub struct Broker {
    pub(crate) log: Arc<Log>,
    pub(crate) config: KafkaConfig,
    pub(crate) node: NodeIdentity,
    pub(crate) groups: Coordinator,
    /// Every produce to a validated topic passes it before it is written.
    pub(crate) gate: Option<Arc<dyn crate::ProduceGate>>,
    /// Where changes made through the admin API are reported, once someone listens.
    admin: std::sync::OnceLock<tokio::sync::mpsc::UnboundedSender<AdminChange>>,
    /// Client ids seen producing, per topic, for the catalog's observed lineage (since start).
    producers:
        parking_lot::RwLock<std::collections::HashMap<String, std::collections::BTreeSet<String>>>,
    metrics: crate::KafkaMetrics,
    /// Set when the node has an `[auth]` config: clients must sign in, and every request is
    /// checked.
    authorizer: Option<Arc<dyn Authorizer>>,
}

/// What the node checks Kafka requests with, fixed when the broker is built.
#[derive(Debug, Default, Clone)]
pub struct Checks {
    /// The check every produce to a validated topic passes before it is written (the node's
    /// contract gate); without one, validated topics take records unchecked.
    pub gate: Option<Arc<dyn crate::ProduceGate>>,
    /// With one, every client must sign in and each request is authorized.
    pub authorizer: Option<Arc<dyn Authorizer>>,
}

/// Client ids remembered per topic: enough to name a topic's producers without letting a client
/// that invents a new id per connection grow the map without bound.
const MAX_PRODUCERS_SEEN: usize = 64;

/// A change made through Kafka's admin API (a topic deleted), for the node's audit trail.
#[derive(Debug, Clone, PartialEq)]
pub struct AdminChange {
    /// The audit action (`topic.delete`).
    pub action: &'static str,
    /// The topic changed.
    pub topic: String,
    /// Who made it (`user:<name>`), when clients sign in.
    pub principal: Option<String>,
}

/// What to do after a request was handled.
pub(crate) enum Reply {
    Send(Box<ResponseKind>),
    /// Produce with acks=0: Kafka sends no response at all.
    Nothing,
}

impl Broker {
    /// Builds the front end with the node's `checks`; replays committed offsets from the log.
    pub fn new(
        log: Arc<Log>,
        config: KafkaConfig,
        node: NodeIdentity,
        checks: Checks,
    ) -> Result<Arc<Self>, crate::StateError> {
        let groups = Coordinator::open(log.clone(), &config)?;
        let broker = Arc::new(Broker {
            log,
            config,
            node,
            groups,
            gate: checks.gate,
            admin: std::sync::OnceLock::new(),
            producers: Default::default(),
            metrics: Default::default(),
            authorizer: checks.authorizer,
        });
        broker.groups.start_expiry(Arc::downgrade(&broker));
        Ok(broker)
    }

    /// The log the front end serves.
    pub fn log(&self) -> &Arc<Log> {
        &self.log
    }

    /// Every admin change from now on. One listener; a second call returns `None`.
    pub fn admin_changes(&self) -> Option<tokio::sync::mpsc::UnboundedReceiver<AdminChange>> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        self.admin.set(tx).ok().map(|()| rx)
    }

    /// Who this node says it is to clients.
    pub fn node(&self) -> &NodeIdentity {
        &self.node
    }

    /// Per-topic produce and fetch counters, for `/metrics`.
    pub fn metrics(&self) -> &crate::KafkaMetrics {
        &self.metrics
    }

    /// Client ids that produced to `topic` since the node started.
    pub fn producers_seen(&self, topic: &str) -> Vec<String> {
        self.producers
            .read()
            .get(topic)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Remembers that `client_id` produced to `topic`.
    pub(crate) fn note_producer(&self, topic: &str, client_id: &str) {
        // The read lock alone for a producer already known: the common case per request.
        if self
            .producers
            .read()
            .get(topic)
            .is_some_and(|s| s.contains(client_id))
        {
            return;
        }
        let mut all = self.producers.write();
        let seen = all.entry(topic.to_string()).or_default();
        if seen.len() < MAX_PRODUCERS_SEEN {
            seen.insert(client_id.to_string());
        }
    }

    pub(crate) fn report_admin(&self, change: AdminChange) {
        if let Some(tx) = self.admin.get() {
            let _ = tx.send(change);
        }
    }

    /// The authorizer, when clients sign in.
    pub(crate) fn authorizer(&self) -> Option<&Arc<dyn Authorizer>> {
        self.authorizer.as_ref()
    }

    /// Handles one request in-process as if a Kafka client had sent it: what the node does on a
    /// user's behalf (HTTP publish, DLQ replay, `tail --group`) goes through the same contract
    /// gate, appends and commit paths. It is not authorized here: checking the user it acts for
    /// is the caller's job (the HTTP layer does it before). `None` for a produce with acks=0.
    pub async fn call(
        self: &Arc<Self>,
        version: i16,
        request: RequestKind,
        client: &str,
    ) -> Option<ResponseKind> {
        let call = Call {
            broker: self,
            version,
            client_id: client,
            peer: client,
        };
        match apis::dispatch(&call, None, request).await {
            Reply::Send(r) => Some(*r),
            Reply::Nothing => None,
        }
    }

    /// [`Broker::call`] with a typed request and its typed response: `None` for no response
    /// (a produce with acks=0).
    pub async fn request<R: crate::apis::InProcess>(
        self: &Arc<Self>,
        version: i16,
        request: R,
        client: &str,
    ) -> Option<R::Response> {
        self.call(version, request.into_kind(), client)
            .await
            .and_then(R::response_of)
    }

    pub(crate) fn str(s: impl Into<String>) -> StrBytes {
        StrBytes::from_string(s.into())
    }
}
