//! # headwater-server
//!
//! The HTTP listener of a Headwater node (default `127.0.0.1:8081`): the Confluent Schema
//! Registry REST API at the root paths, so Confluent's serializers and clients work unchanged,
//! and Headwater's own API under `/v1` (domains; streams: publish, follow, dead-letter replay).
//!
//! It owns HTTP routing, request and response bodies and the registry's persistence in the
//! internal topic `_headwater.schemas`. Compatibility rules and registry state are
//! `headwater-contracts`; storage is `headwater-log`.
//!
//! Entry point: [`SchemaRegistry::open`] over a log, then [`serve_http`].

pub mod access;
pub mod audit;
mod audit_api;
pub mod catalog;
mod contract_gate;
mod domains;
mod exposure;
mod http;
mod impact;
pub mod lineage;
pub mod metrics;
pub mod openlineage;
mod pipelines;
mod pipelines_api;
mod registry_api;
mod registry_store;
mod status;
mod streams;
mod streams_api;
mod views_api;

pub use access::NodeAccess;
pub use audit::AuditTrail;
pub use audit_api::audit_router;
pub use catalog::{catalog_router, CatalogService};
pub use contract_gate::ContractGate;
pub use domains::{DomainOutcome, DomainService};
pub use lineage::{lineage_router, LineageService};
pub use metrics::{metrics_router, NodeMetrics};
pub use openlineage::{OpenLineage, OpenLineageConfig};
pub use pipelines::{NodeStreams, PipelineService};
pub use pipelines_api::{lookups_router, pipelines_router};
pub use registry_api::{domains_router, router};
pub use registry_store::SchemaRegistry;
pub use status::{status_router, StatusService, StreamStatus, Subscriber};
pub use streams::{
    Event, LineOutcome, PublishOutcome, ReplayOutcome, StillInvalid, StreamError, StreamService,
};
pub use streams_api::streams_router;

use std::sync::Arc;

use headwater_kafka::Broker;
use headwater_log::Log;

/// Everything a node serves besides the Kafka listener, wired over one log and broker: what
/// `headwater serve`, the behaviour tests and the benchmarks all start.
#[derive(Debug, Clone)]
pub struct Services {
    pub audit: Arc<AuditTrail>,
    pub registry: Arc<SchemaRegistry>,
    pub gate: Arc<ContractGate>,
    pub domains: Arc<DomainService>,
    pub streams: Arc<StreamService>,
    pub pipelines: Arc<PipelineService>,
    pub status: Arc<StatusService>,
    pub catalog: Arc<CatalogService>,
    pub lineage: Arc<LineageService>,
    pub metrics: Arc<NodeMetrics>,
    /// Set by [`Services::emit_openlineage`]; pipeline runs are followed from the start.
    openlineage: Arc<std::sync::OnceLock<Arc<OpenLineage>>>,
    broker: Arc<Broker>,
    /// Set by [`Services::require_auth`].
    access: Option<Arc<NodeAccess>>,
    /// Its refusals, counted in `/metrics` from the start (zero on an open node).
    refusals: access::RefusalCounts,
}

impl Services {
    /// Replays the registry and applied domains from `log` and installs the contract gate on
    /// `broker`. Pipelines start as their domains are applied (or replayed).
    pub fn open(log: &Arc<Log>, broker: &Arc<Broker>) -> Result<Self, headwater_log::LogError> {
        let audit = Arc::new(AuditTrail::open(log)?);
        let registry = Arc::new(SchemaRegistry::open(log)?);
        registry.attach_audit(audit.clone());
        let gate = Arc::new(ContractGate::new(registry.clone()));
        broker.set_gate(gate.clone());
        let domains = Arc::new(DomainService::open(
            log.clone(),
            registry.clone(),
            gate.clone(),
        )?);
        domains.attach_audit(audit.clone());
        let streams = Arc::new(StreamService::new(
            broker.clone(),
            registry.clone(),
            gate.clone(),
            domains.clone(),
        ));
        let pipelines = Arc::new(PipelineService::new(
            streams.clone(),
            registry.clone(),
            log.clone(),
        ));
        domains.attach_pipelines(pipelines.clone());
        let openlineage: Arc<std::sync::OnceLock<Arc<OpenLineage>>> = Default::default();
        audit::follow_pipeline_runs(&audit, &pipelines, openlineage.clone());
        audit::record_admin_changes(&audit, broker, &domains);
        let status = Arc::new(StatusService::new(
            streams.clone(),
            pipelines.clone(),
            domains.clone(),
        ));
        domains.attach_status(status.clone());
        let catalog = Arc::new(CatalogService::new(
            domains.clone(),
            registry.clone(),
            status.clone(),
            broker.clone(),
        ));
        let lineage = Arc::new(LineageService::new(
            catalog.clone(),
            domains.clone(),
            pipelines.clone(),
        ));
        let refusals = access::RefusalCounts::default();
        let metrics = Arc::new(NodeMetrics::new(
            broker,
            &gate,
            &refusals,
            status.clone(),
            pipelines.clone(),
        ));
        Ok(Services {
            access: None,
            refusals,
            openlineage,
            broker: broker.clone(),
            metrics,
            lineage,
            catalog,
            audit,
            registry,
            gate,
            domains,
            streams,
            pipelines,
            status,
        })
    }

    /// Sends OpenLineage run events of every pipeline run from now on, as `config` says; does
    /// nothing without a `url` or a `file`.
    pub fn emit_openlineage(&self, config: OpenLineageConfig) {
        if config.url.is_none() && config.file.is_none() {
            return;
        }
        let node = self.broker.node();
        let kafka = format!("kafka://{}:{}", node.host, node.port);
        let ol = Arc::new(OpenLineage::new(config, self.domains.clone(), kafka));
        let _ = self.openlineage.set(ol);
    }

    /// From now on Kafka clients sign in as one of `users` and HTTP callers send one's bearer
    /// token; each request is checked against the applied domains' ownership and readers, and
    /// every refusal is audited. Call before serving.
    pub fn require_auth(&mut self, users: headwater_auth::Users) -> Arc<NodeAccess> {
        let access = NodeAccess::new(users, self.audit.clone(), self.refusals.clone());
        self.domains.attach_access(access.clone());
        self.broker.set_authorizer(access.clone());
        self.access = Some(access.clone());
        access
    }

    /// Serves the HTTP API on `listener` until `shutdown` resolves: view lookups on a thread
    /// of their own, everything else on the caller's runtime (see [`http`]).
    pub async fn serve_http(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let Services {
            audit,
            registry,
            domains,
            streams,
            pipelines,
            status,
            catalog,
            lineage,
            metrics,
            access,
            ..
        } = self;
        let api = router(registry)
            .merge(domains_router(domains))
            .merge(streams_router(streams))
            .merge(pipelines_router(pipelines.clone()))
            .merge(status_router(status))
            .merge(audit_router(audit))
            .merge(catalog_router(catalog))
            .merge(lineage_router(lineage))
            .merge(metrics_router(metrics));
        let mut lookups = lookups_router(pipelines.clone());
        let mut api = api;
        if let Some(a) = &access {
            let layer = axum::middleware::from_fn_with_state(a.clone(), access::layer);
            // Only its own routes: everything else falls through to `api`, which checks it.
            lookups = lookups.route_layer(layer.clone());
            api = api.layer(layer);
        }
        http::serve(pipelines, access, lookups, api, listener, shutdown).await
    }
}
