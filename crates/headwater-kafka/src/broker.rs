//! The shared state behind every connection, and request dispatch.

use std::sync::Arc;

use headwater_log::Log;
use kafka_protocol::messages::{ApiKey, RequestKind, ResponseKind};
use kafka_protocol::protocol::StrBytes;

use crate::groups::Coordinator;
use crate::{handlers, KafkaConfig};

/// Identity of this node as clients see it.
#[derive(Debug, Clone)]
pub struct NodeIdentity {
    pub node_id: i32,
    pub host: String,
    pub port: i32,
    pub cluster_id: String,
}

/// One Kafka front end over one log.
#[derive(Debug)]
pub struct Broker {
    pub(crate) log: Arc<Log>,
    pub(crate) config: KafkaConfig,
    pub(crate) node: NodeIdentity,
    pub(crate) groups: Coordinator,
    pub(crate) gate: parking_lot::RwLock<Option<Arc<dyn crate::ProduceGate>>>,
    /// Where changes made through the admin API are reported, once someone listens.
    admin: std::sync::OnceLock<tokio::sync::mpsc::UnboundedSender<AdminChange>>,
    /// Client ids seen producing, per topic, for the catalog's observed lineage (since start).
    producers:
        parking_lot::RwLock<std::collections::HashMap<String, std::collections::BTreeSet<String>>>,
    metrics: crate::KafkaMetrics,
    /// Set when the node has an `[auth]` config: clients must sign in, and every request is
    /// checked.
    access: std::sync::OnceLock<Arc<dyn crate::Access>>,
}

/// Client ids remembered per topic: enough to name a topic's producers without letting a client
/// that invents a new id per connection grow the map without bound.
const MAX_PRODUCERS_SEEN: usize = 64;

/// A change made through Kafka's admin API (a topic deleted), for the node's audit trail.
#[derive(Debug, Clone, PartialEq)]
pub struct AdminChange {
    pub action: &'static str,
    pub topic: String,
    /// Who made it (`user:<name>`), when clients sign in.
    pub principal: Option<String>,
}

tokio::task_local! {
    /// The signed-in principal whose request is being handled, for admin changes' records.
    static CALLER: String;
}

/// The audit name of the principal whose request is being handled, if clients sign in.
pub(crate) fn caller() -> Option<String> {
    CALLER.try_with(String::clone).ok()
}

/// What to do after a request was handled.
pub(crate) enum Reply {
    Send(Box<ResponseKind>),
    /// Produce with acks=0: Kafka sends no response at all.
    Nothing,
}

impl Broker {
    /// Builds the front end; replays committed offsets from the log.
    pub fn new(
        log: Arc<Log>,
        config: KafkaConfig,
        node: NodeIdentity,
    ) -> Result<Arc<Self>, headwater_log::LogError> {
        let groups = Coordinator::open(log.clone(), &config)?;
        let broker = Arc::new(Broker {
            log,
            config,
            node,
            groups,
            gate: parking_lot::RwLock::new(None),
            admin: std::sync::OnceLock::new(),
            producers: Default::default(),
            metrics: Default::default(),
            access: std::sync::OnceLock::new(),
        });
        broker.groups.start_expiry(Arc::downgrade(&broker));
        Ok(broker)
    }

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

