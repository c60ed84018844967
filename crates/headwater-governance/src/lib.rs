//! # headwater-governance
//!
//! Governance by ownership on one node: what the design places beside domains rather than in
//! the data path.
//!
//! - [`DomainService`]: `plan` and `apply` of resolved domain manifests, each domain on its own,
//!   with the contract impact of a schema change on every reader ([`DomainOutcome::impact`])
//!   and the exposure of classified fields to domains without a grant; applied domains kept in
//!   `_headwater.domains` ([`DomainStore`]).
//! - [`NodeAccess`]: who may sign in and what each principal may do, decided from the applied
//!   domains' owners and readers; every refusal audited and counted.
//! - [`AuditTrail`]: every change sealed into a hash chain in `_headwater.audit`.
//! - [`CatalogService`], [`LineageService`]: what every domain declares and how data moves,
//!   declared and observed; [`OpenLineage`] run events for pipelines.
//! - [`StatusService`]: freshness and every subscriber's lag, and whether an offset has been
//!   processed by all of them.
//! - [`PipelineService`]: the node's pipelines as plan/apply, lineage and status see them.
//!
//! Every service takes what it needs at construction; the node assembly (`headwater-node`)
//! builds them in dependency order. It does not own HTTP (`headwater-server`), the data path
//! (`headwater-streams`) nor the manifest format and policy rules (`headwater-domains`).

mod access;
mod actor;
mod apply;
mod audit;
pub mod catalog;
mod error;
mod exposure;
mod impact;
pub mod lineage;
mod openlineage;
mod pipelines;
mod sign_in_failures;
mod status;

pub use access::{NodeAccess, RefusalCounts, RefusalLabel};
pub use actor::Actor;
pub use apply::{ApplyTo, DomainOutcome, DomainService, DomainStore, DOMAINS_TOPIC};
pub use audit::{follow_pipeline_runs, record_admin_changes, AuditTrail, ANONYMOUS, AUDIT_TOPIC};
pub use catalog::CatalogService;
pub use error::ApplyError;
pub use lineage::LineageService;
pub use openlineage::{OpenLineage, OpenLineageConfig};
pub use pipelines::PipelineService;
pub use status::{StatusService, StreamStatus, Subscriber};
