//! # headwater-server
//!
//! The HTTP listener of a Headwater node (default `127.0.0.1:8081`): the Confluent Schema
//! Registry REST API at the root paths, so Confluent's serializers and clients work unchanged;
//! Headwater's own API under `/v1` (domains, streams, pipelines, views, SQL, status, catalog,
//! lineage, audit); and `/metrics`.
//!
//! It owns routing, request and response bodies, the one shape of error answers
//! (`{"error_code", "message", "error"}`), HTTP sign-in, and the thread that reads requests.
//! What the routes do is the services': `headwater-streams` and `headwater-governance`.
//!
//! Entry point: an [`Api`] holding the node's services (the node assembly in `headwater-node`
//! fills it), then [`Api::serve`] on a listener.

mod error;
mod http;
mod limits;
mod routes;
mod sign_in;

use std::sync::Arc;

use headwater_governance::{
    AuditTrail, CatalogService, DomainService, LineageService, NodeAccess, PipelineService,
    StatusService,
};
use headwater_streams::{SchemaRegistry, StreamService};

pub use limits::{HttpConfig, HttpRefusals};
pub use routes::metrics::NodeMetrics;
pub use routes::openapi::OPENAPI;

/// The services a node's HTTP API serves.
#[derive(Debug, Clone)]
pub struct Api {
    /// The Schema Registry API.
    pub registry: Arc<SchemaRegistry>,
    /// `/v1/domains`: plan and apply.
    pub domains: Arc<DomainService>,
    /// `/v1/streams`: publish, follow, replay dead letters.
    pub streams: Arc<StreamService>,
    /// `/v1/pipelines`, `/v1/sql`, `/v1/views`.
    pub pipelines: Arc<PipelineService>,
    /// `/v1/status`, `/v1/consistency`.
    pub status: Arc<StatusService>,
    /// `/v1/audit`.
    pub audit: Arc<AuditTrail>,
    /// `/v1/catalog`.
    pub catalog: Arc<CatalogService>,
    /// `/v1/lineage`.
    pub lineage: Arc<LineageService>,
    /// `/metrics`.
    pub metrics: Arc<NodeMetrics>,
    /// On a node with auth: every request signs in with a bearer token and is checked.
    pub access: Option<Arc<NodeAccess>>,
    /// The port's limits (`[http]`).
    pub http: HttpConfig,
}

impl Api {
    /// Serves the API on `listener` until `shutdown` resolves: view lookups on a thread of
    /// their own, everything else on the caller's runtime (see the `http` module).
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let limits = limits::HttpLimits::new(self.http, self.metrics.http_refusals().clone());
        let mut api = routes::registry::router(self.registry)
            .merge(routes::domains::router(self.domains))
            .merge(routes::streams::router(self.streams, limits.clone()))
            .merge(routes::pipelines::router(self.pipelines.clone()))
            .merge(routes::status::router(self.status))
            .merge(routes::audit::router(self.audit))
            .merge(routes::catalog::router(self.catalog, self.lineage))
            .merge(routes::metrics::router(self.metrics))
            .merge(routes::openapi::router());
        let mut lookups = routes::pipelines::lookups_router(self.pipelines.clone());
        if let Some(a) = &self.access {
            let layer = axum::middleware::from_fn_with_state(a.clone(), sign_in::layer);
            // Only its own routes: everything else falls through to `api`, which checks it.
            lookups = lookups.route_layer(layer.clone());
            api = api.layer(layer);
        }
        http::serve(
            self.pipelines,
            self.access,
            lookups,
            api,
            listener,
            limits,
            shutdown,
        )
        .await
    }
}
