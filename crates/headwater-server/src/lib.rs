//! # headwater-server
//!
//! The HTTP listener of a Headwater node (default `127.0.0.1:8081`). Today it serves the
//! Confluent Schema Registry REST API at the root paths, so Confluent's serializers and clients
//! work unchanged; Headwater's own API will live under `/v1`.
//!
//! It owns HTTP routing, request and response bodies and the registry's persistence in the
//! internal topic `_headwater.schemas`. Compatibility rules and registry state are
//! `headwater-contracts`; storage is `headwater-log`.
//!
//! Entry point: [`SchemaRegistry::open`] over a log, then [`serve_http`].

mod contract_gate;
mod domains;
mod registry_api;
mod registry_store;

pub use contract_gate::ContractGate;
pub use domains::{DomainOutcome, DomainService};
pub use registry_api::{domains_router, router};
pub use registry_store::SchemaRegistry;

use std::sync::Arc;

/// Serves the HTTP API on `listener` until `shutdown` resolves.
pub async fn serve_http(
    registry: Arc<SchemaRegistry>,
    domains: Arc<DomainService>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(registry).merge(domains_router(domains)))
        .with_graceful_shutdown(shutdown)
        .await
}