    fn note_producer(&self, topic: &str, client_id: &str) {
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

    /// Requires every client to sign in and checks each request with `access`. Set once,
    /// before the listener starts; a second call is ignored.
    pub fn set_access(&self, access: Arc<dyn crate::Access>) {
        let _ = self.access.set(access);
    }

    pub(crate) fn access(&self) -> Option<Arc<dyn crate::Access>> {
        self.access.get().cloned()
    }

    /// Installs the check every produce to a validated topic passes before it is written.
    pub fn set_gate(&self, gate: Arc<dyn crate::ProduceGate>) {
        *self.gate.write() = Some(gate);
    }

    /// Handles one request in-process exactly as if a Kafka client had sent it: what the node
    /// does on a user's behalf (HTTP publish, DLQ replay, `tail --group`) goes through the same
    /// checks, gate and commit paths. `None` for a produce with acks=0.
    pub async fn call(
        self: &Arc<Self>,
        version: i16,
        request: RequestKind,
        client: &str,
    ) -> Option<ResponseKind> {
        match self.dispatch(version, client, request, client, None).await {
            Reply::Send(r) => Some(*r),
            Reply::Nothing => None,
        }
    }

    pub(crate) fn str(s: impl Into<String>) -> StrBytes {
        StrBytes::from_string(s.into())
    }

    pub(crate) async fn dispatch(
        self: &Arc<Self>,
        v: i16,
        client_id: &str,
        request: RequestKind,
        peer: &str,
        who: Option<&headwater_auth::Principal>,
    ) -> Reply {
        let (Some(access), Some(who)) = (self.access.get(), who) else {
            return self.handle(v, client_id, request, peer).await;
        };
        let guard = crate::access::Guard {
            access: &**access,
            who,
            version: v,
        };
        match guard.check(request) {
            crate::access::Checked::Answer(r) => Reply::Send(Box::new(r)),
            crate::access::Checked::Handle(request, refused) => {
                let handled = self.handle(v, client_id, request, peer);
                match CALLER.scope(who.audit_name(), handled).await {
                    Reply::Send(r) => Reply::Send(Box::new(guard.merge(*r, refused))),
                    Reply::Nothing => Reply::Nothing,
                }
            }
        }
    }

    async fn handle(
        self: &Arc<Self>,
        v: i16,
        client_id: &str,
        request: RequestKind,
        peer: &str,
    ) -> Reply {
        let r = match request {
            RequestKind::ApiVersions(_) => ResponseKind::ApiVersions(
                crate::versions::api_versions(None, self.access.get().is_some()),
            ),
            RequestKind::Metadata(req) => {
                ResponseKind::Metadata(handlers::metadata::handle(self, req, v))
            }
            RequestKind::DescribeCluster(_) => {
                ResponseKind::DescribeCluster(handlers::metadata::describe_cluster(self))
            }
            RequestKind::CreateTopics(req) => {
                ResponseKind::CreateTopics(handlers::topics::create(self, req, v))
            }
            RequestKind::DeleteTopics(req) => {
                ResponseKind::DeleteTopics(handlers::topics::delete(self, req, v))
            }
            RequestKind::CreatePartitions(req) => {
                ResponseKind::CreatePartitions(handlers::topics::create_partitions(self, req))
            }
            RequestKind::DescribeConfigs(req) => {
                ResponseKind::DescribeConfigs(handlers::configs::describe(self, req))
            }
            RequestKind::IncrementalAlterConfigs(req) => {
                ResponseKind::IncrementalAlterConfigs(handlers::configs::alter(self, req))
            }
            RequestKind::Produce(req) => {
                for t in &req.topic_data {
                    self.note_producer(&t.name.0, client_id);
                }
                match handlers::produce::handle(self, req, v).await {
                    Some(resp) => ResponseKind::Produce(resp),
                    None => return Reply::Nothing,
                }
            }
            RequestKind::Fetch(req) => {
                ResponseKind::Fetch(handlers::fetch::handle(self, req, v).await)
            }
            RequestKind::ListOffsets(req) => {
                ResponseKind::ListOffsets(handlers::list_offsets::handle(self, req, v))
            }
            RequestKind::InitProducerId(req) => {
                ResponseKind::InitProducerId(handlers::producer_id::handle(self, req))
            }
            RequestKind::FindCoordinator(req) => {
                ResponseKind::FindCoordinator(crate::groups::api::find_coordinator(self, req, v))
            }
            RequestKind::JoinGroup(req) => ResponseKind::JoinGroup(
                crate::groups::api::join(self, req, v, client_id, peer).await,
            ),
            RequestKind::SyncGroup(req) => {
                ResponseKind::SyncGroup(crate::groups::api::sync(self, req).await)
            }
            RequestKind::Heartbeat(req) => {
                ResponseKind::Heartbeat(crate::groups::api::heartbeat(self, req))
            }
            RequestKind::LeaveGroup(req) => {
                ResponseKind::LeaveGroup(crate::groups::api::leave(self, req, v))
            }
            RequestKind::DescribeGroups(req) => {
                ResponseKind::DescribeGroups(crate::groups::api::describe(self, req))
            }
            RequestKind::ListGroups(req) => {
                ResponseKind::ListGroups(crate::groups::api::list(self, req))
            }
            RequestKind::DeleteGroups(req) => {
                ResponseKind::DeleteGroups(crate::groups::api::delete(self, req))
            }
            RequestKind::OffsetCommit(req) => {
                ResponseKind::OffsetCommit(crate::groups::api::offset_commit(self, req).await)
            }
            RequestKind::OffsetFetch(req) => {
                ResponseKind::OffsetFetch(crate::groups::api::offset_fetch(self, req, v))
            }
            other => {
                // Only reachable if the version table lists an API without a handler.
                let key = api_key_of(&other);
                tracing::error!(api = ?key, "no handler for an advertised API");
                return Reply::Send(Box::new(crate::connection::unsupported_response(key)));
            }
        };
        Reply::Send(Box::new(r))
    }
}

fn api_key_of(r: &RequestKind) -> ApiKey {
    // The debug name of the variant is the API name; this path is a bug guard only.
    let name = format!("{r:?}");
    let name = name.split('(').next().unwrap_or_default().to_string();
    ApiKey::iter()
        .find(|k| format!("{k:?}") == name)
        .unwrap_or(ApiKey::ApiVersions)
}
